//! `gochat`: the whole IM system in one process on the standalone backends.

use std::process::ExitCode;

use clap::Parser;
use gochat::{Args, standalone};

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let config = match args.load() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("gochat: {e}");
            return ExitCode::from(2);
        }
    };
    let stop = gochat_core::Context::new();
    stop.cancel_on_shutdown_signal();
    let signal = stop.cancelled_owned();
    let listening = |addr| println!("gochat: listening on http://{addr}");
    match Box::pin(standalone::run(config, signal, listening)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gochat: {e}");
            ExitCode::FAILURE
        }
    }
}
