#![doc = include_str!("../README.md")]
// Library code returns typed errors; only proven invariants may panic (with a comment).
#![warn(clippy::unwrap_used)]

pub mod config;
mod parts;
pub mod standalone;

use std::path::PathBuf;

pub use config::{Config, ConfigError};

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
