//! gochat's configuration, read by the kit's loader ([`gochat_core::Loader`]) in layers: the
//! defaults for `GOCHAT_ENV` ([`Config::for_env`], or [`Config::standalone`] for `gochat`),
//! then `--config FILE` (TOML or YAML; or `GOCHAT_CONFIG`), then `GOCHAT_…` environment
//! variables, then the command-line flags.
//!
//! An environment variable names a field by its path, upper-cased, sections joined by `__`:
//! `GOCHAT_HTTP_ADDR=0.0.0.0:8080`, `GOCHAT_GATEWAY__MAX_BODY_BYTES=131072`,
//! `GOCHAT_LOGIC__JWT_SECRET=…`. Its value is typed when it parses as a number, boolean,
//! array or table, and a string otherwise; quote a string that looks like a number
//! (`GOCHAT_LOGIC__JWT_SECRET='"1234…"'`). Unknown fields are errors in every layer, so a
//! typo never goes unnoticed; every error names the field and the layer that set it.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use gochat_core::{ConfigError, Env};
use gochat_ratelimit::Rule;
use serde::{Deserialize, Serialize};

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
    /// The token every gochat service presents on its gRPC calls to another, and requires on
    /// the calls it serves (distributed mode): at least 32 random bytes, the same for every
    /// service, from a secret store (`GOCHAT_SERVICE_TOKEN`; `openssl rand -base64 48`).
    /// Required in production; empty (development only): internal calls are not checked.
    pub service_token: gochat_core::Secret,
    /// Mutual TLS on the services' gRPC (distributed mode): this process's certificate and
    /// key and the cluster's CA (`[grpc_tls] cert, key, ca`; docs/security.md shows how to
    /// make them). Default: off.
    pub grpc_tls: gochat_proto::GrpcTls,
    /// How long one internal gRPC call (gateway → im-logic, im-logic or im-task → im-repo)
    /// may take, retries of a refused connection included; then it fails with
    /// `DEADLINE_EXCEEDED` and the server's work on it is dropped. At least 100 ms.
    /// Default: 10 s.
    #[serde(with = "humantime_serde")]
    pub grpc_deadline: Duration,
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
    /// The circuit breaker around im-logic's calls to im-repo (distributed mode).
    pub breaker: gochat_breaker::Config,
    /// Rate limits: `login` (per normalised username), `login_addr` and `register_addr` (per
    /// client address), `send_message`, `world_send`, `api` and `ws_frame` (per user).
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
        Self::for_env(Env::Development)
    }
}

impl Config {
    /// The distributed binaries' defaults: each section's `for_env(env)` (in production the
    /// real engines), gochat's rate-limit rules, one consumer task per `im-upstream` partition.
    pub fn for_env(env: Env) -> Self {
        let mut ratelimit = gochat_ratelimit::Config::for_env(env);
        let minute = Duration::from_secs(60);
        let second = Duration::from_secs(1);
        let hour = Duration::from_secs(3600);
        ratelimit.rules = BTreeMap::from([
            (im_logic::LOGIN_RULE.to_owned(), Rule::new(20, minute, 10)),
            (
                im_logic::LOGIN_ADDR_RULE.to_owned(),
                Rule::new(60, minute, 30),
            ),
            (
                im_logic::REGISTER_ADDR_RULE.to_owned(),
                Rule::new(60, hour, 30),
            ),
            (im_logic::WORLD_RULE.to_owned(), Rule::new(1, second, 5)),
            (
                im_logic::LARGE_GROUP_RULE.to_owned(),
                Rule::new(5, second, 20),
            ),
            (im_logic::SEND_RULE.to_owned(), Rule::new(200, second, 400)),
            // Being put into groups by others: 60 an hour per added user.
            (im_logic::GROUP_ADD_RULE.to_owned(), Rule::new(60, hour, 60)),
            (im_gateway::API_RULE.to_owned(), Rule::new(200, second, 400)),
            (
                im_gateway::WS_FRAME_RULE.to_owned(),
                Rule::new(400, second, 800),
            ),
        ]);
        let mut mq = gochat_mq::Config::for_env(env);
        // im-upstream is taken a partition's waiting sends at a time (a batch); the other
        // consumers handle different conversations of a partition side by side (each
        // conversation in order).
        mq.consumer.concurrency = 8 * im_logic::TOPIC_PARTITIONS as usize;
        mq.consumer.per_partition = 32;
        Self {
            http_addr: "127.0.0.1:8080".to_owned(),
            grpc_addr: "127.0.0.1:0".to_owned(),
            advertise_host: None,
            data_dir: PathBuf::from("./gochat-data"),
            service_token: gochat_core::Secret::default(),
            grpc_tls: gochat_proto::GrpcTls::default(),
            grpc_deadline: gochat_proto::DEFAULT_DEADLINE,
            gateway_id: String::new(),
            log: gochat_clog::Config::for_env(env),
            metrics: gochat_metrics::Config::for_env(env),
            db: gochat_db::Config::for_env(env),
            cache: gochat_cache::Config::for_env(env),
            mq,
            coord: gochat_coord::Config::for_env(env),
            uid: gochat_uid::Config::for_env(env),
            breaker: gochat_breaker::Config::for_env(env),
            ratelimit,
            repo: im_repo::Config::default(),
            logic: im_logic::Config::default(),
            gateway: im_gateway::Config::default(),
            task: im_task::Config::default(),
            push: PushConfig::default(),
        }
    }

