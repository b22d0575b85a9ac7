//! Static configuration: where the primary and replicas are, the pool, migrations, sharding.
//!
//! ```
//! use gochat_core::Env;
//! use gochat_db::Config;
//!
//! let config: Config = serde_json::from_str(r#"{
//!     "primary": "mysql://gochat:s3cret@10.0.0.5:3306/gochat",
//!     "replicas": ["mysql://gochat:s3cret@10.0.0.6:3306/gochat"],
//!     "pool": {"max_connections": 40},
//!     "slow_query": "200ms",
//!     "sharding": {"tables": {"messages": 16}}
//! }"#).unwrap();
//! config.validate().unwrap();
//! assert!(!format!("{config:?}").contains("s3cret"), "passwords stay out of Debug");
//! assert!(Config::for_env(Env::Development).primary.starts_with("sqlite:"));
//! ```

use std::{collections::BTreeMap, fmt, time::Duration};

use gochat_core::{ConfigError, Env, redact_url};
use serde::{Deserialize, Serialize};

/// How a db Provider is built.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Where writes go: `mysql://…`, `postgres://…`, `sqlite://path?mode=rwc` or
    /// `sqlite::memory:`. Default: `sqlite://gochat.db?mode=rwc` (development),
    /// `mysql://gochat@127.0.0.1:3306/gochat` (production).
    pub primary: String,
    /// Read replicas of the primary; [`Db::reader`](crate::Db::reader) spreads reads over the
    /// healthy ones. Default: none.
    pub replicas: Vec<String>,
    /// Connection pool, for the primary and each replica.
    pub pool: PoolConfig,
    /// Statements slower than this are logged at WARN. Default: 200 ms.
    #[serde(with = "humantime_serde")]
    pub slow_query: Duration,
    /// Run migrations (and create missing shard tables) in `new`. Default: true
    /// (development), false (production: migrate as a deployment step).
    pub auto_migrate: bool,
    /// How often replicas are checked. Default: 5 s.
    #[serde(with = "humantime_serde")]
    pub replica_check_interval: Duration,
    /// Tables split by key into several tables (and databases).
    pub sharding: ShardingConfig,
}

/// The connection pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PoolConfig {
    /// Default: 5 (development), 50 (production).
    pub max_connections: u32,
    /// Kept open when idle. Default: 1 (development), 5 (production).
    pub min_connections: u32,
    /// Time to open a connection. Default: 5 s.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Time to wait for a free connection. Default: 5 s.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// An idle connection above `min_connections` is closed after this. Default: 10 min.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
}

/// Sharded tables: `messages` with 16 tables is `messages_00` … `messages_15`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ShardingConfig {
    /// Table name → number of tables it is split into (1 to 1024).
    pub tables: BTreeMap<String, u32>,
    /// Extra databases the shard tables are spread over (table `i` lives in database
    /// `i % n`). Empty: every shard table is on the primary.
    pub databases: Vec<String>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("primary", &redact_url(&self.primary))
            .field(
                "replicas",
                &self
                    .replicas
                    .iter()
                    .map(|r| redact_url(r))
                    .collect::<Vec<_>>(),
            )
            .field("pool", &self.pool)
            .field("slow_query", &self.slow_query)
            .field("auto_migrate", &self.auto_migrate)
            .field("replica_check_interval", &self.replica_check_interval)
            .field("sharding", &self.sharding)
            .finish()
    }
}

impl fmt::Debug for ShardingConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardingConfig")
            .field("tables", &self.tables)
            .field(
                "databases",
                &self
                    .databases
                    .iter()
                    .map(|d| redact_url(d))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::for_env(Env::Development)
    }
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self::for_env(Env::Development)
    }
}

impl PoolConfig {
    /// Pool sizes for `env`.
    pub fn for_env(env: Env) -> Self {
        let (max_connections, min_connections) = match env {
            Env::Development => (5, 1),
            Env::Production => (50, 5),
        };
        Self {
            max_connections,
            min_connections,
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(600),
        }
    }
}

