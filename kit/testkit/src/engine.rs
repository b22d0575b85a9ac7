//! Which real engines a test run has, and whether it must have them.

use std::{fmt, str::FromStr, time::Duration};

use tokio::net::TcpStream;

/// A real engine the behaviour suites can run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Engine {
    /// Redis 7 (cache, once, ratelimit).
    Redis,
    /// A Redis cluster of three masters (cache topologies).
    RedisCluster,
    /// A Redis sentinel that knows the standalone Redis as master `gochat`.
    RedisSentinel,
    /// etcd 3.4+ (coord, uid).
    Etcd,
    /// A second etcd with TLS (client certificates) and password auth; its certificates are in
    /// `GOCHAT_TEST_ETCD_TLS_DIR`.
    EtcdTls,
    /// A Kafka-protocol broker (mq).
    Kafka,
    /// PostgreSQL 15 (db).
    Postgres,
    /// MariaDB 10.11 / MySQL (db).
    Mysql,
}

impl Engine {
    /// Every engine.
    pub const ALL: [Engine; 8] = [
        Self::Redis,
        Self::RedisCluster,
        Self::RedisSentinel,
        Self::Etcd,
        Self::EtcdTls,
        Self::Kafka,
        Self::Postgres,
        Self::Mysql,
    ];

    /// The lowercase name used in `GOCHAT_TEST_REQUIRE` and in test names.
    pub fn name(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::RedisCluster => "redis-cluster",
            Self::RedisSentinel => "redis-sentinel",
            Self::Etcd => "etcd",
            Self::EtcdTls => "etcd-tls",
            Self::Kafka => "kafka",
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
        }
    }

    /// The environment variable holding the engine's address: a URL, or comma-separated
    /// endpoints for etcd and Kafka.
    pub fn var(self) -> &'static str {
        match self {
            Self::Redis => "GOCHAT_TEST_REDIS_URL",
            Self::RedisCluster => "GOCHAT_TEST_REDIS_CLUSTER_URL",
            Self::RedisSentinel => "GOCHAT_TEST_REDIS_SENTINEL_URL",
            Self::Etcd => "GOCHAT_TEST_ETCD_ENDPOINTS",
            Self::EtcdTls => "GOCHAT_TEST_ETCD_TLS_ENDPOINTS",
            Self::Kafka => "GOCHAT_TEST_KAFKA_BROKERS",
            Self::Postgres => "GOCHAT_TEST_POSTGRES_URL",
            Self::Mysql => "GOCHAT_TEST_MYSQL_URL",
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Engine {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|e| e.name() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|e| e.name()).collect();
                format!("unknown engine {s:?}; known: {}", known.join(", "))
            })
    }
}

/// Which engines a run must have, from `GOCHAT_TEST_REQUIRE`: `all`, or a comma-separated
/// list of engine names; unset or empty requires none.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Requirement(Vec<Engine>);

impl Requirement {
    /// The environment variable read by [`Requirement::from_env`].
    pub const VAR: &'static str = "GOCHAT_TEST_REQUIRE";

    /// Parses a `GOCHAT_TEST_REQUIRE` value.
    ///
    /// # Errors
    /// An unknown engine name: a typo must not quietly turn a required engine optional.
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(Self::default());
        }
        if value.eq_ignore_ascii_case("all") {
            return Ok(Self(Engine::ALL.to_vec()));
        }
        value
            .split(',')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Reads `GOCHAT_TEST_REQUIRE`.
    ///
    /// # Panics
    /// On an unknown engine name, naming it.
    pub fn from_env() -> Self {
        let value = std::env::var(Self::VAR).unwrap_or_default();
        // Deliberate: this is the test harness, and a misspelt requirement must stop the run
        // rather than let required engines be skipped.
        Self::parse(&value).unwrap_or_else(|e| panic!("{}={value:?}: {e}", Self::VAR))
    }

    /// Whether `engine` must be present.
    pub fn requires(&self, engine: Engine) -> bool {
        self.0.contains(&engine)
    }
}

/// The address of `engine` for this run, after checking that it answers.
///
/// Returns `None` (and prints why) when the engine is not configured or does not answer and
/// the run does not require it.
///
/// # Panics
/// When the run requires the engine (`GOCHAT_TEST_REQUIRE`) and it is not configured or does
/// not answer: the test fails loudly, naming the variable and the fix.
pub async fn endpoint(engine: Engine) -> Option<String> {
    let required = Requirement::from_env().requires(engine);
    let value = std::env::var(engine.var()).unwrap_or_default();
    let problem = if value.trim().is_empty() {
        format!("{} is not set", engine.var())
    } else {
        match probe(&value).await {
            Ok(()) => return Some(value),
            Err(e) => format!("{engine} at {value} does not answer: {e}"),
        }
    };
    // Deliberate: in a full run a missing engine fails the test loudly, never skips it.
    if required {
        panic!(
            "{problem}, and {}={} requires {engine}. Start the engines with \
             `scripts/engines up` and export `scripts/engines env`, or run `scripts/test`.",
            Requirement::VAR,
            std::env::var(Requirement::VAR).unwrap_or_default(),
        );
    }
    eprintln!("skipped ({engine}): {problem}");
    None
}

