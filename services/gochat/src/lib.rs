#![doc = include_str!("../README.md")]
// Library code returns typed errors; only proven invariants may panic (with a comment).
#![warn(clippy::unwrap_used)]

pub mod config;
pub mod distributed;
mod parts;
pub mod standalone;

use std::{collections::BTreeMap, future::Future, path::PathBuf, pin::Pin, process::ExitCode};

use clap::Parser;

pub use config::Config;
pub use gochat_core::ConfigError;
use gochat_core::{Env, Loader, Origin};

/// The fields holding secrets that, in production, must come from outside the image.
const SECRETS: [&str; 3] = ["logic.jwt_secret", "logic.jwt_private_key", "service_token"];

/// The binaries' allocator. glibc's kept each blocking thread's 19 MiB argon2 buffer: a burst
/// of 400 logins left `gochat` at 767 MiB resident, which mimalloc hands back
/// (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The flags every gochat binary takes; they override the config file and environment.
#[derive(Debug, Clone, Default, clap::Parser)]
#[command(version)]
pub struct Args {
    /// A TOML or YAML config file (see deploy/config/ for examples); or `GOCHAT_CONFIG`.
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
    /// The config, validated: `defaults` for `GOCHAT_ENV` < `--config` (or `GOCHAT_CONFIG`) <
    /// `GOCHAT_…` variables < these flags.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the field and the layer that set it.
    pub fn load(&self, defaults: fn(Env) -> Config) -> Result<Config, ConfigError> {
        self.load_with(Loader::from_process()?, defaults)
    }

    /// [`Args::load`] from `loader` instead of the process's environment. In production the
    /// token signing key must not come from a config file (it would be in the image).
    ///
    /// # Errors
    /// As [`Args::load`].
    pub fn load_with(
        &self,
        mut loader: Loader,
        defaults: fn(Env) -> Config,
    ) -> Result<Config, ConfigError> {
        if let Some(file) = &self.config {
            loader = loader.file(file);
        }
        let flags: BTreeMap<&str, String> = [
            ("http_addr", self.http_addr.clone()),
            ("grpc_addr", self.grpc_addr.clone()),
            (
                "data_dir",
                self.data_dir.as_ref().map(|d| d.display().to_string()),
            ),
        ]
        .into_iter()
        .filter_map(|(field, value)| Some((field, value?)))
        .collect();
        let defaults = defaults(loader.env());
        let loader = loader.layer("command line", flags);
        let config = loader.load_from(&defaults)?;
        if loader.env() == Env::Production {
            for field in SECRETS {
                if let Some(Origin::File(file)) = loader.origin(field)? {
                    return Err(ConfigError::new(
                        field,
                        format!(
                            "in production a secret must come from outside the image (a GOCHAT_… variable from a secret store), not from {}",
                            file.display()
                        ),
                    ));
                }
            }
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

/// The `main` of every gochat binary: reads the flags and config over `defaults`
/// ([`Config::for_env`] or [`Config::standalone`]), runs `service` until Ctrl-C or SIGTERM.
/// Exit code 2 for a bad config, 1 for a failed start.
pub fn main(name: &str, defaults: fn(Env) -> Config, service: Service) -> ExitCode {
    let args = Args::parse();
    let config = match args.load(defaults) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(2);
        }
    };
    if name == "im-logic" && !config.logic.has_signing_key() {
        eprintln!(
            "{name}: invalid config `logic.jwt_secret`: im-logic signs tokens with it; set it (GOCHAT_LOGIC__JWT_SECRET), or an Ed25519 key (GOCHAT_LOGIC__JWT_PRIVATE_KEY)"
        );
        return ExitCode::from(2);
    }
    let production = Env::from_env().is_ok_and(|env| env == Env::Production);
    if name != "gochat" && production && config.service_token.expose().is_empty() {
        eprintln!(
            "{name}: invalid config `service_token`: in production the services' gRPC calls are authenticated; set it (GOCHAT_SERVICE_TOKEN)"
        );
        return ExitCode::from(2);
    }
    if args.check_config {
        println!("{name}: the configuration is valid");
        return ExitCode::SUCCESS;
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
