//! The example's one config: its own settings and every component's section, read by the
//! kit's loader (defaults for `GOCHAT_ENV` < `--config FILE` < `GOCHAT_…` < coord).

use std::time::Duration;

use gochat_kit::prelude::*;
use serde::{Deserialize, Serialize};

/// The rate-limit rule `POST /notes` is checked against, per caller.
pub(crate) const NOTES_RULE: &str = "notes";

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct AppConfig {
    /// Where the HTTP endpoint listens.
    pub(crate) listen: String,
    /// The service's name: its registry entry, consumer group and coord settings scope.
    pub(crate) service: String,
    /// Shown by `GET /`; try setting it in coord (`{service}/settings/greeting`).
    pub(crate) greeting: String,
    pub(crate) log: clog::Config,
    pub(crate) metrics: metrics::Config,
    pub(crate) coord: coord::Config,
    pub(crate) uid: uid::Config,
    pub(crate) cache: cache::Config,
    pub(crate) db: db::Config,
    pub(crate) mq: mq::Config,
    pub(crate) ratelimit: ratelimit::Config,
    pub(crate) once: once::Config,
    pub(crate) breaker: breaker::Config,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self::for_env(Env::Development)
    }
}

impl Settings for AppConfig {
    fn for_env(env: Env) -> Self {
        let mut ratelimit = ratelimit::Config::for_env(env);
        ratelimit.rules.insert(
            NOTES_RULE.to_owned(),
            ratelimit::Rule::new(20, Duration::from_secs(1), 40),
        );
        // The example's own lines at the environment's level; the libraries' chatter at info.
        let mut log = clog::Config::for_env(env);
        log.level = format!("info,example_whole_stack={}", log.level);
        let mut db = db::Config::for_env(env);
        db.primary = "sqlite://whole-stack.db?mode=rwc".to_owned();
        Self {
            listen: "127.0.0.1:3000".to_owned(),
            service: "whole-stack".to_owned(),
            greeting: "hello from the defaults".to_owned(),
            log,
            metrics: metrics::Config::for_env(env),
            coord: coord::Config::for_env(env),
            uid: uid::Config::for_env(env),
            cache: cache::Config::for_env(env),
            db,
            mq: mq::Config::for_env(env),
            ratelimit,
            once: once::Config::for_env(env),
            breaker: breaker::Config::for_env(env),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::new(
                "listen",
                "must be host:port, e.g. 127.0.0.1:3000",
            ));
        }
        if self.service.is_empty() {
            return Err(ConfigError::new("service", "must not be empty"));
        }
        self.log.validate().map_err(|e| e.within("log"))?;
        self.metrics.validate().map_err(|e| e.within("metrics"))?;
        self.coord.validate().map_err(|e| e.within("coord"))?;
        self.uid.validate().map_err(|e| e.within("uid"))?;
        self.cache.validate().map_err(|e| e.within("cache"))?;
        self.db.validate().map_err(|e| e.within("db"))?;
        self.mq.validate().map_err(|e| e.within("mq"))?;
        self.ratelimit
            .validate()
            .map_err(|e| e.within("ratelimit"))?;
        self.once.validate().map_err(|e| e.within("once"))?;
        self.breaker.validate().map_err(|e| e.within("breaker"))
    }
}
