//! `im-logic` (distributed mode): see deploy/config/im-logic.toml.

fn main() -> std::process::ExitCode {
    gochat::main(
        "im-logic",
        gochat::Config::for_env,
        Box::new(|config, signal| {
            Box::pin(gochat::distributed::logic(config, signal, |addr| {
                println!("im-logic: listening on {addr}");
            }))
        }),
    )
}
