#![doc = include_str!("../README.md")]
// Library code returns typed errors; only proven invariants may panic (with a comment).
#![warn(clippy::unwrap_used)]

pub mod config;
pub mod distributed;
mod parts;
pub mod standalone;

use std::{future::Future, path::PathBuf, pin::Pin, process::ExitCode};

use clap::Parser;

pub use config::{Config, ConfigError};

/// The binaries' allocator. glibc's kept each blocking thread's 19 MiB argon2 buffer: a burst
/// of 400 logins left `gochat` at 767 MiB resident, which mimalloc hands back
/// (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The flags every gochat binary takes; they override the config file and environment.
#[derive(Debug, Clone, Default, clap::Parser)]
#[command(version)]
pub struct Args {
    /// A TOML config file (see deploy/config/ for examples).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The HTTP and WebSocket address (gateway).
    #[arg(long, value_name = "ADDR")]
    pub http_addr: Option<String>,
    /// The gRPC address (im-logic, im-repo).
    #[arg(long, value_name = "ADDR")]
    pub grpc_addr: Option<String>,
    /// Where data is kept (standalone: the SQLite database and the token signing key).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Reads and checks the configuration, says whether it is valid, and exits.
    #[arg(long)]
    pub check_config: bool,
}

impl Args {
    /// The config: defaults < `--config` < `GOCHAT_…` variables < these flags.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the layer at fault.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let mut config = Config::load(self.config.as_deref(), std::env::vars())?;
        if let Some(addr) = &self.http_addr {
            config.http_addr.clone_from(addr);
        }
        if let Some(addr) = &self.grpc_addr {
            config.grpc_addr.clone_from(addr);
        }
        if let Some(dir) = &self.data_dir {
            config.data_dir.clone_from(dir);
        }
        Ok(config)
    }
}

/// A service that could not start, naming the component.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A component failed to start.
    #[error("{what}: {reason}")]
    Component {
        /// The component (`db`, `mq`, `im-gateway`, …).
        what: &'static str,
        /// Its error.
        reason: String,
    },
}

/// What a service's `main` runs: the config and the shutdown signal in, the outcome out.
pub type Service = Box<
    dyn FnOnce(
        Config,
        Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Pin<Box<dyn Future<Output = Result<(), StartError>>>>,
>;

/// The `main` of every gochat binary: reads the flags and config, runs `service` until
/// Ctrl-C or SIGTERM. Exit code 2 for a bad config, 1 for a failed start.
pub fn main(name: &str, service: Service) -> ExitCode {
    let args = Args::parse();
    let config = match args.load() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(2);
        }
    };
    if args.check_config {
        return match config.validate() {
            Ok(()) => {
                println!("{name}: the configuration is valid");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{name}: {e}");
                ExitCode::from(2)
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{name}: no async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async move {
        let stop = gochat_core::Context::new();
        stop.cancel_on_shutdown_signal();
        service(config, Box::pin(stop.cancelled_owned())).await
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}
