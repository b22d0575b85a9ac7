//! Shared by the mq examples: the provider config, from the kit's loader.

use gochat_core::{ConfigError, Loader};
use gochat_mq::Config;

/// The defaults for `GOCHAT_ENV` (in-process in development), then `GOCHAT_MQ__…` variables:
/// `GOCHAT_MQ__BACKEND__KAFKA__BROKERS='["127.0.0.1:9092"]'` runs the examples on Kafka.
///
/// # Errors
/// A variable that names no field or holds a wrong value, named.
pub fn config() -> Result<Config, ConfigError> {
    Loader::from_process()?.env_prefix("GOCHAT_MQ__").load()
}