impl Config {
    /// Development: a SQLite file, migrated at start. Production: MySQL on localhost,
    /// migrations left to the deployment.
    pub fn for_env(env: Env) -> Self {
        let (primary, auto_migrate) = match env {
            Env::Development => ("sqlite://gochat.db?mode=rwc", true),
            Env::Production => ("mysql://gochat@127.0.0.1:3306/gochat", false),
        };
        Self {
            primary: primary.to_owned(),
            replicas: Vec::new(),
            pool: PoolConfig::for_env(env),
            slow_query: Duration::from_millis(200),
            auto_migrate,
            replica_check_interval: Duration::from_secs(5),
            sharding: ShardingConfig::default(),
        }
    }

    /// `primary`, other fields for `env`.
    pub fn with_primary(env: Env, primary: impl Into<String>) -> Self {
        Self {
            primary: primary.into(),
            ..Self::for_env(env)
        }
    }

    /// Checks every field; `new` calls it.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_dsn("primary", &self.primary)?;
        for (i, replica) in self.replicas.iter().enumerate() {
            check_dsn(&format!("replicas[{i}]"), replica)?;
        }
        for (i, database) in self.sharding.databases.iter().enumerate() {
            check_dsn(&format!("sharding.databases[{i}]"), database)?;
        }
        if self.pool.max_connections == 0 {
            return Err(ConfigError::new(
                "pool.max_connections",
                "must be at least 1",
            ));
        }
        if self.pool.min_connections > self.pool.max_connections {
            return Err(ConfigError::new(
                "pool.min_connections",
                "must not be above max_connections",
            ));
        }
        for (field, value) in [
            ("pool.connect_timeout", self.pool.connect_timeout),
            ("pool.acquire_timeout", self.pool.acquire_timeout),
            ("replica_check_interval", self.replica_check_interval),
        ] {
            if value.is_zero() {
                return Err(ConfigError::new(field, "must be above zero"));
            }
        }
        for (table, count) in &self.sharding.tables {
            if table.is_empty()
                || !table
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return Err(ConfigError::new(
                    "sharding.tables",
                    format!("{table:?} is not a plain table name ([A-Za-z0-9_])"),
                ));
            }
            if !(1..=1024).contains(count) {
                return Err(ConfigError::new(
                    format!("sharding.tables.{table}"),
                    "must be between 1 and 1024",
                ));
            }
        }
        Ok(())
    }
}

fn check_dsn(field: &str, dsn: &str) -> Result<(), ConfigError> {
    const SCHEMES: [&str; 4] = ["mysql:", "postgres:", "postgresql:", "sqlite:"];
    if SCHEMES.iter().any(|s| dsn.starts_with(s)) {
        Ok(())
    } else if dsn.starts_with("mariadb:") {
        Err(ConfigError::new(
            field,
            "write a MariaDB DSN as mysql://… (the driver has no mariadb:// scheme)",
        ))
    } else {
        Err(ConfigError::new(
            field,
            format!(
                "{} must start with mysql://, postgres:// or sqlite:",
                redact_url(dsn)
            ),
        ))
    }
}

/// Whether `dsn` is an in-memory SQLite database, which lives only as long as its one
/// connection.
pub(crate) fn is_sqlite_memory(dsn: &str) -> bool {
    dsn.starts_with("sqlite:") && dsn.contains(":memory:")
}

gochat_core::impl_settings!(Config);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_fields_are_named() {
        let mut config = Config::for_env(Env::Production);
        config.primary = "oracle://x".into();
        assert_eq!(config.validate().unwrap_err().field, "primary");
        let mut config = Config::for_env(Env::Production);
        config.replicas = vec!["redis://x".into()];
        assert_eq!(config.validate().unwrap_err().field, "replicas[0]");
        let mut config = Config::for_env(Env::Production);
        config.sharding.tables.insert("messages".into(), 0);
        assert_eq!(
            config.validate().unwrap_err().field,
            "sharding.tables.messages"
        );
        let mut config = Config::for_env(Env::Production);
        config.sharding.tables.insert("messages; drop".into(), 4);
        assert_eq!(config.validate().unwrap_err().field, "sharding.tables");
        let mut config = Config::for_env(Env::Production);
        config.primary = "mariadb://app@db/chat".into();
        let err = config.validate().unwrap_err();
        assert!(err.reason.contains("mysql://"), "{err}");
    }
}
