//! gochat's configuration, in layers: the defaults, then `--config FILE` (TOML), then
//! `GOCHAT_…` environment variables, then the command-line flags.
//!
//! An environment variable names a field by its path, upper-cased, sections joined by `__`:
//! `GOCHAT_HTTP_ADDR=0.0.0.0:8080`, `GOCHAT_GATEWAY__MAX_BODY_BYTES=131072`,
//! `GOCHAT_LOGIC__JWT_SECRET=…`. Its value is read as TOML when it parses as such (numbers,
//! booleans, arrays) and as a string otherwise; quote a string that looks like a number
//! (`GOCHAT_LOGIC__JWT_SECRET='"1234…"'`). `GOCHAT_ENV` and `GOCHAT_TEST_…` are not
//! config (the kit's environment and the test harness use them). Unknown fields are errors
//! in every layer, so a typo never goes unnoticed.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use gochat_ratelimit::Rule;
use serde::{Deserialize, Serialize};
use toml::{Table, Value};

/// Everything the gochat binaries read; each uses the sections it needs.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// The gateway's HTTP and WebSocket address. Default: `127.0.0.1:8080`.
    pub http_addr: String,
    /// The gRPC address of im-logic or im-repo (distributed mode). Default: `127.0.0.1:0`
    /// (any free port; the address registered in coord is the one bound).
    pub grpc_addr: String,
    /// The host other processes reach this one at, when it is not the bound address (a
    /// container or pod address while listening on `0.0.0.0`): registered in coord with the
    /// bound port. Default: none — the bound address is registered.
    pub advertise_host: Option<String>,
    /// Where the standalone binary keeps its SQLite database and generated secret.
    /// Default: `./gochat-data`.
    pub data_dir: PathBuf,
    /// The gateway's id (its downstream topic is `im-downstream-{id}`). Default: empty —
    /// `gw-1` standalone, `gw-{n}` from coord's instance ids in distributed mode.
    pub gateway_id: String,
    /// The log.
    pub log: gochat_clog::Config,
    /// Metrics and traces.
    pub metrics: gochat_metrics::Config,
    /// The database. Standalone: SQLite under `data_dir` unless set.
    pub db: gochat_db::Config,
    /// The cache.
    pub cache: gochat_cache::Config,
    /// The message bus.
    pub mq: gochat_mq::Config,
    /// Discovery, config, instance ids.
    pub coord: gochat_coord::Config,
    /// Id generation.
    pub uid: gochat_uid::Config,
    /// Deduplication.
    pub once: gochat_once::Config,
    /// The circuit breaker around im-logic's calls to im-repo (distributed mode).
    pub breaker: gochat_breaker::Config,
    /// Rate limits: `login` (per username), `send_message`, `api` and `ws_frame` (per user).
    pub ratelimit: gochat_ratelimit::Config,
    /// im-repo.
    pub repo: im_repo::Config,
    /// im-logic (its `jwt_secret` is generated under `data_dir` when empty, standalone).
    pub logic: im_logic::Config,
    /// im-gateway.
    pub gateway: im_gateway::Config,
    /// im-task.
    pub task: im_task::Config,
    /// Offline pushes.
    pub push: PushConfig,
}

/// Where im-task sends offline members' pushes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PushConfig {
    /// A webhook to POST each push to; without one, pushes are logged.
    pub webhook: Option<String>,
    /// How long a webhook call may take. Default: 5 s.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            webhook: None,
            timeout: Duration::from_secs(5),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        let mut ratelimit = gochat_ratelimit::Config::default();
        let minute = Duration::from_secs(60);
        let second = Duration::from_secs(1);
        ratelimit.rules = BTreeMap::from([
            (im_logic::LOGIN_RULE.to_owned(), Rule::new(20, minute, 10)),
            (im_logic::SEND_RULE.to_owned(), Rule::new(200, second, 400)),
            (im_gateway::API_RULE.to_owned(), Rule::new(200, second, 400)),
            (
                im_gateway::WS_FRAME_RULE.to_owned(),
                Rule::new(400, second, 800),
            ),
        ]);
        // A consumer handles as many partitions at once as im-upstream has.
        let mut mq = gochat_mq::Config::default();
        mq.consumer.concurrency = im_logic::TOPIC_PARTITIONS as usize;
        Self {
            http_addr: "127.0.0.1:8080".to_owned(),
            grpc_addr: "127.0.0.1:0".to_owned(),
            advertise_host: None,
            data_dir: PathBuf::from("./gochat-data"),
            gateway_id: String::new(),
            log: gochat_clog::Config::default(),
            metrics: gochat_metrics::Config::default(),
            db: gochat_db::Config::default(),
            cache: gochat_cache::Config::default(),
            mq,
            coord: gochat_coord::Config::default(),
            uid: gochat_uid::Config::default(),
            once: gochat_once::Config::default(),
            breaker: gochat_breaker::Config::default(),
            ratelimit,
            repo: im_repo::Config::default(),
            logic: im_logic::Config::default(),
            gateway: im_gateway::Config::default(),
            task: im_task::Config::default(),
            push: PushConfig::default(),
        }
    }
}

