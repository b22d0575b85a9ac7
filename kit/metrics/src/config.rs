//! Static configuration: who this process is, where Prometheus scrapes, how much to trace.
//!
//! ```
//! use gochat_metrics::Config;
//!
//! let config: Config = serde_json::from_str(r#"{
//!     "service_name": "im-gateway",
//!     "instance_id": "gw-1",
//!     "listen": "0.0.0.0:9464",
//!     "sampling_ratio": 0.1
//! }"#).unwrap();
//! config.validate().unwrap();
//! ```

use std::{net::SocketAddr, time::Duration};

use gochat_core::{ConfigError, Env};
use serde::{Deserialize, Serialize};

/// How the metrics provider is built.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// `service.name` on every metric and trace. Default: `gochat`.
    pub service_name: String,
    /// `service.instance.id`. Default: the process id, as `pid-1234`.
    pub instance_id: Option<String>,
    /// Where [`Metrics::serve`](crate::Metrics::serve) answers `GET /metrics`. `None`: no
    /// listener of its own (mount [`Metrics::scrape`](crate::Metrics::scrape) in an existing
    /// HTTP server). Default: `127.0.0.1:9464` (development), `0.0.0.0:9464` (production).
    pub listen: Option<SocketAddr>,
    /// Share of new traces recorded (0 to 1); a trace follows its parent's decision.
    /// Default: 1 (development), 0.1 (production).
    pub sampling_ratio: f64,
    /// Also export traces and metrics with OTLP over gRPC to a collector. `None`: no export
    /// (Prometheus scrapes only). Default: `None`.
    pub otlp: Option<OtlpConfig>,
}

/// Export to an OpenTelemetry collector (OTLP over gRPC).
///
/// ```
/// # fn main() -> Result<(), serde_json::Error> {
/// let otlp: gochat_metrics::OtlpConfig =
///     serde_json::from_str(r#"{ "endpoint": "http://otel-collector:4317", "interval": "15s" }"#)?;
/// assert_eq!(otlp.interval, std::time::Duration::from_secs(15));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct OtlpConfig {
    /// The collector's gRPC address, `http://host:4317`.
    pub endpoint: String,
    /// How often metrics are pushed. Default: 30 s.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// How long one export may take. Default: 10 s.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        Self {
            endpoint: "http://127.0.0.1:4317".to_owned(),
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::for_env(Env::Development)
    }
}

impl Config {
    /// Development: everything traced, scraped on loopback. Production: 10 % of traces,
    /// scraped on every interface.
    pub fn for_env(env: Env) -> Self {
        let (listen, sampling_ratio) = match env {
            Env::Development => ("127.0.0.1:9464", 1.0),
            Env::Production => ("0.0.0.0:9464", 0.1),
        };
        Self {
            service_name: "gochat".to_owned(),
            instance_id: None,
            listen: listen.parse().ok(),
            sampling_ratio,
            otlp: None,
        }
    }

    /// Checks every field; `new` calls it.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.service_name.trim().is_empty() {
            return Err(ConfigError::new("service_name", "must not be empty"));
        }
        if self
            .instance_id
            .as_deref()
            .is_some_and(|id| id.trim().is_empty())
        {
            return Err(ConfigError::new(
                "instance_id",
                "must not be empty when set",
            ));
        }
        if !(0.0..=1.0).contains(&self.sampling_ratio) {
            return Err(ConfigError::new(
                "sampling_ratio",
                "must be between 0 and 1",
            ));
        }
        if let Some(otlp) = &self.otlp {
            let endpoint = otlp.endpoint.as_str();
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
                || endpoint.parse::<http::Uri>().is_err()
            {
                return Err(ConfigError::new(
                    "otlp.endpoint",
                    "must be an http:// or https:// address, like http://collector:4317",
                ));
            }
            if otlp.interval.is_zero() {
                return Err(ConfigError::new("otlp.interval", "must be above zero"));
            }
            if otlp.timeout.is_zero() {
                return Err(ConfigError::new("otlp.timeout", "must be above zero"));
            }
        }
        Ok(())
    }
}

gochat_core::impl_settings!(Config);
