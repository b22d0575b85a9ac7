//! The consumer engine both backends share: fetch, dispatch per partition, handle with retries
//! and dead letters, commit what is done.
//!
//! One fetch loop reads from the backend and hands each message to its partition's worker.
//! A worker handles its partition in order (per key, with `per_partition` above 1), or, for
//! a batch handler, a batch at a time — what waits in its queue, up to `max_batch`;
//! `concurrency` handlers run at once over all partitions. A
//! worker queue that stays full (slow handlers) pauses its partition at the broker instead of
//! blocking the loop, so the loop keeps serving rebalances and other partitions.

use std::{
    collections::{BTreeSet, HashMap, HashSet, VecDeque},
    panic::AssertUnwindSafe,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use futures_util::{FutureExt, StreamExt, stream::FuturesUnordered};
use gochat_clog::Logger;
use gochat_core::{BoxFuture, Context};
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
    handler::{BatchHandler, Handler, HandlerError, Permanent, dead_letter},
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

/// What a subscription runs: a handler per message, or per batch.
pub(crate) enum Handling {
    One(Arc<dyn Handler>),
    Batch(Arc<dyn BatchHandler>),
}

/// What a subscription's tasks share.
pub(crate) struct Engine {
    pub(crate) group: String,
    pub(crate) config: ConsumerConfig,
    pub(crate) handler: Handling,
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

#[derive(Clone, Copy)]
enum Outcome {
    /// Handled or dead-lettered: its offset may be committed.
    Done,
    /// Shutdown came first: not committed, so it will be delivered again.
    Abandoned,
}

/// A handler call on a message (a batch of one) or a batch.
type Call<'a> = dyn Fn(&[Received]) -> BoxFuture<'static, Result<(), HandlerError>> + Sync + 'a;

/// How the attempts at a message or batch ended.
enum Attempts {
    Done,
    /// Retries ran out, or the error was permanent: the last error.
    Failed(HandlerError),
    /// Shutdown came first.
    Stopped,
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
        let inbox = Inbox {
            tp: tp.clone(),
            track: track.clone(),
            queue: rx,
            drained: drained.clone(),
        };
        let task = match &engine.handler {
            Handling::One(handler) => tokio::spawn(work(engine.clone(), handler.clone(), inbox)),
            Handling::Batch(handler) => {
                tokio::spawn(work_batches(engine.clone(), handler.clone(), inbox))
            }
        };
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

/// What a partition's worker reads: its queue, and the way to tell the fetch loop there is
/// room in it again.
struct Inbox {
    tp: TopicPartition,
    track: Arc<Track>,
    queue: mpsc::Receiver<Received>,
    drained: mpsc::UnboundedSender<TopicPartition>,
}

impl Inbox {
    /// Once the queue is at most half full, asks the fetch loop to move in what it held back.
    fn make_room(&self, buffer: usize) {
        if self.queue.len() <= buffer / 2 && self.track.backlog.swap(false, Ordering::SeqCst) {
            // The fetch loop may be gone already; then there is nothing to refill.
            let _ = self.drained.send(self.tp.clone());
        }
    }
}

/// One partition's worker: its messages in order, one at a time — or, with `per_partition`
/// above 1, up to that many at once, never two of one key (see [`Window`]).
async fn work(engine: Arc<Engine>, handler: Arc<dyn Handler>, mut inbox: Inbox) {
    let track = inbox.track.clone();
    let mut window = Window::default();
    let mut running = FuturesUnordered::new();
    let limit = engine.config.per_partition;
    // Set on a stop, a revocation or an abandoned handler: take nothing more, let the
    // handlers in hand finish, then end.
    let mut closing = false;
    loop {
        closing |= engine.stop.is_cancelled() || track.is_revoked();
        if closing && running.is_empty() {
            return;
        }
        if !closing {
            for message in window.ready() {
                running.push(handle(engine.clone(), handler.clone(), message));
            }
        }
        let room = !closing && window.len() < limit;
        tokio::select! {
            biased;
            Some((offset, key, outcome)) = running.next(), if !running.is_empty() => match outcome {
                Outcome::Done => {
                    if let Some(next) = window.finish(offset, key.as_ref()) {
                        track.finish(next);
                    }
                }
                Outcome::Abandoned => closing = true,
            },
            () = engine.stop.cancelled(), if !closing => closing = true,
            message = inbox.queue.recv(), if room => {
                let Some(message) = message else {
                    closing = true;
                    continue;
                };
                inbox.make_room(engine.config.buffer);
                window.push(message);
            }
        }
    }
}

/// One partition's worker for a batch handler: what waits in its queue (up to `max_batch`)
/// as one batch, one batch at a time; the offsets committed once the batch is done.
async fn work_batches(engine: Arc<Engine>, handler: Arc<dyn BatchHandler>, mut inbox: Inbox) {
    let (limit, track) = (engine.config.max_batch, inbox.track.clone());
    loop {
        if engine.stop.is_cancelled() || track.is_revoked() {
            return;
        }
        let first = tokio::select! {
            biased;
            () = engine.stop.cancelled() => return,
            message = inbox.queue.recv() => match message {
                Some(message) => message,
                None => return,
            },
        };
        let batch = take_batch(first, &mut inbox.queue, limit);
        inbox.make_room(engine.config.buffer);
        let end = batch.last().map_or(0, |m| m.offset + 1);
        let permit = tokio::select! {
            biased;
            () = engine.stop.cancelled() => return,
            permit = engine.permits.acquire() => permit,
        };
        let Ok(_permit) = permit else {
            return;
        };
        match engine.process_batch(&handler, batch).await {
            Outcome::Done => track.finish(end),
            Outcome::Abandoned => return,
        }
    }
}

/// `first` and what waits behind it in `queue`, up to `limit` messages in all.
fn take_batch(
    first: Received,
    queue: &mut mpsc::Receiver<Received>,
    limit: usize,
) -> Vec<Received> {
    let mut batch = Vec::with_capacity(queue.len().min(limit) + 1);
    batch.push(first);
    while batch.len() < limit {
        match queue.try_recv() {
            Ok(message) => batch.push(message),
            Err(_) => break,
        }
    }
    batch
}

/// Handles one message once a permit is free; its offset and key, and how it ended.
async fn handle(
    engine: Arc<Engine>,
    handler: Arc<dyn Handler>,
    message: Received,
) -> (i64, Option<Bytes>, Outcome) {
    let (offset, key) = (message.offset, message.key.clone());
    let permit = tokio::select! {
        biased;
        () = engine.stop.cancelled() => return (offset, key, Outcome::Abandoned),
        permit = engine.permits.acquire() => permit,
    };
    let Ok(_permit) = permit else {
        return (offset, key, Outcome::Abandoned);
    };
    (offset, key, engine.process(&handler, message).await)
}

/// The messages of one partition a worker holds — waiting or being handled — in offset
/// order. A message starts when no message of its key is being handled and none of its key
/// waits before it, so each key keeps the partition's order; what may be committed is
/// everything before the first message not yet done.
#[derive(Default)]
struct Window {
    /// Taken from the queue, not started; in offset order.
    waiting: VecDeque<Received>,
    /// The keys being handled (messages without a key share `None`).
    busy: HashSet<Option<Bytes>>,
    /// The offsets held, waiting or running.
    held: BTreeSet<i64>,
    /// The offset after the last message taken.
    end: i64,
}

impl Window {
    fn len(&self) -> usize {
        self.held.len()
    }

    fn push(&mut self, message: Received) {
        self.end = message.offset + 1;
        self.held.insert(message.offset);
        self.waiting.push_back(message);
    }

    /// The waiting messages that may start now, marked busy.
    fn ready(&mut self) -> Vec<Received> {
        let mut ready = Vec::new();
        let mut blocked: HashSet<Option<Bytes>> = HashSet::new();
        let mut kept = VecDeque::with_capacity(self.waiting.len());
        while let Some(message) = self.waiting.pop_front() {
            if self.busy.contains(&message.key) || blocked.contains(&message.key) {
                blocked.insert(message.key.clone());
                kept.push_back(message);
            } else {
                self.busy.insert(message.key.clone());
                ready.push(message);
            }
        }
        self.waiting = kept;
        ready
    }

    /// `offset` is done; the offset to commit up to, if it moved.
    fn finish(&mut self, offset: i64, key: Option<&Bytes>) -> Option<i64> {
        self.busy.remove(&key.cloned());
        let first = self.held.first().copied();
        self.held.remove(&offset);
        if first != Some(offset) {
            return None;
        }
        Some(self.held.first().copied().unwrap_or(self.end))
    }
}

impl Engine {
    fn count(&self, counter: impl Fn(&Counters) -> &AtomicU64) {
        for counters in &self.counters {
            Counters::add(counter(counters));
        }
    }

    /// Runs the handler, retrying with backoff; dead-letters the message when retries run out.
    async fn process(&self, handler: &Arc<dyn Handler>, message: Received) -> Outcome {
        self.count(|c| &c.consumed);
        let mut one = [message];
        let call = |batch: &[Received]| -> BoxFuture<'static, Result<(), HandlerError>> {
            match batch.first() {
                Some(message) => handler.handle(message.clone()),
                None => Box::pin(async { Ok(()) }),
            }
        };
        match self.attempt(&mut one, &call).await {
            Attempts::Done => Outcome::Done,
            Attempts::Stopped => Outcome::Abandoned,
            Attempts::Failed(error) => self.dead_letter(&one[0], &error).await,
        }
    }

    /// Runs the batch handler, retrying with backoff; when retries run out (or at once on a
    /// [`Permanent`] error) each message is handled alone, so only what fails alone is
    /// dead-lettered.
    async fn process_batch(
        &self,
        handler: &Arc<dyn BatchHandler>,
        mut batch: Vec<Received>,
    ) -> Outcome {
        for _ in &batch {
            self.count(|c| &c.consumed);
        }
        let call = |batch: &[Received]| handler.handle(batch.to_vec());
        let error = match self.attempt(&mut batch, &call).await {
            Attempts::Done => return Outcome::Done,
            Attempts::Stopped => return Outcome::Abandoned,
            Attempts::Failed(error) => error,
        };
        if let [message] = batch.as_slice() {
            return self.dead_letter(message, &error).await;
        }
        gochat_clog::warn!(
            self.log,
            group = self.group,
            size = batch.len(),
            error = %error,
            "a batch failed; handling its messages one by one"
        );
        for message in batch {
            let mut one = [message];
            let outcome = match self.attempt(&mut one, &call).await {
                Attempts::Done => Outcome::Done,
                Attempts::Stopped => Outcome::Abandoned,
                Attempts::Failed(error) => self.dead_letter(&one[0], &error).await,
            };
            if let Outcome::Abandoned = outcome {
                return outcome;
            }
        }
        Outcome::Done
    }

    /// Calls the handler on `batch` (never empty; one message for a per-message handler)
    /// until it succeeds, retrying with backoff `max_retries` times. A panic counts as an
    /// error.
    async fn attempt(&self, batch: &mut [Received], call: &Call<'_>) -> Attempts {
        let Some(first) = batch.first() else {
            return Attempts::Done;
        };
        let (topic, partition, offset) = (first.topic.clone(), first.partition, first.offset);
        let span = trace::handler_span(&self.log, first);
        let mut attempt = 0;
        loop {
            attempt += 1;
            for message in batch.iter_mut() {
                message.attempt = attempt;
            }
            let handled = self
                .log
                .bind(AssertUnwindSafe(call(batch)).catch_unwind())
                .instrument(span.clone())
                .await;
            let error: HandlerError = match handled {
                Ok(Ok(())) => return Attempts::Done,
                Ok(Err(error)) => error,
                Err(panic) => panic_text(panic.as_ref()).into(),
            };
            if error.is::<Permanent>() || attempt > self.config.max_retries {
                return Attempts::Failed(error);
            }
            self.count(|c| &c.retried);
            gochat_clog::warn!(
                self.log,
                topic = topic,
                partition = partition,
                offset = offset,
                size = batch.len(),
                attempt,
                error = %error,
                "handler failed; retrying"
            );
            let pause = self.config.backoff(attempt);
            if self.stop.run_until_cancelled(sleep(pause)).await.is_none() {
                return Attempts::Stopped;
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn received(offset: i64, key: Option<&'static str>) -> Received {
        Received {
            topic: "t".into(),
            partition: 0,
            offset,
            key: key.map(|k| Bytes::from_static(k.as_bytes())),
            value: Bytes::new(),
            headers: crate::Headers::default(),
            timestamp: None,
            attempt: 0,
        }
    }

    fn offsets(ready: &[Received]) -> Vec<i64> {
        ready.iter().map(|m| m.offset).collect()
    }

    #[test]
    fn a_batch_is_what_waits_up_to_the_limit() {
        let (tx, mut queue) = mpsc::channel(16);
        for offset in 0..7 {
            tx.try_send(received(offset, None)).unwrap();
        }
        let next = |queue: &mut mpsc::Receiver<Received>| {
            let first = queue.try_recv().unwrap();
            offsets(&take_batch(first, queue, 4))
        };
        assert_eq!(next(&mut queue), [0, 1, 2, 3], "the limit");
        assert_eq!(next(&mut queue), [4, 5, 6], "what waited, in order");
        tx.try_send(received(7, None)).unwrap();
        assert_eq!(next(&mut queue), [7], "nothing waits: a batch of one");
    }

    #[test]
    fn one_key_keeps_its_order_while_other_keys_run() {
        let mut window = Window::default();
        for (offset, key) in [(0, "a"), (1, "b"), (2, "a"), (3, "c"), (4, "b")] {
            window.push(received(offset, Some(key)));
        }
        // The first of each key starts; a's and b's second wait behind them.
        assert_eq!(offsets(&window.ready()), [0, 1, 3]);
        assert!(window.ready().is_empty());
        // c finishes first: 0 is still running, so nothing may be committed.
        assert_eq!(window.finish(3, Some(&Bytes::from_static(b"c"))), None);
        // b's first finishes: its second may start; still nothing to commit (0 runs).
        assert_eq!(window.finish(1, Some(&Bytes::from_static(b"b"))), None);
        assert_eq!(offsets(&window.ready()), [4]);
        // a's first finishes: everything before 2 is done.
        assert_eq!(window.finish(0, Some(&Bytes::from_static(b"a"))), Some(2));
        assert_eq!(offsets(&window.ready()), [2]);
        assert_eq!(window.finish(4, Some(&Bytes::from_static(b"b"))), None);
        assert_eq!(window.finish(2, Some(&Bytes::from_static(b"a"))), Some(5));
        assert_eq!(window.len(), 0);
    }

    #[test]
    fn messages_without_a_key_stay_in_partition_order() {
        let mut window = Window::default();
        for offset in 0..3 {
            window.push(received(offset, None));
        }
        window.push(received(3, Some("k")));
        assert_eq!(offsets(&window.ready()), [0, 3]);
        assert_eq!(window.finish(0, None), Some(1));
        assert_eq!(offsets(&window.ready()), [1]);
    }

    #[test]
    fn a_later_message_of_a_busy_key_never_overtakes_a_waiting_one() {
        let mut window = Window::default();
        window.push(received(0, Some("a")));
        assert_eq!(offsets(&window.ready()), [0]);
        window.push(received(1, Some("a")));
        window.push(received(2, Some("b")));
        window.push(received(3, Some("a")));
        assert_eq!(offsets(&window.ready()), [2]);
        window.finish(0, Some(&Bytes::from_static(b"a")));
        // 1 before 3, and 3 only after 1.
        assert_eq!(offsets(&window.ready()), [1]);
        assert!(window.ready().is_empty());
    }
}