/// A configuration that could not be read, naming the layer and the reason.
#[derive(Debug, thiserror::Error)]
#[error("config ({layer}): {reason}")]
pub struct ConfigError {
    /// `defaults`, the file's path, an environment variable, or `merged`.
    pub layer: String,
    /// What is wrong.
    pub reason: String,
}

fn error(layer: impl Into<String>, reason: impl std::fmt::Display) -> ConfigError {
    ConfigError {
        layer: layer.into(),
        reason: reason.to_string(),
    }
}

/// Whether two tables are different variants of an enum (`{memory = …}` and
/// `{redis = …}`): one key each, not the same. Such a table is replaced, not merged.
fn other_variant(below: &Table, above: &Table) -> bool {
    below.len() == 1 && above.len() == 1 && below.keys().ne(above.keys())
}

/// Merges `over` into `base`: tables field by field, anything else (and a table naming
/// another enum variant) replaced.
fn merge(base: &mut Table, over: Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(below)), Value::Table(above)) if !other_variant(below, &above) => {
                merge(below, above);
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// An environment value: TOML when it parses as a value, a string otherwise.
fn env_value(raw: &str) -> Value {
    format!("v = {raw}")
        .parse::<Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.to_owned()))
}

/// The table of `GOCHAT_…` variables.
fn env_table(vars: impl IntoIterator<Item = (String, String)>) -> Result<Table, ConfigError> {
    let mut table = Table::new();
    for (name, raw) in vars {
        let Some(path) = name.strip_prefix("GOCHAT_") else {
            continue;
        };
        if path == "ENV" || path.starts_with("TEST_") {
            continue;
        }
        let keys: Vec<String> = path.split("__").map(str::to_lowercase).collect();
        if keys.iter().any(String::is_empty) {
            return Err(error(name, "an empty section name"));
        }
        let mut at = &mut table;
        let (last, sections) = keys.split_last().ok_or_else(|| error(&name, "no field"))?;
        for section in sections {
            let next = at
                .entry(section.clone())
                .or_insert_with(|| Value::Table(Table::new()));
            at = match next {
                Value::Table(t) => t,
                _ => return Err(error(&name, format!("{section} is a field, not a section"))),
            };
        }
        at.insert(last.clone(), env_value(&raw));
    }
    Ok(table)
}

impl Config {
    /// The defaults, overlaid with `file` (TOML) and the `GOCHAT_…` variables of `vars`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the layer: an unreadable or malformed file, an unknown
    /// field, a value of the wrong type.
    pub fn load(
        file: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut merged = Table::try_from(Self::default()).map_err(|e| error("defaults", e))?;
        if let Some(path) = file {
            let layer = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| error(&layer, e))?;
            let table: Table = text.parse().map_err(|e| error(&layer, e))?;
            merge(&mut merged, table);
        }
        merge(&mut merged, env_table(vars)?);
        Value::Table(merged)
            .try_into()
            .map_err(|e| error("merged file, environment and defaults", e))
    }
}

