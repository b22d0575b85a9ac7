#![doc = include_str!("../README.md")]
// Library code returns typed errors; only proven invariants may panic (with a comment).
#![warn(clippy::unwrap_used)]

mod aside;
mod backend;
mod command;
mod config;
mod error;
mod hashes;
mod keys;
mod lock;
mod metrics;
mod pipeline;
mod sets;
mod strings;
mod zsets;

use std::{
    collections::HashMap,
    fmt,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use gochat_clog::Logger;
use gochat_core::{BoxFuture, Context, Health, Lifecycle};

pub use aside::CacheStats;
pub use command::Reply;
pub use config::{Backend, Config, MemoryConfig, RedisConfig};
pub use error::Error;
pub use hashes::Hashes;
pub use keys::{Keys, Ttl};
pub use lock::{LockGuard, Locks};
pub use pipeline::Pipeline;
pub use sets::Sets;
pub use strings::Strings;
pub use zsets::ZSets;

use backend::{Store, memory::MemoryStore, redis::RedisBackend};
use command::Command;

/// Injected dependencies.
#[derive(Debug, Default, Clone)]
#[non_exhaustive]
pub struct Options {
    logger: Option<Logger>,
    metrics: Option<opentelemetry::metrics::Meter>,
}

impl Options {
    /// The logger (namespace `cache` is added). Default: the global logger.
    #[must_use]
    pub fn logger(mut self, logger: Logger) -> Self {
        self.logger = Some(logger);
        self
    }

    /// The meter this component reports its figures to (docs/metrics.md lists them), e.g.
    /// `gochat_metrics::Metrics::meter("cache")`. Default: the global meter provider
    /// (`gochat_metrics::Metrics::install_global`; a no-op until one is installed).
    #[must_use]
    pub fn metrics(mut self, meter: opentelemetry::metrics::Meter) -> Self {
        self.metrics = Some(meter);
        self
    }
}

/// Builds a cache Provider on the configured backend.
///
/// # Errors
/// [`Error::Config`] naming a bad field; [`Error::Unavailable`] when Redis does not answer.
pub async fn new(ctx: &Context, config: Config, opts: Options) -> Result<Cache, Error> {
    config.validate()?;
    let log = opts
        .logger
        .unwrap_or_else(gochat_clog::global)
        .namespace("cache");
    let backend = match &config.backend {
        Backend::Memory(memory) => Store::Memory(MemoryStore::named(&memory.name)),
        Backend::Redis(redis) => Store::Redis(RedisBackend::connect(redis).await?),
    };
    gochat_clog::info!(
        log,
        backend = backend.name(),
        prefix = config.key_prefix,
        "cache ready"
    );
    let meter = gochat_core::observe::meter_or_global(opts.metrics.as_ref(), "cache");
    let cache = Cache {
        shared: Arc::new(Shared {
            backend,
            prefix: config.key_prefix,
            ttl_jitter: config.ttl_jitter,
            negative_ttl: config.negative_ttl,
            log,
            ctx: ctx.child(),
            closed: AtomicBool::new(false),
            stats: aside::Counters::default(),
            latency: metrics::latency(&meter),
            flights: Mutex::new(HashMap::new()),
        }),
    };
    metrics::register(&meter, &Arc::downgrade(&cache.shared));
    Ok(cache)
}

/// The cache Provider: a cheap `Clone` handle.
#[derive(Clone)]
pub struct Cache {
    shared: Arc<Shared>,
}

struct Shared {
    backend: Store,
    prefix: String,
    ttl_jitter: f64,
    negative_ttl: Duration,
    log: Logger,
    ctx: Context,
    closed: AtomicBool,
    stats: aside::Counters,
    /// `cache_get_or_load_duration_seconds`.
    latency: opentelemetry::metrics::Histogram<f64>,
    flights: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("backend", &self.shared.backend.name())
            .field("prefix", &self.shared.prefix)
            .finish()
    }
}