    /// The standalone `gochat`'s defaults: [`Config::for_env`] with the in-process backends
    /// (cache, mq, coord, local rate limits, a static worker id) and SQLite under `data_dir`,
    /// whatever the environment; the environment still tunes logs, pools and timeouts.
    pub fn standalone(env: Env) -> Self {
        let mut config = Self::for_env(env);
        let dev = Self::for_env(Env::Development);
        config.cache.backend = dev.cache.backend;
        config.mq.backend = dev.mq.backend;
        config.coord.backend = dev.coord.backend;
        config.ratelimit.backend = dev.ratelimit.backend;
        config.uid.worker = dev.uid.worker;
        config.db.primary = dev.db.primary;
        config.db.auto_migrate = true;
        config
    }

    /// Checks every section's fields (im-logic's only when its JWT key is set: standalone
    /// makes one, and only im-logic needs it).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the field (`gateway.send_queue`) and why.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.grpc_deadline < Duration::from_millis(100) {
            return Err(ConfigError::new("grpc_deadline", "must be at least 100 ms"));
        }
        self.log.validate().map_err(|e| e.within("log"))?;
        self.metrics.validate().map_err(|e| e.within("metrics"))?;
        self.db.validate().map_err(|e| e.within("db"))?;
        self.cache.validate().map_err(|e| e.within("cache"))?;
        self.mq.validate().map_err(|e| e.within("mq"))?;
        self.coord.validate().map_err(|e| e.within("coord"))?;
        self.uid.validate().map_err(|e| e.within("uid"))?;
        self.breaker.validate().map_err(|e| e.within("breaker"))?;
        self.ratelimit
            .validate()
            .map_err(|e| e.within("ratelimit"))?;
        self.gateway.validate().map_err(|e| e.within("gateway"))?;
        self.grpc_tls.validate().map_err(|e| e.within("grpc_tls"))?;
        if !self.service_token.expose().is_empty() {
            self.service_token
                .check_key(32)
                .map_err(|reason| ConfigError::new("service_token", reason))?;
            gochat_proto::ServiceToken::new(self.service_token.expose()).map_err(|_| {
                ConfigError::new("service_token", "must be printable ASCII (base64, say)")
            })?;
        }
        if self.logic.has_signing_key() {
            self.logic.validate().map_err(|e| e.within("logic"))?;
        }
        if self.gateway.max_content_bytes > self.logic.max_content_bytes {
            return Err(ConfigError::new(
                "gateway.max_content_bytes",
                format!(
                    "must not exceed logic.max_content_bytes ({}): the gateway would publish frames im-logic refuses",
                    self.logic.max_content_bytes
                ),
            ));
        }
        if self.gateway.topic_partitions != self.logic.topic_partitions {
            return Err(ConfigError::new(
                "gateway.topic_partitions",
                format!(
                    "must equal logic.topic_partitions ({}): both may create im-upstream",
                    self.logic.topic_partitions
                ),
            ));
        }
        if self.gateway.topic_prefix != self.logic.topic_prefix {
            return Err(ConfigError::new(
                "gateway.topic_prefix",
                format!(
                    "must equal logic.topic_prefix ({:?}): the gateway reads the topics im-logic writes",
                    self.logic.topic_prefix
                ),
            ));
        }
        Ok(())
    }
}

gochat_core::impl_settings!(Config);

#[cfg(test)]
mod tests {
    use gochat_core::Loader;

    use super::*;

