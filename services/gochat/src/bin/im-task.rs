//! `im-task` (distributed mode): see deploy/config/im-task.toml.

fn main() -> std::process::ExitCode {
    gochat::main(
        "im-task",
        gochat::Config::for_env,
        Box::new(|config, signal| {
            Box::pin(gochat::distributed::task(config, signal, || {
                println!("im-task: ready");
            }))
        }),
    )
}
