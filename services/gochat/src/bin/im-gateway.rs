//! `im-gateway` (distributed mode): see deploy/config/im-gateway.toml.

fn main() -> std::process::ExitCode {
    gochat::main(
        "im-gateway",
        gochat::Config::for_env,
        Box::new(|config, signal| {
            Box::pin(gochat::distributed::gateway(config, signal, |addr| {
                println!("im-gateway: listening on http://{addr}");
            }))
        }),
    )
}
