#![doc = include_str!("../README.md")]
// Library code returns typed errors; only proven invariants may panic (with a comment).
#![warn(clippy::unwrap_used)]

mod backend;
mod balance;
mod center;
mod config;
mod error;
mod ids;
mod keys;
mod lease;
mod lock;
mod log_level;
mod metrics;
mod options;
mod registry;
mod stream;
mod watch;

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use gochat_clog::Logger;
use gochat_core::{BoxFuture, Context, Health, Lifecycle};

pub use center::{ConfigCenter, ConfigEvent, ConfigScope, Watched};
pub use config::{Backend, Config, EtcdConfig, MemoryConfig, TlsConfig};
pub use error::Error;
pub use ids::{INSTANCE_ID_TTL, InstanceId};
pub use lock::{LockGuard, Locks};
pub use log_level::LOG_LEVEL;
pub use options::Options;
pub use registry::{Instance, Registration, Registry, RegistryEvent};
pub use stream::WatchStream;

use backend::{etcd::EtcdBackend, memory::MemoryStore};
use keys::Keys;

/// How long `close` waits for leases to be revoked and watches to stop.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Builds a coord Provider on the configured backend.
///
/// Background work (lease keep-alives, watches) runs on a child of `ctx`: cancelling `ctx`
/// stops it, as does [`Coord::close`].
///
/// # Errors
/// [`Error::Config`] naming a bad field; [`Error::Unavailable`] or [`Error::Timeout`] when
/// etcd does not answer within the dial timeout.
pub async fn new(ctx: &Context, config: Config, opts: Options) -> Result<Coord, Error> {
    config.validate()?;
    let log = opts
        .logger
        .unwrap_or_else(gochat_clog::global)
        .namespace("coord");
    let backend: Arc<dyn backend::Backend> = match &config.backend {
        Backend::Memory(memory) => MemoryStore::named(&memory.name),
        Backend::Etcd(etcd) => Arc::new(EtcdBackend::connect(etcd).await?),
    };
    gochat_clog::info!(log, backend = backend.name(), root = config.root, env = %config.env, "coord ready");
    let coord = Coord {
        shared: Arc::new(Shared {
            backend,
            ctx: ctx.child(),
            keys: Keys::new(&config.root, config.env.as_str()),
            log,
            closed: AtomicBool::new(false),
            counters: Counters::default(),
        }),
    };
    let meter = gochat_core::observe::meter_or_global(opts.metrics.as_ref(), "coord");
    metrics::register(&meter, &Arc::downgrade(&coord.shared));
    Ok(coord)
}

/// The coord Provider: a cheap `Clone` handle on one backend connection.
#[derive(Clone)]
pub struct Coord {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) backend: Arc<dyn backend::Backend>,
    pub(crate) ctx: Context,
    pub(crate) keys: Keys,
    pub(crate) log: Logger,
    closed: AtomicBool,
    pub(crate) counters: Counters,
}

/// Outages the provider rode through.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) watch_resumes: std::sync::atomic::AtomicU64,
    pub(crate) watch_rereads: std::sync::atomic::AtomicU64,
    pub(crate) lease_losses: std::sync::atomic::AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &std::sync::atomic::AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            watch_resumes: self.watch_resumes.load(Ordering::Relaxed),
            watch_rereads: self.watch_rereads.load(Ordering::Relaxed),
            lease_losses: self.lease_losses.load(Ordering::Relaxed),
        }
    }
}

/// A snapshot of the provider's outage counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Watches interrupted and resumed.
    pub watch_resumes: u64,
    /// Watches whose revision was compacted away, so they re-read the prefix.
    pub watch_rereads: u64,
    /// Leases (registrations, locks, instance ids) that ran out.
    pub lease_losses: u64,
}

impl Shared {
    pub(crate) fn check_open(&self) -> Result<(), Error> {
        if self.closed.load(Ordering::Acquire) || self.ctx.is_cancelled() {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coord")
            .field("backend", &self.backend.name())
            .field("keys", &self.keys)
            .field("closed", &self.closed)
            .finish()
    }
}

impl fmt::Debug for Coord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shared.fmt(f)
    }
}

impl Coord {
    /// Outages ridden through since `new`: resumed watches, re-reads, lost leases.
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// Service registry and discovery.
    pub fn registry(&self) -> Registry {
        Registry {
            shared: self.shared.clone(),
        }
    }

    /// The config centre.
    pub fn config(&self) -> ConfigCenter {
        ConfigCenter {
            shared: self.shared.clone(),
        }
    }

    /// Distributed locks.
    pub fn lock(&self) -> Locks {
        Locks {
            shared: self.shared.clone(),
        }
    }

    /// `"memory"` or `"etcd"`.
    pub fn backend_name(&self) -> &'static str {
        self.shared.backend.name()
    }

    /// Whether the backend answers now.
    pub async fn health(&self) -> Health {
        if self.shared.check_open().is_err() {
            return Health::down("closed");
        }
        match self.shared.backend.health().await {
            Ok(()) => Health::up(),
            Err(e) => Health::down(e.to_string()),
        }
    }

    /// Deregisters every instance, releases every lock and id, stops every watch, and waits
    /// (up to 5 s) for that to reach the backend. Later calls fail with [`Error::Closed`].
    /// Idempotent.
    pub async fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        if let Err(e) = self.shared.ctx.shutdown(CLOSE_GRACE).await {
            gochat_clog::warn!(self.shared.log, error = %e, "coord closed with work still running");
        }
    }
}

impl Lifecycle for Coord {
    fn name(&self) -> &str {
        "coord"
    }

    fn health(&self) -> BoxFuture<'_, Health> {
        Box::pin(Coord::health(self))
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(Coord::close(self))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use gochat_core::{Context, Env};

    use super::*;

    #[tokio::test]
    async fn dropping_a_watch_stops_its_background_tasks() {
        let mut config = Config::for_env(Env::Development);
        config.backend = Backend::Memory(MemoryConfig::named("unit-dropped-watch"));
        let coord = new(&Context::new(), config, Options::default())
            .await
            .unwrap();
        let before = coord.shared.ctx.task_count();
        let watch = coord.registry().watch("quiet").unwrap();
        assert!(
            coord.shared.ctx.task_count() > before,
            "a watch runs in the background"
        );
        drop(watch);
        tokio::time::timeout(Duration::from_secs(10), async {
            while coord.shared.ctx.task_count() > before {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the tasks of a dropped watch stop although nothing changed");
    }
}