impl Config {
    /// Checks every section's fields (im-logic's only when its JWT key is set: standalone
    /// makes one, and only im-logic needs it).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the section and the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn section(name: &'static str) -> impl Fn(gochat_core::ConfigError) -> ConfigError {
            move |e| error(format!("section {name}"), e)
        }
        self.log.validate().map_err(section("log"))?;
        self.metrics.validate().map_err(section("metrics"))?;
        self.db.validate().map_err(section("db"))?;
        self.cache.validate().map_err(section("cache"))?;
        self.mq.validate().map_err(section("mq"))?;
        self.coord.validate().map_err(section("coord"))?;
        self.uid.validate().map_err(section("uid"))?;
        self.once.validate().map_err(section("once"))?;
        self.breaker.validate().map_err(section("breaker"))?;
        self.ratelimit.validate().map_err(section("ratelimit"))?;
        self.gateway.validate().map_err(section("gateway"))?;
        if !self.logic.jwt_secret.expose().is_empty() {
            self.logic.validate().map_err(section("logic"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn layers_apply_in_order_and_keep_what_they_do_not_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gochat.toml");
        std::fs::write(
            &file,
            "http_addr = \"0.0.0.0:9000\"\n[gateway]\nmax_body_bytes = 1000\nheartbeat = \"10s\"\n[ratelimit.rules.login]\nrate = 1\nperiod = \"1s\"\nburst = 1\n",
        )
        .unwrap();
        let config = Config::load(
            Some(&file),
            vars(&[
                ("GOCHAT_GATEWAY__MAX_BODY_BYTES", "2000"),
                (
                    "GOCHAT_LOGIC__JWT_SECRET",
                    "a secret from the environment!!!!",
                ),
                ("GOCHAT_TEST_REQUIRE", "all"),
                ("GOCHAT_ENV", "development"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(config.http_addr, "0.0.0.0:9000");
        assert_eq!(config.gateway.max_body_bytes, 2000);
        assert_eq!(config.gateway.heartbeat, Duration::from_secs(10));
        assert_eq!(config.gateway.max_frame_bytes, 64 * 1024);
        assert_eq!(
            config.logic.jwt_secret.expose(),
            "a secret from the environment!!!!"
        );
        assert!(!format!("{config:?}").contains("a secret from the environment"));
        // The file's login rule replaced the default one; the other default rules stay.
        assert_eq!(config.ratelimit.rules["login"].rate, 1);
        assert!(config.ratelimit.rules.contains_key(im_gateway::API_RULE));
    }

    #[test]
    fn a_file_or_variable_can_switch_a_backend() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gochat.toml");
        std::fs::write(
            &file,
            "[cache.backend.redis]\nurl = \"redis://127.0.0.1:6379\"\n[uid.worker.leased]\nservice = \"gochat\"\n",
        )
        .unwrap();
        let config = Config::load(
            Some(&file),
            vars(&[("GOCHAT_MQ__BACKEND__KAFKA__BROKERS", "[\"127.0.0.1:9092\"]")]),
        )
        .unwrap();
        assert!(
            matches!(config.cache.backend, gochat_cache::Backend::Redis(ref r) if r.url == "redis://127.0.0.1:6379")
        );
        assert!(
            matches!(config.mq.backend, gochat_mq::Backend::Kafka(ref k) if k.brokers == ["127.0.0.1:9092"])
        );
        assert_eq!(
            config.uid.worker,
            gochat_uid::Worker::Leased {
                service: "gochat".into()
            }
        );
    }

    #[test]
    fn every_section_is_validated() {
        assert!(Config::default().validate().is_ok());
        let mut config = Config::default();
        config.gateway.send_queue = 0;
        let bad = config.validate().unwrap_err();
        assert_eq!(bad.layer, "section gateway");
        assert!(bad.reason.contains("send_queue"), "{bad}");
        let mut config = Config::default();
        config.logic.jwt_secret = "short".into();
        assert_eq!(config.validate().unwrap_err().layer, "section logic");
    }

    #[test]
    fn mistakes_are_named_with_their_layer() {
        let typo = Config::load(None, vars(&[("GOCHAT_GATEWAY__MAX_BODY", "1")])).unwrap_err();
        assert!(typo.reason.contains("max_body"), "{typo}");
        let wrong =
            Config::load(None, vars(&[("GOCHAT_GATEWAY__SEND_QUEUE", "many")])).unwrap_err();
        assert!(wrong.reason.contains("send_queue"), "{wrong}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "http_addr = [").unwrap();
        let bad = Config::load(Some(&file), vars(&[])).unwrap_err();
        assert_eq!(bad.layer, file.display().to_string());
        let missing = Config::load(Some(&dir.path().join("none.toml")), vars(&[])).unwrap_err();
        assert!(missing.layer.ends_with("none.toml"));
    }
}
