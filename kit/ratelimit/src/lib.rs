#![doc = include_str!("../README.md")]
// Library code returns typed errors; only proven invariants may panic (with a comment).
#![warn(clippy::unwrap_used)]

mod config;
mod decision;
mod error;
mod layer;
mod local;
mod metrics;
mod redis;
mod rules;

use std::{
    fmt,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use gochat_cache::Cache;
use gochat_clog::Logger;
use gochat_coord::Coord;
use gochat_core::Context;
use serde::Serialize;
use tokio::time::Instant;

pub use config::{BackendKind, Config, Rule, UnknownRule};
pub use decision::Decision;
pub use error::Error;
pub use layer::{RateLimitLayer, RateLimitService};
pub use rules::COORD_COMPONENT;

use error::Result;
use local::Local;
use rules::Rules;

/// Injected dependencies.
#[derive(Debug, Default, Clone)]
#[non_exhaustive]
pub struct Options {
    logger: Option<Logger>,
    metrics: Option<opentelemetry::metrics::Meter>,
    cache: Option<Cache>,
    coord: Option<Coord>,
}

impl Options {
    /// The logger (namespace `ratelimit` is added). Default: the global logger.
    #[must_use]
    pub fn logger(mut self, logger: Logger) -> Self {
        self.logger = Some(logger);
        self
    }

    /// The meter this component reports its figures to (docs/metrics.md lists them), e.g.
    /// `gochat_metrics::Metrics::meter("ratelimit")`. Default: the global meter provider
    /// (`gochat_metrics::Metrics::install_global`; a no-op until one is installed).
    #[must_use]
    pub fn metrics(mut self, meter: opentelemetry::metrics::Meter) -> Self {
        self.metrics = Some(meter);
        self
    }

    /// The Redis cache the `redis` backend keeps its buckets in.
    #[must_use]
    pub fn cache(mut self, cache: Cache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The coord provider `coord_service` rules are read from.
    #[must_use]
    pub fn coord(mut self, coord: Coord) -> Self {
        self.coord = Some(coord);
        self
    }
}

/// Builds a rate limiter.
///
/// # Errors
/// [`Error::Config`] naming a bad field; [`Error::MissingOption`] when the `redis` backend has
/// no Redis cache or `coord_service` no coord provider.
pub async fn new(ctx: &Context, config: Config, opts: Options) -> Result<RateLimiter> {
    config.validate()?;
    let log = opts
        .logger
        .unwrap_or_else(gochat_clog::global)
        .namespace("ratelimit");
    let backend =
        match config.backend {
            BackendKind::Local => Backend::Local,
            BackendKind::Redis => {
                let cache = opts.cache.filter(|c| c.backend_name() == "redis").ok_or(
                    Error::MissingOption("a Redis cache (Options::cache) for the redis backend"),
                )?;
                // Loaded lazily when Redis is down at start: the limiter starts on its fallback.
                let sha = redis::load(&cache).await.ok();
                Backend::Redis(RedisState {
                    cache,
                    sha: Mutex::new(sha),
                    degraded_until: Mutex::new(None),
                })
            }
        };
    let ctx = ctx.child();
    let rules = Arc::new(Rules::new(config.rules.clone()));
    if let Some(service) = &config.coord_service {
        let coord = opts.coord.as_ref().ok_or(Error::MissingOption(
            "a coord provider (Options::coord) for coord_service",
        ))?;
        rules.follow(&ctx, coord, service, log.clone())?;
    }
    let shared = Arc::new(Shared {
        backend,
        local: Local::new(1),
        fallback: Local::new(config.instances),
        rules,
        unknown: config.unknown_rule,
        redis_retry: config.redis_retry,
        counters: Counters::default(),
        log,
        ctx,
    });
    let meter = gochat_core::observe::meter_or_global(opts.metrics.as_ref(), "ratelimit");
    metrics::register(&meter, &Arc::downgrade(&shared));
    let swept = Arc::downgrade(&shared);
    let stop = shared.ctx.clone();
    shared.ctx.spawn(async move {
        let sweep = async {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let Some(shared) = swept.upgrade() else { break };
                shared.local.sweep();
                shared.fallback.sweep();
            }
        };
        // Ends with the context at once, not at the next sweep.
        stop.run_until_cancelled(sweep).await;
    });
    Ok(RateLimiter { shared })
}

/// The rate limiter: a cheap `Clone` handle.
#[derive(Clone)]
pub struct RateLimiter {
    shared: Arc<Shared>,
}

struct Shared {
    backend: Backend,
    local: Local,
    fallback: Local,
    rules: Arc<Rules>,
    unknown: UnknownRule,
    redis_retry: Duration,
    counters: Counters,
    log: Logger,
    ctx: Context,
}

enum Backend {
    Local,
    Redis(RedisState),
}

struct RedisState {
    cache: Cache,
    /// The script's SHA1, once loaded.
    sha: Mutex<Option<String>>,
    /// While set and in the future, decisions are local; then Redis is tried again.
    degraded_until: Mutex<Option<Instant>>,
}

#[derive(Default)]
struct Counters {
    allowed: AtomicU64,
    denied: AtomicU64,
    fallback: AtomicU64,
    unknown_rule: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> Stats {
        Stats {
            allowed: self.allowed.load(Relaxed),
            denied: self.denied.load(Relaxed),
            fallback: self.fallback.load(Relaxed),
            unknown_rule: self.unknown_rule.load(Relaxed),
        }
    }
}

/// A snapshot of a limiter's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Checks allowed.
    pub allowed: u64,
    /// Checks denied.
    pub denied: u64,
    /// Checks decided locally because Redis was unreachable.
    pub fallback: u64,
    /// Checks against a rule nobody defined.
    pub unknown_rule: u64,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("backend", &self.backend_name())
            .finish()
    }
}