    fn loader(pairs: &[(&str, &str)]) -> Loader {
        Loader::new(Env::Development).vars(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
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
        let config: Config = loader(&[
            ("GOCHAT_GATEWAY__MAX_BODY_BYTES", "2000"),
            ("GOCHAT_GATEWAY__SEND_QUEUE", "64"),
            (
                "GOCHAT_LOGIC__JWT_SECRET",
                "Fr0mTh3Env1r0nm3ntK9qZpV2mX4bR8nW1cL6",
            ),
            ("GOCHAT_TEST_REQUIRE", "all"),
            ("GOCHAT_ENV", "development"),
            ("PATH", "/bin"),
        ])
        .file(&file)
        .layer(
            "command line",
            BTreeMap::from([("data_dir", "/srv/gochat")]),
        )
        .load()
        .unwrap();
        assert_eq!(config.http_addr, "0.0.0.0:9000");
        assert_eq!(config.gateway.max_body_bytes, 2000);
        assert_eq!(config.gateway.send_queue, 64);
        assert_eq!(config.gateway.heartbeat, Duration::from_secs(10));
        assert_eq!(config.gateway.max_frame_bytes, 64 * 1024);
        assert_eq!(config.data_dir, PathBuf::from("/srv/gochat"));
        assert_eq!(
            config.logic.jwt_secret.expose(),
            "Fr0mTh3Env1r0nm3ntK9qZpV2mX4bR8nW1cL6"
        );
        assert!(!format!("{config:?}").contains("Fr0mTh3Env1r0nm3nt"));
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
        let config: Config =
            loader(&[("GOCHAT_MQ__BACKEND__KAFKA__BROKERS", "[\"127.0.0.1:9092\"]")])
                .file(&file)
                .load()
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
    fn production_defaults_are_the_engines_but_not_for_standalone() {
        let distributed = Config::for_env(Env::Production);
        assert!(matches!(
            distributed.cache.backend,
            gochat_cache::Backend::Redis(_)
        ));
        assert!(matches!(
            distributed.mq.backend,
            gochat_mq::Backend::Kafka(_)
        ));
        let standalone = Config::standalone(Env::Production);
        assert!(matches!(
            standalone.cache.backend,
            gochat_cache::Backend::Memory(_)
        ));
        assert!(matches!(
            standalone.mq.backend,
            gochat_mq::Backend::Memory(_)
        ));
        assert_eq!(standalone.db.primary, Config::default().db.primary);
        assert_eq!(
            standalone.log, distributed.log,
            "the environment still tunes logs"
        );
        assert!(standalone.validate().is_ok());
    }

    #[test]
    fn every_section_is_validated() {
        assert!(Config::default().validate().is_ok());
        let mut config = Config::default();
        config.gateway.send_queue = 0;
        let bad = config.validate().unwrap_err();
        assert_eq!(bad.field, "gateway.send_queue", "{bad}");
        let config = Config {
            grpc_deadline: Duration::from_millis(10),
            ..Config::default()
        };
        let bad = config.validate().unwrap_err();
        assert_eq!(bad.field, "grpc_deadline", "{bad}");
        let mut config = Config::default();
        config.gateway.topic_partitions = 8;
        let bad = config.validate().unwrap_err();
        assert_eq!(bad.field, "gateway.topic_partitions", "{bad}");
        config.logic.topic_partitions = 8;
        config.gateway.topic_prefix = "a_".into();
        let bad = config.validate().unwrap_err();
        assert_eq!(bad.field, "gateway.topic_prefix", "{bad}");
        let mut config = Config::default();
        config.gateway.max_content_bytes = 8192;
        config.gateway.max_frame_bytes = 65536;
        let bad = config.validate().unwrap_err();
        assert_eq!(bad.field, "gateway.max_content_bytes", "{bad}");
        let mut config = Config::default();
        config.logic.jwt_secret = "short".into();
        assert!(config.validate().unwrap_err().field.starts_with("logic."));
    }

    #[test]
    fn placeholder_and_weak_signing_keys_are_refused() {
        let shipped = "change me: at least 32 bytes, the same for every im-logic";
        for weak in [
            shipped,
            &"x".repeat(40),
            "0123456789012345678901234567890123",
        ] {
            let refused = loader(&[("GOCHAT_LOGIC__JWT_SECRET", weak)])
                .load::<Config>()
                .unwrap_err();
            assert_eq!(refused.field, "logic.jwt_secret", "{refused}");
            assert!(
                !refused.to_string().contains(weak),
                "the key is not shown: {refused}"
            );
        }
    }

    #[test]
    fn in_production_the_signing_key_never_comes_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("im-logic.toml");
        let key = "Fr0mTh3F1leK9qZpV2mX4bR8nW1cL6yHf3sJd0g";
        std::fs::write(&file, format!("[logic]\njwt_secret = \"{key}\"\n")).unwrap();
        let args = crate::Args {
            config: Some(file.clone()),
            ..crate::Args::default()
        };
        let production = Loader::new(Env::Production).vars([]);
        let refused = args
            .load_with(production.clone(), Config::for_env)
            .unwrap_err();
        assert_eq!(refused.field, "logic.jwt_secret", "{refused}");
        assert!(refused.reason.contains("outside the image"), "{refused}");
        // From a variable (a secret store's), or outside production, it is accepted.
        let from_variable =
            production.vars([("GOCHAT_LOGIC__JWT_SECRET".to_owned(), key.to_owned())]);
        args.load_with(from_variable, Config::for_env).unwrap();
        args.load_with(Loader::new(Env::Development).vars([]), Config::for_env)
            .unwrap();
    }

    #[test]
    fn an_ed25519_signing_key_is_checked_like_the_hmac_one() {
        let key = im_logic::generate_ed25519_key().unwrap();
        let config: Config = loader(&[("GOCHAT_LOGIC__JWT_PRIVATE_KEY", key.as_str())])
            .load()
            .unwrap();
        assert!(config.logic.has_signing_key());
        for (vars, field) in [
            (
                vec![("GOCHAT_LOGIC__JWT_PRIVATE_KEY", "not a PEM key")],
                "logic.jwt_private_key",
            ),
            (
                vec![
                    ("GOCHAT_LOGIC__JWT_PRIVATE_KEY", key.as_str()),
                    (
                        "GOCHAT_LOGIC__JWT_SECRET",
                        "Fr0mTh3F1leK9qZpV2mX4bR8nW1cL6yHf3sJd0g",
                    ),
                ],
                "logic.jwt_private_key",
            ),
            (
                vec![("GOCHAT_GRPC_TLS__CERT", "/etc/gochat/service.pem")],
                "grpc_tls.key",
            ),
        ] {
            let refused = loader(&vars).load::<Config>().unwrap_err();
            assert_eq!(refused.field, field, "{refused}");
            assert!(!refused.to_string().contains("PRIVATE KEY"), "{refused}");
        }
        // In production, not from the file.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("im-logic.toml");
        std::fs::write(
            &file,
            format!("[logic]\njwt_private_key = \"\"\"\n{key}\"\"\"\n"),
        )
        .unwrap();
        let args = crate::Args {
            config: Some(file),
            ..crate::Args::default()
        };
        let refused = args
            .load_with(Loader::new(Env::Production).vars([]), Config::for_env)
            .unwrap_err();
        assert_eq!(refused.field, "logic.jwt_private_key", "{refused}");
    }

    #[test]
    fn mistakes_are_named_with_their_layer() {
        let typo = loader(&[("GOCHAT_GATEWAY__MAX_BODY", "1")])
            .load::<Config>()
            .unwrap_err();
        assert_eq!(typo.field, "gateway.max_body", "{typo}");
        assert!(typo.reason.contains("GOCHAT_GATEWAY__MAX_BODY"), "{typo}");
        let wrong = loader(&[("GOCHAT_GATEWAY__SEND_QUEUE", "many")])
            .load::<Config>()
            .unwrap_err();
        assert_eq!(wrong.field, "gateway.send_queue", "{wrong}");
        let zero = loader(&[("GOCHAT_GATEWAY__SEND_QUEUE", "0")])
            .load::<Config>()
            .unwrap_err();
        assert_eq!(zero.field, "gateway.send_queue", "{zero}");
        assert!(zero.reason.contains("GOCHAT_GATEWAY__SEND_QUEUE"), "{zero}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "http_addr = [").unwrap();
        let bad = loader(&[]).file(&file).load::<Config>().unwrap_err();
        assert_eq!(bad.field, file.display().to_string());
        let missing = loader(&[])
            .file(dir.path().join("none.toml"))
            .load::<Config>()
            .unwrap_err();
        assert!(missing.field.ends_with("none.toml"));
    }

    #[test]
    fn the_variables_of_bus_redis_env_switch_every_service_to_the_redis_bus() {
        let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config");
        let vars: Vec<(String, String)> = std::fs::read_to_string(deploy.join("bus-redis.env"))
            .unwrap()
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert!(!vars.is_empty());
        for service in ["im-gateway", "im-logic", "im-task"] {
            let file = deploy.join(format!("{service}.toml"));
            let kafka: Config = loader(&[]).file(&file).load().unwrap();
            assert!(
                matches!(kafka.mq.backend, gochat_mq::Backend::Kafka(_)),
                "{service}: {:?}",
                kafka.mq.backend
            );
            let redis: Config = Loader::new(Env::Development)
                .vars(vars.clone())
                .file(&file)
                .load()
                .unwrap();
            let gochat_mq::Backend::Redis(bus) = redis.mq.backend else {
                panic!("{service} stayed on {:?}", redis.mq.backend)
            };
            assert_eq!(
                (bus.url.as_str(), bus.prefix.as_str(), bus.session_timeout),
                (
                    "redis://127.0.0.1:6379",
                    "gochat:mq",
                    Duration::from_secs(6)
                ),
                "{service}"
            );
            assert_eq!(redis.mq.consumer, kafka.mq.consumer, "only the bus changes");
        }
    }
}
