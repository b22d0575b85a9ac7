//! `gochat`: the whole IM system in one process on the standalone backends.

fn main() -> std::process::ExitCode {
    gochat::main(
        "gochat",
        gochat::Config::standalone,
        Box::new(|config, signal| {
            Box::pin(gochat::standalone::run(config, signal, |addr| {
                println!("gochat: listening on http://{addr}");
            }))
        }),
    )
}