impl Cache {
    /// String values.
    pub fn string(&self) -> Strings<'_> {
        Strings { cache: self }
    }

    /// Key operations (delete, exists, expire, TTL).
    pub fn keys(&self) -> Keys<'_> {
        Keys { cache: self }
    }

    /// Hashes.
    pub fn hash(&self) -> Hashes<'_> {
        Hashes { cache: self }
    }

    /// Sets.
    pub fn set(&self) -> Sets<'_> {
        Sets { cache: self }
    }

    /// Sorted sets.
    pub fn zset(&self) -> ZSets<'_> {
        ZSets { cache: self }
    }

    /// Distributed locks with a watchdog.
    pub fn lock(&self) -> Locks<'_> {
        Locks { cache: self }
    }

    /// Several commands in one round trip.
    pub fn pipeline(&self) -> Pipeline<'_> {
        Pipeline::new(self)
    }

    /// Runs a Lua script (Redis only): `keys` get the prefix, `args` are passed as they are.
    ///
    /// # Errors
    /// [`Error::Unsupported`] on the in-process backend; script errors from Redis.
    pub async fn eval(&self, script: &str, keys: &[&str], args: &[&[u8]]) -> Result<Reply, Error> {
        self.one(Command::Eval {
            script: script.to_owned(),
            keys: keys.iter().map(|k| self.key(k)).collect(),
            args: args.iter().map(|a| a.to_vec()).collect(),
        })
        .await
    }

    /// Loads a Lua script into Redis's script cache; returns its SHA1 for [`Cache::evalsha`].
    ///
    /// # Errors
    /// [`Error::Unsupported`] on the in-process backend; script errors from Redis.
    pub async fn script_load(&self, script: &str) -> Result<String, Error> {
        let reply = self.one(Command::ScriptLoad(script.to_owned())).await?;
        reply
            .into_bytes()
            .map(|sha| String::from_utf8_lossy(&sha).into_owned())
            .ok_or_else(|| Error::Backend("SCRIPT LOAD returned no SHA".to_owned()))
    }

    /// Runs a script loaded with [`Cache::script_load`] by its SHA1 (keys get the prefix).
    ///
    /// # Errors
    /// [`Error::Unsupported`] on the in-process backend; `NOSCRIPT` (as a backend error) when
    /// the server no longer has the script — load it again.
    pub async fn evalsha(&self, sha: &str, keys: &[&str], args: &[&[u8]]) -> Result<Reply, Error> {
        self.one(Command::EvalSha {
            sha: sha.to_owned(),
            keys: keys.iter().map(|k| self.key(k)).collect(),
            args: args.iter().map(|a| a.to_vec()).collect(),
        })
        .await
    }

    /// `"memory"` or `"redis"`.
    pub fn backend_name(&self) -> &'static str {
        self.shared.backend.name()
    }

    /// Whether the backend answers.
    pub async fn health(&self) -> Health {
        match self.one(Command::Ping).await {
            Ok(_) => Health::up(),
            Err(e) => Health::down(e.to_string()),
        }
    }

    /// Releases every lock held through this provider, stops watchdogs, closes connections.
    /// Later calls fail with [`Error::Closed`]. Idempotent.
    pub async fn close(&self) {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Err(e) = self.shared.ctx.shutdown(Duration::from_secs(5)).await {
            gochat_clog::warn!(self.shared.log, error = %e, "cache closed with work still running");
        }
        self.shared.backend.close().await;
    }

    pub(crate) fn key(&self, key: &str) -> String {
        // One exact-size allocation; `format!` costs more on this hot path.
        let mut full = String::with_capacity(self.shared.prefix.len() + key.len());
        full.push_str(&self.shared.prefix);
        full.push_str(key);
        full
    }

    /// Runs one command. A plain function returning the backend's future, not an `async fn`:
    /// another async layer would copy fred's ~5 KB command future once more per call
    /// (docs/benchmarks.md).
    pub(crate) fn one(
        &self,
        command: Command,
    ) -> impl Future<Output = Result<Reply, Error>> + Send + '_ {
        self.shared.backend.one(command, Some(&self.shared.closed))
    }

    /// Runs one command even after `close` began: what watchdogs use to release locks.
    pub(crate) fn backend_one(
        &self,
        command: Command,
    ) -> impl Future<Output = Result<Reply, Error>> + Send + '_ {
        self.shared.backend.one(command, None)
    }

    /// Runs several commands in one round trip.
    pub(crate) async fn exec(
        &self,
        commands: Vec<Command>,
    ) -> Result<Vec<Result<Reply, Error>>, Error> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        self.shared.backend.exec(commands).await
    }
}

impl Lifecycle for Cache {
    fn name(&self) -> &str {
        "cache"
    }

    fn health(&self) -> BoxFuture<'_, Health> {
        Box::pin(Cache::health(self))
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(Cache::close(self))
    }
}

/// Pairs from a flat `[member, score, member, score, …]` reply.
pub(crate) fn scored(reply: Reply) -> Vec<(Vec<u8>, f64)> {
    let items = reply.into_array();
    items
        .chunks(2)
        .filter_map(|pair| match pair {
            [member, score] => Some((member.clone().into_bytes()?, score.as_float()?)),
            _ => None,
        })
        .collect()
}