/// [`endpoint`] of each engine, in order; `None` when one is missing and not required (each
/// missing one says why).
///
/// # Panics
/// As [`endpoint`]: a required engine that is missing fails the test.
pub async fn endpoints<const N: usize>(engines: [Engine; N]) -> Option<[String; N]> {
    let mut found = Vec::with_capacity(N);
    for engine in engines {
        found.push(endpoint(engine).await);
    }
    found
        .into_iter()
        .collect::<Option<Vec<_>>>()?
        .try_into()
        .ok()
}

/// Checks that the first endpoint of an engine address accepts TCP connections.
///
/// # Errors
/// The address cannot be parsed, or nothing accepts a connection within 3 seconds.
pub async fn probe(address: &str) -> Result<(), String> {
    let host_port = host_port(address)?;
    match tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(&host_port)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("connecting to {host_port}: {e}")),
        Err(_) => Err(format!("connecting to {host_port}: no answer within 3 s")),
    }
}

/// `host:port` of the first endpoint in a URL or comma-separated endpoint list.
pub(crate) fn host_port(address: &str) -> Result<String, String> {
    let first = address.split(',').next().unwrap_or_default().trim();
    let without_scheme = first.split_once("://").map_or(first, |(_, rest)| rest);
    let authority = without_scheme.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    match host_port.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(host_port.to_owned())
        }
        _ => Err(format!("{address:?} has no host:port")),
    }
}

/// An engine address list (`a:1,b:2`, as `GOCHAT_TEST_…` holds it) as the value of a
/// `GOCHAT_…` variable for a list field: `["a:1","b:2"]`.
///
/// ```
/// assert_eq!(gochat_testkit::env_list("127.0.0.1:9092,127.0.0.1:9093"), r#"["127.0.0.1:9092","127.0.0.1:9093"]"#);
/// ```
pub fn env_list(endpoints: &str) -> String {
    let quoted: Vec<String> = endpoints.split(',').map(|e| format!("{e:?}")).collect();
    format!("[{}]", quoted.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_of_every_shape_yield_host_and_port() {
        let cases = [
            ("redis://127.0.0.1:6379/0", "127.0.0.1:6379"),
            (
                "http://127.0.0.1:2379,http://127.0.0.2:2379",
                "127.0.0.1:2379",
            ),
            ("127.0.0.1:9092", "127.0.0.1:9092"),
            (
                "postgres://u:p%40ss@localhost:5432/db?sslmode=disable",
                "localhost:5432",
            ),
            (
                "mysql://gochat:secret@127.0.0.1:3306/gochat_test",
                "127.0.0.1:3306",
            ),
        ];
        for (address, expected) in cases {
            assert_eq!(host_port(address).unwrap(), expected, "{address}");
        }
        for bad in ["", "redis://", "localhost", "127.0.0.1:notaport"] {
            assert!(host_port(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn requirement_parses_all_lists_and_rejects_typos() {
        let all = Requirement::parse("all").unwrap();
        assert!(
            Engine::ALL.iter().all(|e| all.requires(*e)) && all.requires(Engine::EtcdTls),
            "`all` means every engine, the TLS etcd and the Redis topologies included"
        );
        let topologies = Requirement::parse("redis-cluster,redis-sentinel,etcd-tls").unwrap();
        assert!(topologies.requires(Engine::RedisSentinel) && !topologies.requires(Engine::Redis));
        let some = Requirement::parse("redis, etcd").unwrap();
        assert!(some.requires(Engine::Etcd) && !some.requires(Engine::Mysql));
        assert_eq!(Requirement::parse("").unwrap(), Requirement::default());
        let err = Requirement::parse("redis,postgress").unwrap_err();
        assert!(err.contains("postgress"), "{err}");
    }

    #[tokio::test]
    async fn probing_a_closed_port_fails_with_the_address() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        probe(&format!("tcp://{addr}")).await.unwrap();
        drop(listener);
        let err = probe(&addr.to_string()).await.unwrap_err();
        assert!(err.contains(&addr.to_string()), "{err}");
    }
}
