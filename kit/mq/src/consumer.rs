//! Consumer groups: subscribe a handler, get at-least-once delivery.

use std::sync::{Arc, atomic::Ordering};

use gochat_core::Context;
use tokio::{sync::Semaphore, task::JoinHandle};

use crate::{
    ConsumerConfig, Error, Mq, Stats,
    backend::{Assignment, Member},
    engine::{self, Engine, Handling},
    error::Result,
    handler::{BatchHandler, Handler},
    message::TopicPartition,
    stats::Counters,
    track::Tracks,
};

/// A member-to-be of a consumer group; from [`Mq::consumer`].
#[derive(Debug)]
pub struct Consumer {
    pub(crate) mq: Mq,
    pub(crate) group: String,
    pub(crate) config: ConsumerConfig,
}

impl Consumer {
    /// Overrides the provider's consumer config for this consumer.
    #[must_use]
    pub fn config(mut self, config: ConsumerConfig) -> Self {
        self.config = config;
        self
    }

    /// Joins the group, reading `topics`, and runs `handler` on every message until the
    /// subscription is shut down or dropped.
    ///
    /// Delivery is at least once: an offset is committed only after its handler succeeded
    /// (or the message was dead-lettered) and every earlier offset of its partition did. A
    /// failing handler is retried with backoff `max_retries` times; then the message goes to
    /// `<topic><dead_letter_suffix>` with the error in its headers. Partitions are handled in
    /// order, `concurrency` at a time. The dead-letter topics are created here if missing.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty group or topic list, [`Error::Config`] for a
    /// bad consumer config, [`Error::Closed`] after `close`, and broker errors.
    pub async fn subscribe<H: Handler>(self, topics: &[&str], handler: H) -> Result<Subscription> {
        self.join(topics, Handling::One(Arc::new(handler))).await
    }

    /// Like [`Consumer::subscribe`], but `handler` gets the messages of a partition in
    /// batches: what waits in the partition's queue when its previous batch is done, in
    /// offset order, at most `max_batch` at a time. One partition's batches run one after the
    /// other; `concurrency` batches run at once over all partitions. A batch's offsets are
    /// committed once the handler succeeded for all of it; a failing batch is retried whole,
    /// then its messages one by one, so a bad message is dead-lettered alone (see
    /// [`BatchHandler`]).
    ///
    /// A batch is what a hop needs to do its work once for many messages: one insert, one
    /// multi-get, one produce per destination, then one commit.
    ///
    /// # Errors
    /// As [`Consumer::subscribe`].
    pub async fn subscribe_batch<H: BatchHandler>(
        self,
        topics: &[&str],
        handler: H,
    ) -> Result<Subscription> {
        self.join(topics, Handling::Batch(Arc::new(handler))).await
    }

    async fn join(self, topics: &[&str], handler: Handling) -> Result<Subscription> {
        let shared = &self.mq.shared;
        if shared.closed.load(Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        if self.group.is_empty() {
            return Err(Error::InvalidArgument(
                "the consumer group is empty".to_owned(),
            ));
        }
        if topics.is_empty() || topics.iter().any(|t| t.is_empty()) {
            return Err(Error::InvalidArgument(format!(
                "a subscription needs topic names, got {topics:?}"
            )));
        }
        self.config.validate("consumer")?;
        let admin = self.mq.admin();
        for topic in topics {
            let partitions = admin.partitions(topic).await.unwrap_or(1);
            let dead_letters = format!("{topic}{}", self.config.dead_letter_suffix);
            admin.ensure_topic(&dead_letters, partitions).await?;
        }

        let ctx = shared.ctx.child();
        let tracks = Arc::new(Tracks::default());
        let counters = Arc::new(Counters::default());
        let assignment = Assignment::default();
        let source = shared
            .client
            .subscribe(Member {
                group: self.group.clone(),
                topics: topics.iter().map(|t| (*t).to_owned()).collect(),
                start: self.config.start,
                instance: self.config.instance_id.clone(),
                tracks: tracks.clone(),
                counters: counters.clone(),
                assignment: assignment.clone(),
            })
            .await?;
        shared.register(&counters);
        let log = shared.log.namespace("consumer");
        gochat_clog::info!(log, group = self.group, topics = ?topics, "subscribed");
        let engine = Arc::new(Engine {
            group: self.group.clone(),
            permits: Semaphore::new(self.config.concurrency),
            config: self.config,
            handler,
            producer: self.mq.producer(),
            tracks,
            counters: [counters.clone(), shared.counters.clone()],
            log,
            stop: ctx.child(),
        });
        let task = ctx.spawn(engine::run(ctx.clone(), source, engine));
        Ok(Subscription {
            ctx,
            task: Some(task),
            counters,
            assignment,
            group: self.group,
        })
    }
}

/// A running member of a consumer group.
///
/// [`Subscription::shutdown`] stops it gracefully and waits; dropping it stops it the same
/// way in the background.
#[derive(Debug)]
pub struct Subscription {
    ctx: Context,
    task: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
    assignment: Assignment,
    group: String,
}

impl Subscription {
    /// The consumer group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The partitions this member owns now.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.assignment.get()
    }

    /// This member's counters.
    pub fn stats(&self) -> Stats {
        self.counters.snapshot()
    }

    /// Stops fetching, lets the handlers in flight finish (up to `shutdown_grace`), commits
    /// what is done and leaves the group.
    pub async fn shutdown(mut self) {
        self.ctx.cancel();
        if let Some(task) = self.task.take() {
            // A panic inside the engine was already reported by tokio; nothing to add.
            let _ = task.await;
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.ctx.cancel();
    }
}
