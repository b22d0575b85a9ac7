#![doc = include_str!("../README.md")]
// Library code returns typed errors; only proven invariants may panic (with a comment).
#![warn(clippy::unwrap_used)]

mod config;
mod error;
mod generator;
mod snowflake;

use std::{
    fmt,
    sync::{Arc, Mutex, PoisonError},
};

use gochat_clog::Logger;
use gochat_coord::{Coord, InstanceId};
use gochat_core::{BoxFuture, Context, Health, Lifecycle};

pub use config::{Config, Worker};
pub use error::Error;
pub use generator::{Clock, SystemClock};
pub use snowflake::{EPOCH_UNIX_MS, MAX_SEQUENCE, MAX_WORKER, Parts, SnowflakeId};
pub use uuid::Uuid;

use generator::Generator;

/// Injected dependencies.
#[derive(Default)]
#[non_exhaustive]
pub struct Options {
    coord: Option<Coord>,
    logger: Option<Logger>,
    clock: Option<Box<dyn Clock>>,
}

impl Options {
    /// The coord provider to lease the worker id from (needed for [`Worker::Leased`]).
    #[must_use]
    pub fn coord(mut self, coord: Coord) -> Self {
        self.coord = Some(coord);
        self
    }

    /// The logger (namespace `uid` is added). Default: the global logger.
    #[must_use]
    pub fn logger(mut self, logger: Logger) -> Self {
        self.logger = Some(logger);
        self
    }

    /// The clock Snowflake ids read. Default: [`SystemClock`]. Tests inject their own.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Box::new(clock));
        self
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("coord", &self.coord.is_some())
            .field("logger", &self.logger)
            .field("clock", &self.clock.as_ref().map(|_| "custom"))
            .finish()
    }
}

impl Clock for Box<dyn Clock> {
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }

    fn wait_past(&self, ms: u64) {
        (**self).wait_past(ms);
    }
}

/// Builds an id generator; with [`Worker::Leased`], leases the worker id from coord first.
///
/// # Errors
/// [`Error::Config`] for a bad config (or a leased worker without a coord provider);
/// [`Error::Lease`] when no worker id could be leased.
pub async fn new(_ctx: &Context, config: Config, opts: Options) -> Result<Uid, Error> {
    config.validate()?;
    let log = opts
        .logger
        .unwrap_or_else(gochat_clog::global)
        .namespace("uid");
    let (worker, lease) = match &config.worker {
        Worker::Static(id) => (*id, None),
        Worker::Leased { service } => {
            let coord = opts.coord.ok_or_else(|| {
                gochat_core::ConfigError::new(
                    "worker.leased",
                    "a leased worker id needs a coord provider: Options::default().coord(coord)",
                )
            })?;
            let lease = coord
                .instance_ids(service, u32::from(MAX_WORKER) + 1)
                .await?;
            // instance_ids returns an id below the maximum given, 1024.
            let id = u16::try_from(lease.id()).unwrap_or(MAX_WORKER);
            (id, Some(lease))
        }
    };
    gochat_clog::info!(
        log,
        worker,
        leased = lease.is_some(),
        "snowflake generator ready"
    );
    let clock = opts.clock.unwrap_or_else(|| Box::new(SystemClock));
    Ok(Uid {
        inner: Arc::new(Inner {
            generator: Generator::new(clock, worker, config.max_clock_backward),
            lease: Mutex::new(lease),
        }),
    })
}

/// The id generator: a cheap `Clone` handle.
#[derive(Clone)]
pub struct Uid {
    inner: Arc<Inner>,
}

struct Inner {
    generator: Generator<Box<dyn Clock>>,
    lease: Mutex<Option<InstanceId>>,
}

impl Uid {
    /// The next Snowflake id: unique across workers, increasing per worker.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), gochat_uid::Error> {
    /// use gochat_core::{Context, Env};
    /// let uid = gochat_uid::new(&Context::new(), gochat_uid::Config::for_env(Env::Development), Default::default()).await?;
    /// let (a, b) = (uid.snowflake()?, uid.snowflake()?);
    /// assert!(a < b);
    /// assert_eq!(a.decode().worker, 0);
    /// let wire = b.to_string(); // ids leave the process as decimal strings
    /// assert_eq!(wire.parse::<gochat_uid::SnowflakeId>()?, b);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::ClockMovedBackwards`] past the configured bound, [`Error::WorkerIdLost`] once a
    /// leased worker id has expired, [`Error::TimestampOverflow`] after 2093.
    pub fn snowflake(&self) -> Result<SnowflakeId, Error> {
        let lease = self
            .inner
            .lease
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(lease) = lease.as_ref()
            && !lease.is_held()
        {
            return Err(Error::WorkerIdLost(self.worker_id()));
        }
        drop(lease);
        self.inner.generator.next()
    }

    /// A UUIDv7: 48 bits of milliseconds then randomness; sortable by time, no worker id needed.
    pub fn uuid(&self) -> Uuid {
        Uuid::now_v7()
    }

    /// This generator's worker id.
    pub fn worker_id(&self) -> u16 {
        self.inner.generator.worker()
    }

    /// Down once a leased worker id is lost.
    pub async fn health(&self) -> Health {
        let lease = self
            .inner
            .lease
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match lease.as_ref() {
            Some(lease) if !lease.is_held() => {
                Health::down(format!("worker id {} lost", self.worker_id()))
            }
            _ => Health::up(),
        }
    }

    /// Gives a leased worker id back; later `snowflake()` calls fail with
    /// [`Error::WorkerIdLost`]. Idempotent.
    pub async fn close(&self) {
        let lease = self
            .inner
            .lease
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(lease) = lease {
            // Refuse first: once released, the id may be someone else's.
            self.inner.generator.retire();
            lease.release().await;
        }
    }
}

impl fmt::Debug for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Uid")
            .field("worker", &self.worker_id())
            .finish()
    }
}

impl Lifecycle for Uid {
    fn name(&self) -> &str {
        "uid"
    }

    fn health(&self) -> BoxFuture<'_, Health> {
        Box::pin(Uid::health(self))
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(Uid::close(self))
    }
}
