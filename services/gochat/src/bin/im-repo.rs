//! `im-repo` (distributed mode): see deploy/config/im-repo.toml.

fn main() -> std::process::ExitCode {
    gochat::main(
        "im-repo",
        gochat::Config::for_env,
        Box::new(|config, signal| {
            Box::pin(gochat::distributed::repo(config, signal, |addr| {
                println!("im-repo: listening on {addr}");
            }))
        }),
    )
}