impl RateLimiter {
    /// Takes one token from `key`'s bucket under `rule`.
    ///
    /// # Errors
    /// None in practice for one token; see [`RateLimiter::allow_n`].
    pub async fn allow(&self, key: &str, rule: &str) -> Result<Decision> {
        self.allow_n(key, rule, 1).await
    }

    /// Takes `n` tokens at once (a batch counts as `n` requests).
    ///
    /// # Errors
    /// [`Error::ExceedsBurst`] when `n` is above the rule's burst: such a batch can never pass.
    pub async fn allow_n(&self, key: &str, rule_name: &str, n: u32) -> Result<Decision> {
        let shared = &self.shared;
        let rule = match shared.rules.get(rule_name) {
            Some(rule) => rule,
            None => {
                shared.counters.unknown_rule.fetch_add(1, Relaxed);
                match shared.unknown {
                    UnknownRule::Default(rule) => rule,
                    UnknownRule::Deny => {
                        gochat_clog::debug!(
                            shared.log,
                            rule = rule_name,
                            "unknown rate-limit rule: denied"
                        );
                        shared.counters.denied.fetch_add(1, Relaxed);
                        return Ok(Decision::never());
                    }
                }
            }
        };
        let n = n.max(1);
        if n > rule.burst {
            return Err(Error::ExceedsBurst {
                rule: rule_name.to_owned(),
                asked: n,
                burst: rule.burst,
            });
        }
        let decision = match &shared.backend {
            Backend::Local => shared.local.allow(rule_name, rule, key, n),
            Backend::Redis(redis) => self.redis(redis, rule_name, rule, key, n).await,
        };
        let counter = if decision.allowed {
            &shared.counters.allowed
        } else {
            &shared.counters.denied
        };
        counter.fetch_add(1, Relaxed);
        Ok(decision)
    }

    /// A decision from Redis, or from the local fallback while Redis is unreachable.
    async fn redis(
        &self,
        redis: &RedisState,
        name: &str,
        rule: Rule,
        key: &str,
        n: u32,
    ) -> Decision {
        let shared = &self.shared;
        let RedisState {
            cache,
            sha,
            degraded_until,
        } = redis;
        let degraded = *degraded_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if degraded.is_some_and(|until| Instant::now() < until) {
            shared.counters.fallback.fetch_add(1, Relaxed);
            return shared.fallback.allow(name, rule, key, n);
        }
        let loaded = sha.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let script = match loaded {
            Some(script) => Ok(script),
            None => redis::load(cache).await.inspect(|loaded| {
                *sha.lock().unwrap_or_else(PoisonError::into_inner) = Some(loaded.clone());
            }),
        };
        let answer = match script {
            Ok(script) => redis::allow(cache, &script, name, rule, key, n).await,
            Err(e) => Err(e),
        };
        let mut until = degraded_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match answer {
            Ok(decision) => {
                if until.take().is_some() {
                    gochat_clog::info!(shared.log, "Redis answers again: limits are shared again");
                }
                decision
            }
            Err(e) => {
                if until.is_none() {
                    gochat_clog::warn!(shared.log, error = %e, "Redis unreachable: limiting locally at this instance's share");
                }
                *until = Some(Instant::now() + shared.redis_retry);
                drop(until);
                shared.counters.fallback.fetch_add(1, Relaxed);
                shared.fallback.allow(name, rule, key, n)
            }
        }
    }

    /// The rule `name` as it applies now (configured, or from coord), if any.
    pub fn rule(&self, name: &str) -> Option<Rule> {
        self.shared.rules.get(name)
    }

    /// `"local"` or `"redis"`.
    pub fn backend_name(&self) -> &'static str {
        match self.shared.backend {
            Backend::Local => "local",
            Backend::Redis(_) => "redis",
        }
    }

    /// Counters since `new`.
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// Stops following coord and sweeping. Idempotent.
    pub async fn close(&self) {
        let _ = self.shared.ctx.shutdown(Duration::from_secs(1)).await;
    }

    pub(crate) fn log_refused_check(&self, rule: &str, error: &Error) {
        gochat_clog::warn!(self.shared.log, rule, error = %error, "rate-limit check refused; request passed");
    }
}
