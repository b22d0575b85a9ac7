//! The consumer engine both backends share: fetch, dispatch per partition, handle with retries
//! and dead letters, commit what is done.
//!
//! One fetch loop reads from the backend and hands each message to its partition's worker.
//! A worker handles its partition in order; `concurrency` workers run handlers at once. A
//! worker queue that stays full (slow handlers) pauses its partition at the broker instead of
//! blocking the loop, so the loop keeps serving rebalances and other partitions.

use std::{
    collections::{HashMap, VecDeque},
    panic::AssertUnwindSafe,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures_util::FutureExt;
use gochat_clog::Logger;
use gochat_core::Context;
use tokio::{
    sync::{
        Semaphore,
        mpsc::{self, error::TrySendError},
    },
    task::JoinHandle,
    time::{MissedTickBehavior, interval, sleep, timeout},
};
use tracing::Instrument;

use crate::{
    Producer,
    backend::Source,
    config::ConsumerConfig,
    handler::{Handler, HandlerError, Permanent, dead_letter},
    message::{Message, Received, TopicPartition},
    stats::Counters,
    trace,
    track::{Track, Tracks},
};

/// How long the fetch loop waits for room in a full partition queue before pausing the
/// partition.
const ROOM_WAIT: Duration = Duration::from_millis(100);

/// The longest handler error kept in a dead letter's header.
const MAX_ERROR_LEN: usize = 4096;

/// What a subscription's tasks share.
pub(crate) struct Engine {
    pub(crate) group: String,
    pub(crate) config: ConsumerConfig,
    pub(crate) handler: Arc<dyn Handler>,
    pub(crate) producer: Producer,
    pub(crate) tracks: Arc<Tracks>,
    /// This subscription's counters, and the provider's.
    pub(crate) counters: [Arc<Counters>; 2],
    pub(crate) log: Logger,
    /// Cancelled at shutdown: workers finish the message in hand and take no more.
    pub(crate) stop: Context,
    pub(crate) permits: Semaphore,
}

struct Worker {
    track: Arc<Track>,
    queue: mpsc::Sender<Received>,
    /// Fetched while the partition was paused, waiting for room.
    overflow: VecDeque<Received>,
    /// Paused at the broker because the queue stayed full.
    paused: bool,
    task: JoinHandle<()>,
}

enum Outcome {
    /// Handled or dead-lettered: its offset may be committed.
    Done,
    /// Shutdown came first: not committed, so it will be delivered again.
    Abandoned,
}

/// Runs the fetch loop until `ctx` is cancelled, then shuts down gracefully: stop fetching,
/// let handlers in flight finish (up to `shutdown_grace`), commit, leave the group.
pub(crate) async fn run(ctx: Context, mut source: Source, engine: Arc<Engine>) {
    let (drained_tx, mut drained) = mpsc::unbounded_channel::<TopicPartition>();
    let mut workers: HashMap<TopicPartition, Worker> = HashMap::new();
    let mut commit = interval(engine.config.commit_interval);
    commit.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failures = 0u32;
    loop {
        tokio::select! {
            biased;
            () = ctx.cancelled() => break,
            Some(tp) = drained.recv() => refill(&mut workers, &mut source, &tp),
            _ = commit.tick() => {
                workers.retain(|_, w| !(w.track.is_revoked() && w.task.is_finished()));
                let behind: Vec<_> = workers.iter().filter(|(_, w)| !w.overflow.is_empty()).map(|(tp, _)| tp.clone()).collect();
                for tp in behind {
                    refill(&mut workers, &mut source, &tp);
                }
                let done = engine.tracks.take_pending();
                if !done.is_empty() && let Err(e) = source.commit(done, false).await {
                    gochat_clog::warn!(engine.log, group = engine.group, error = %e, "commit failed; the next one will carry these offsets");
                }
            }
            next = source.next() => match next {
                Ok(message) => {
                    failures = 0;
                    dispatch(&engine, &mut workers, &mut source, message, &drained_tx).await;
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    gochat_clog::warn!(engine.log, group = engine.group, error = %e, "fetch failed; retrying");
                    let pause = engine.config.backoff(failures);
                    if ctx.run_until_cancelled(sleep(pause)).await.is_none() {
                        break;
                    }
                }
            },
        }
    }
    shutdown(&engine, workers, source).await;
}

async fn shutdown(engine: &Engine, workers: HashMap<TopicPartition, Worker>, source: Source) {
    engine.stop.cancel();
    let tasks: Vec<JoinHandle<()>> = workers.into_values().map(|w| w.task).collect();
    let aborts: Vec<_> = tasks.iter().map(JoinHandle::abort_handle).collect();
    let finished = timeout(
        engine.config.shutdown_grace,
        futures_util::future::join_all(tasks),
    )
    .await;
    if finished.is_err() {
        gochat_clog::warn!(
            engine.log,
            group = engine.group,
            "handlers still running after the shutdown grace; their messages will be delivered again"
        );
        aborts.iter().for_each(tokio::task::AbortHandle::abort);
    }
    let done = engine.tracks.revoke_all();
    if !done.is_empty()
        && let Err(e) = source.commit(done, true).await
    {
        gochat_clog::error!(engine.log, group = engine.group, error = %e, "final commit failed; handled messages will be delivered again");
    }
    source.close().await;
    gochat_clog::info!(engine.log, group = engine.group, "consumer stopped");
}

async fn dispatch(
    engine: &Arc<Engine>,
    workers: &mut HashMap<TopicPartition, Worker>,
    source: &mut Source,
    message: Received,
    drained: &mpsc::UnboundedSender<TopicPartition>,
) {
    let tp = TopicPartition::new(message.topic.as_str(), message.partition);
    let stale = workers.get(&tp).is_none_or(|w| w.track.is_revoked());
    if stale {
        let track = engine.tracks.start(tp.clone());
        let (queue, rx) = mpsc::channel(engine.config.buffer);
        let task = tokio::spawn(work(
            engine.clone(),
            tp.clone(),
            track.clone(),
            rx,
            drained.clone(),
        ));
        workers.insert(
            tp.clone(),
            Worker {
                track,
                queue,
                overflow: VecDeque::new(),
                paused: false,
                task,
            },
        );
    }
    let Some(worker) = workers.get_mut(&tp) else {
        return;
    };
    if !worker.overflow.is_empty() {
        worker.overflow.push_back(message);
        return;
    }
    let message = match worker.queue.try_send(message) {
        Ok(()) => return,
        Err(TrySendError::Full(message)) => message,
        // The worker stopped (its partition was revoked): the message is not committed and
        // goes to the partition's next owner.
        Err(TrySendError::Closed(_)) => return,
    };
    // A burst the worker is working through: room comes soon. Pausing at once would drop
    // librdkafka's prefetched messages of the partition only to fetch them again.
    match timeout(ROOM_WAIT, worker.queue.reserve()).await {
        Ok(Ok(room)) => room.send(message),
        Ok(Err(_)) => {}
        // The worker is stuck on slow handlers: park the partition at the broker so the
        // loop keeps serving the others and the group.
        Err(_) => {
            worker.overflow.push_back(message);
            worker.track.backlog.store(true, Ordering::SeqCst);
            worker.paused = true;
            source.pause(&tp);
        }
    }
}

/// Moves messages held back while a partition's queue was full into the queue; resumes the
/// partition, if paused, when all fit.
fn refill(workers: &mut HashMap<TopicPartition, Worker>, source: &mut Source, tp: &TopicPartition) {
    let Some(worker) = workers.get_mut(tp) else {
        return;
    };
    if worker.overflow.is_empty() {
        return;
    }
    while let Some(message) = worker.overflow.pop_front() {
        match worker.queue.try_send(message) {
            Ok(()) => {}
            Err(TrySendError::Full(message)) => {
                worker.overflow.push_front(message);
                worker.track.backlog.store(true, Ordering::SeqCst);
                return;
            }
            Err(TrySendError::Closed(_)) => {
                worker.overflow.clear();
                return;
            }
        }
    }
    if std::mem::take(&mut worker.paused) {
        source.resume(tp);
    }
}

/// One partition's worker: its messages in order, one at a time.
async fn work(
    engine: Arc<Engine>,
    tp: TopicPartition,
    track: Arc<Track>,
    mut queue: mpsc::Receiver<Received>,
    drained: mpsc::UnboundedSender<TopicPartition>,
) {
    loop {
        let message = tokio::select! {
            biased;
            () = engine.stop.cancelled() => return,
            message = queue.recv() => match message {
                Some(message) => message,
                None => return,
            },
        };
        if track.is_revoked() {
            return;
        }
        if queue.len() <= engine.config.buffer / 2 && track.backlog.swap(false, Ordering::SeqCst) {
            // The fetch loop may be gone already; then there is nothing to refill.
            let _ = drained.send(tp.clone());
        }
        let next = message.offset + 1;
        let permit = tokio::select! {
            biased;
            () = engine.stop.cancelled() => return,
            permit = engine.permits.acquire() => permit,
        };
        let Ok(_permit) = permit else { return };
        match engine.process(message).await {
            Outcome::Done => track.finish(next),
            Outcome::Abandoned => return,
        }
    }
}

impl Engine {
    fn count(&self, counter: impl Fn(&Counters) -> &AtomicU64) {
        for counters in &self.counters {
            Counters::add(counter(counters));
        }
    }

    /// Runs the handler, retrying with backoff; dead-letters the message when retries run out.
    async fn process(&self, mut message: Received) -> Outcome {
        self.count(|c| &c.consumed);
        let span = trace::handler_span(&self.log, &message);
        let mut attempt = 0;
        loop {
            attempt += 1;
            message.attempt = attempt;
            let handled = self
                .log
                .bind(AssertUnwindSafe(self.handler.handle(message.clone())).catch_unwind())
                .instrument(span.clone())
                .await;
            let error: HandlerError = match handled {
                Ok(Ok(())) => return Outcome::Done,
                Ok(Err(error)) => error,
                Err(panic) => panic_text(panic.as_ref()).into(),
            };
            if !error.is::<Permanent>() && attempt <= self.config.max_retries {
                self.count(|c| &c.retried);
                gochat_clog::warn!(
                    self.log,
                    topic = message.topic,
                    partition = message.partition,
                    offset = message.offset,
                    attempt,
                    error = %error,
                    "handler failed; retrying"
                );
                let pause = self.config.backoff(attempt);
                if self.stop.run_until_cancelled(sleep(pause)).await.is_none() {
                    return Outcome::Abandoned;
                }
                continue;
            }
            return self.dead_letter(&message, &error).await;
        }
    }

    /// Sends `message` to its dead-letter topic, retrying until the broker takes it (a dead
    /// letter is never dropped) or shutdown comes.
    async fn dead_letter(&self, message: &Received, error: &HandlerError) -> Outcome {
        let mut text = error.to_string();
        if text.len() > MAX_ERROR_LEN {
            let mut end = MAX_ERROR_LEN;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        let mut letter = Message::new(
            format!("{}{}", message.topic, self.config.dead_letter_suffix),
            message.value.clone(),
        );
        letter.key = message.key.clone();
        letter.headers = message.headers.clone();
        for (name, value) in [
            (dead_letter::ERROR, text.clone()),
            (dead_letter::TOPIC, message.topic.clone()),
            (dead_letter::PARTITION, message.partition.to_string()),
            (dead_letter::OFFSET, message.offset.to_string()),
            (dead_letter::ATTEMPTS, message.attempt.to_string()),
            (dead_letter::GROUP, self.group.clone()),
        ] {
            letter.headers.insert(name, value);
        }
        let mut failures = 0;
        loop {
            match self.producer.send(letter.clone()).await {
                Ok(delivery) => {
                    self.count(|c| &c.dead_lettered);
                    gochat_clog::error!(
                        self.log,
                        topic = message.topic,
                        partition = message.partition,
                        offset = message.offset,
                        attempts = message.attempt,
                        dead_letter_topic = delivery.topic,
                        error = text,
                        "handler gave up; message dead-lettered"
                    );
                    return Outcome::Done;
                }
                Err(e) => {
                    failures += 1;
                    gochat_clog::error!(
                        self.log,
                        topic = letter.topic,
                        error = %e,
                        "dead-lettering failed; retrying"
                    );
                    let pause = self
                        .config
                        .backoff(failures)
                        .max(Duration::from_millis(100));
                    if self.stop.run_until_cancelled(sleep(pause)).await.is_none() {
                        return Outcome::Abandoned;
                    }
                }
            }
        }
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a non-text panic");
    format!("handler panicked: {text}")
}
