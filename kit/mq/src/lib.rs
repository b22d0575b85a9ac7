#![doc = include_str!("../README.md")]
// Library code returns typed errors; only proven invariants may panic (with a comment).
#![warn(clippy::unwrap_used)]

mod admin;
mod backend;
mod config;
mod consumer;
mod engine;
mod error;
mod handler;
mod message;
mod metrics;
mod producer;
mod stats;
mod trace;
mod track;

use std::{
    fmt,
    sync::{
        Arc, Mutex, PoisonError, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use gochat_clog::Logger;
use gochat_core::{BoxFuture, Context, Health, Lifecycle};

pub use admin::{Admin, Retained, TopicInfo};
pub use config::{
    Acks, Backend, Compression, Config, ConsumerConfig, KafkaConfig, MemoryConfig, RedisConfig,
    Start,
};
pub use consumer::{Consumer, Subscription};
pub use error::Error;
pub use handler::{BatchHandler, Handler, HandlerError, Permanent, dead_letter};
pub use message::{Delivery, Headers, Message, Received, TopicPartition};
pub use producer::{Pending, Producer};
pub use stats::Stats;
pub use trace::TRACE_HEADER;

use backend::{Client, kafka::KafkaClient, memory::Broker, redis::RedisClient};
use stats::Counters;

/// Injected dependencies.
#[derive(Debug, Default, Clone)]
#[non_exhaustive]
pub struct Options {
    logger: Option<Logger>,
    metrics: Option<opentelemetry::metrics::Meter>,
}

impl Options {
    /// The logger (namespace `mq` is added). Default: the global logger.
    #[must_use]
    pub fn logger(mut self, logger: Logger) -> Self {
        self.logger = Some(logger);
        self
    }

    /// The meter this component reports its figures to (docs/metrics.md lists them), e.g.
    /// `gochat_metrics::Metrics::meter("mq")`. Default: the global meter provider
    /// (`gochat_metrics::Metrics::install_global`; a no-op until one is installed).
    #[must_use]
    pub fn metrics(mut self, meter: opentelemetry::metrics::Meter) -> Self {
        self.metrics = Some(meter);
        self
    }
}

/// Builds an mq Provider on the configured backend.
///
/// # Errors
/// [`Error::Config`] naming a bad field; [`Error::Unavailable`] when no broker answers.
pub async fn new(ctx: &Context, config: Config, opts: Options) -> Result<Mq, Error> {
    config.validate()?;
    let log = opts
        .logger
        .unwrap_or_else(gochat_clog::global)
        .namespace("mq");
    let client = match &config.backend {
        Backend::Memory(memory) => Client::Memory(Broker::named(memory)),
        Backend::Kafka(kafka) => {
            Client::Kafka(Box::new(KafkaClient::connect(kafka, log.clone()).await?))
        }
        Backend::Redis(redis) => Client::Redis(RedisClient::connect(redis, log.clone()).await?),
    };
    gochat_clog::info!(log, backend = client.name(), "mq ready");
    let mq = Mq {
        shared: Arc::new(Shared {
            client,
            consumer: config.consumer,
            log,
            ctx: ctx.child(),
            closing: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            counters: Arc::new(Counters::default()),
            subscriptions: Mutex::new(Vec::new()),
        }),
    };
    let meter = gochat_core::observe::meter_or_global(opts.metrics.as_ref(), "mq");
    metrics::register(&meter, &Arc::downgrade(&mq.shared));
    Ok(mq)
}

/// The mq Provider: a cheap `Clone` handle.
#[derive(Clone)]
pub struct Mq {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) client: Client,
    consumer: ConsumerConfig,
    pub(crate) log: Logger,
    pub(crate) ctx: Context,
    closing: AtomicBool,
    pub(crate) closed: AtomicBool,
    pub(crate) counters: Arc<Counters>,
    /// Live subscriptions' counters, for the provider's lag.
    subscriptions: Mutex<Vec<Weak<Counters>>>,
}

impl Shared {
    pub(crate) fn stats(&self) -> Stats {
        let mut stats = self.counters.snapshot();
        stats.lag = self
            .subscriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
            .map(|c| c.snapshot().lag)
            .sum();
        stats
    }

    pub(crate) fn register(&self, counters: &Arc<Counters>) {
        let mut subscriptions = self
            .subscriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        subscriptions.retain(|weak| weak.strong_count() > 0);
        subscriptions.push(Arc::downgrade(counters));
    }
}

impl fmt::Debug for Mq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mq")
            .field("backend", &self.shared.client.name())
            .finish()
    }
}

impl Mq {
    /// The producer (one per provider, shared by clones).
    pub fn producer(&self) -> Producer {
        Producer {
            shared: self.shared.clone(),
        }
    }

    /// A consumer in `group`, with the provider's consumer config.
    pub fn consumer(&self, group: &str) -> Consumer {
        Consumer {
            mq: self.clone(),
            group: group.to_owned(),
            config: self.shared.consumer.clone(),
        }
    }

    /// Topic administration.
    pub fn admin(&self) -> Admin<'_> {
        Admin { mq: self }
    }

    /// The provider's counters; `lag` sums its live subscriptions.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// `"memory"`, `"kafka"` or `"redis"`.
    pub fn backend_name(&self) -> &'static str {
        self.shared.client.name()
    }

    /// Whether the broker answers.
    pub async fn health(&self) -> Health {
        match self.shared.client.health().await {
            Ok(()) => Health::up(),
            Err(e) => Health::down(e.to_string()),
        }
    }

    /// Shuts every subscription down gracefully (see [`Subscription::shutdown`]), then
    /// flushes the producer. Later sends fail with [`Error::Closed`]. Idempotent.
    pub async fn close(&self) {
        if self.shared.closing.swap(true, Ordering::SeqCst) {
            return;
        }
        let grace = self.shared.consumer.shutdown_grace + Duration::from_secs(5);
        if let Err(e) = self.shared.ctx.shutdown(grace).await {
            gochat_clog::warn!(self.shared.log, error = %e, "mq closed with consumers still running");
        }
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.client.close().await;
    }
}

impl Lifecycle for Mq {
    fn name(&self) -> &str {
        "mq"
    }

    fn health(&self) -> BoxFuture<'_, Health> {
        Box::pin(Mq::health(self))
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(Mq::close(self))
    }
}
