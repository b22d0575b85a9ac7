//! Shared by the mq examples: the provider config, in-process unless `GOCHAT_MQ_BROKERS`
//! names Kafka brokers.

use gochat_core::Env;
use gochat_mq::{Backend, Config, KafkaConfig};

/// In-process, or Kafka at `GOCHAT_MQ_BROKERS` (`host:port[,host:port]`).
pub fn config() -> Config {
    let mut config = Config::for_env(Env::Development);
    if let Ok(brokers) = std::env::var("GOCHAT_MQ_BROKERS") {
        config.backend = Backend::Kafka(Box::new(KafkaConfig::with_brokers(
            Env::Development,
            &brokers,
        )));
    }
    config
}
