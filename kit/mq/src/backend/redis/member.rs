//! A group member on Redis Streams: partitions leased one member at a time, read with
//! `XREAD BLOCK` (delivered as soon as they are written), offsets committed only by a member
//! that still holds the partition's lease.
//!
//! Every `heartbeat_interval` a member renews its membership and leases (one script), spreads
//! the topics' partitions over the live members (sorted by id, round-robin, the same answer
//! on every member), hands back what is no longer its share (committing what is done first,
//! as in Kafka's rebalance) and takes what is free of its share (starting at the committed
//! offset). A member that stops renewing loses its leases after `session_timeout`; the
//! others then take its partitions from their committed offsets, so what it had not
//! committed is delivered again.

use std::{
    collections::{BTreeSet, HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use fred::{
    interfaces::{ClientLike, HashesInterface, StreamsInterface},
    prelude::Client,
    types::{Value, streams::XID},
};
use gochat_core::Context;
use tokio::{
    sync::{Notify, mpsc},
    task::JoinHandle,
    time::{Instant, sleep, sleep_until},
};

use super::{Inner, connect, eval, map_error, offset_field, received, scripts};
use crate::{
    Error, Start,
    backend::{Assignment, Member},
    error::Result,
    message::{Received, TopicPartition},
    stats::Counters,
    track::{Offsets, Tracks},
};

/// A message read, tagged with the ownership (epoch) it was read under.
type Tagged = (u64, Received);

/// What the reader task and the engine's side of the source share.
struct State {
    /// Owned partitions: epoch of the ownership and where reading began.
    owned: HashMap<TopicPartition, Owned>,
    paused: HashSet<TopicPartition>,
}

#[derive(Clone, Copy)]
struct Owned {
    epoch: u64,
    /// The next offset to read.
    position: i64,
    /// Where reading began (the lag counts from here until the first commit).
    origin: i64,
}

struct Shared {
    inner: Arc<Inner>,
    id: String,
    group: String,
    topics: Vec<String>,
    start: Start,
    tracks: Arc<Tracks>,
    counters: Arc<Counters>,
    assignment: Assignment,
    state: Mutex<State>,
    /// Wakes a reader that has nothing to read (a resume, a new partition).
    wake: Notify,
}

pub(crate) struct RedisSource {
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Vec<Tagged>>,
    buffered: VecDeque<Tagged>,
    stop: Context,
    task: Option<JoinHandle<()>>,
}

impl RedisSource {
    pub(super) async fn join(inner: Arc<Inner>, member: Member) -> Result<Self> {
        // XREAD BLOCK holds its connection: every member reads on its own.
        let reader = connect(&inner.config).await?;
        // A static member keeps its id across restarts: the leases its previous life still
        // holds are its own again at the first claim.
        let id = member.instance.clone().unwrap_or_else(|| {
            format!(
                "{}-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
                random_suffix()
            )
        });
        let shared = Arc::new(Shared {
            inner,
            id,
            group: member.group,
            topics: member.topics,
            start: member.start,
            tracks: member.tracks,
            counters: member.counters,
            assignment: member.assignment,
            state: Mutex::new(State {
                owned: HashMap::new(),
                paused: HashSet::new(),
            }),
            wake: Notify::new(),
        });
        // Join now, so the caller's first messages are not a heartbeat away.
        shared.beat().await?;
        let (tx, rx) = mpsc::channel(4);
        let stop = Context::new();
        let task = tokio::spawn(read(shared.clone(), reader, tx, stop.clone()));
        Ok(Self {
            shared,
            rx,
            buffered: VecDeque::new(),
            stop,
            task: Some(task),
        })
    }

    /// The next message of a partition this member still owns. Cancellation-safe: what was
    /// read waits in the channel or the buffer.
    pub(crate) async fn next(&mut self) -> Result<Received> {
        loop {
            while let Some((epoch, message)) = self.buffered.pop_front() {
                let tp = TopicPartition::new(message.topic.as_str(), message.partition);
                let current = self.shared.state().owned.get(&tp).map(|o| o.epoch);
                if current == Some(epoch) {
                    return Ok(message);
                }
            }
            match self.rx.recv().await {
                Some(batch) => self.buffered.extend(batch),
                None => return Err(Error::Closed),
            }
        }
    }

    /// Commits `offsets` of the partitions this member still holds.
    pub(crate) async fn commit(&self, offsets: &Offsets) -> Result<()> {
        self.shared.commit(offsets, &[], false).await
    }

    pub(crate) fn pause(&mut self, tp: &TopicPartition) {
        self.shared.state().paused.insert(tp.clone());
    }

    pub(crate) fn resume(&mut self, tp: &TopicPartition) {
        self.shared.state().paused.remove(tp);
        self.shared.wake.notify_one();
    }

    /// Stops reading, hands the partitions back and leaves the group.
    pub(crate) async fn close(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let owned: Vec<TopicPartition> = self.shared.state().owned.keys().cloned().collect();
        if let Err(e) = self.shared.commit(&Vec::new(), &owned, true).await {
            gochat_clog::warn!(self.shared.inner.log, group = self.shared.group, error = %e, "leaving the group failed; its partitions move on when the session times out");
        }
        self.shared.state().owned.clear();
        self.shared.assignment.update(BTreeSet::clear);
    }
}

impl Drop for RedisSource {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A few random bits for member ids, from the std hasher's per-process keys.
fn random_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0);
    hasher.finish()
}

/// The reader: renews and rebalances every heartbeat, and between heartbeats blocks on the
/// owned, unpaused partitions' streams.
async fn read(shared: Arc<Shared>, reader: Client, tx: mpsc::Sender<Vec<Tagged>>, stop: Context) {
    let interval = shared.inner.config.heartbeat_interval;
    let mut next_beat = Instant::now() + interval;
    let mut last_beat = Instant::now();
    let mut failures = 0u32;
    let count = 1024u64;
    loop {
        if stop.is_cancelled() {
            break;
        }
        if Instant::now() >= next_beat {
            next_beat = Instant::now() + interval;
            match shared.beat().await {
                Ok(()) => last_beat = Instant::now(),
                Err(e) => {
                    gochat_clog::warn!(shared.inner.log, group = shared.group, error = %e, "group heartbeat failed; retrying");
                    if last_beat.elapsed() >= shared.inner.config.session_timeout {
                        // The leases have expired by now: others may own the partitions.
                        shared.lose_all();
                    }
                }
            }
        }
        let streams = shared.readable();
        if streams.is_empty() {
            tokio::select! {
                () = stop.cancelled() => break,
                () = shared.wake.notified() => {}
                () = sleep_until(next_beat) => {}
            }
            continue;
        }
        let block = next_beat
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let keys: Vec<String> = streams.iter().map(|s| s.key.clone()).collect();
        let ids: Vec<XID> = streams
            .iter()
            .map(|s| XID::Manual(format!("0-{}", s.position).into()))
            .collect();
        let block_ms = u64::try_from(block.as_millis()).unwrap_or(u64::MAX);
        let reply = tokio::select! {
            () = stop.cancelled() => break,
            reply = reader.xread::<Value, _, _>(Some(count), Some(block_ms), keys, ids) => reply,
        };
        match reply {
            Ok(reply) => {
                failures = 0;
                let batch = shared.accept(&streams, reply);
                if !batch.is_empty() {
                    tokio::select! {
                        () = stop.cancelled() => break,
                        sent = tx.send(batch) => if sent.is_err() { break },
                    }
                }
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let e = map_error(&e, "reading");
                gochat_clog::warn!(shared.inner.log, group = shared.group, error = %e, "fetch failed; retrying");
                let pause = Duration::from_millis(50u64 << failures.min(6));
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = sleep(pause) => {}
                }
            }
        }
    }
    let _ = reader.quit().await;
}

/// A stream to read: its partition, key and position.
struct Readable {
    tp: TopicPartition,
    key: String,
    position: i64,
    epoch: u64,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn readable(&self) -> Vec<Readable> {
        let state = self.state();
        state
            .owned
            .iter()
            .filter(|(tp, _)| !state.paused.contains(*tp))
            .map(|(tp, owned)| Readable {
                tp: tp.clone(),
                key: self.inner.keys.stream(&tp.topic, tp.partition),
                position: owned.position,
                epoch: owned.epoch,
            })
            .collect()
    }

    /// The entries of an XREAD reply, tagged; advances the positions they were read under.
    fn accept(&self, streams: &[Readable], reply: Value) -> Vec<Tagged> {
        let by_key: HashMap<&str, &Readable> =
            streams.iter().map(|s| (s.key.as_str(), s)).collect();
        let mut batch = Vec::new();
        let Value::Array(replies) = reply else {
            return batch;
        };
        let mut state = self.state();
        for stream in replies {
            let Value::Array(mut parts) = stream else {
                continue;
            };
            let (Some(Value::Array(entries)), Some(key)) = (parts.pop(), parts.pop()) else {
                continue;
            };
            let Some(readable) = key.as_str().and_then(|k| by_key.get(k.as_ref()).copied()) else {
                continue;
            };
            let mut last = None;
            for entry in entries {
                if let Some(message) = received(&readable.tp.topic, readable.tp.partition, entry) {
                    last = Some(message.offset);
                    batch.push((readable.epoch, message));
                }
            }
            if let (Some(last), Some(owned)) = (last, state.owned.get_mut(&readable.tp))
                && owned.epoch == readable.epoch
            {
                owned.position = last + 1;
            }
        }
        batch
    }

    fn lease(&self, tp: &TopicPartition) -> String {
        self.inner.keys.lease(&tp.topic, tp.partition, &self.group)
    }

    fn session_ms(&self) -> i64 {
        i64::try_from(self.inner.config.session_timeout.as_millis()).unwrap_or(i64::MAX)
    }

    /// Commits `offsets` (fenced by the leases); releases the leases of `release`; leaves
    /// the group when `leave`.
    async fn commit(
        &self,
        offsets: &Offsets,
        release: &[TopicPartition],
        leave: bool,
    ) -> Result<()> {
        let mut entries: HashMap<&TopicPartition, String> =
            release.iter().map(|tp| (tp, String::new())).collect();
        for (tp, next) in offsets {
            entries.insert(tp, next.to_string());
        }
        if entries.is_empty() && !leave {
            return Ok(());
        }
        let mut keys = vec![self.inner.keys.members(&self.group)];
        let mut args: Vec<Value> = vec![
            self.id.clone().into(),
            if release.is_empty() { "0" } else { "1" }.into(),
            if leave { "1" } else { "0" }.into(),
        ];
        for (tp, offset) in entries {
            keys.push(self.lease(tp));
            keys.push(self.inner.keys.offsets(&tp.topic));
            args.push(offset_field(tp.partition, &self.group).into());
            args.push(offset.into());
        }
        let refused = eval(
            &self.inner.client,
            scripts::COMMIT,
            keys,
            args,
            "committing",
        )
        .await?;
        match refused.as_i64() {
            Some(0) | None => Ok(()),
            Some(n) => Err(Error::Backend(format!(
                "{n} offsets not committed: their partitions belong to another member now"
            ))),
        }
    }

    /// Renews, rebalances and refreshes the lag.
    async fn beat(&self) -> Result<()> {
        let owned: Vec<TopicPartition> = self.state().owned.keys().cloned().collect();
        let mut keys = vec![self.inner.keys.members(&self.group)];
        keys.extend(owned.iter().map(|tp| self.lease(tp)));
        let reply = eval(
            &self.inner.client,
            scripts::HEARTBEAT,
            keys,
            vec![self.id.clone().into(), self.session_ms().into()],
            "renewing the group membership",
        )
        .await?;
        let (members, held) = heartbeat_reply(reply);
        let lost: Vec<TopicPartition> = owned
            .iter()
            .zip(held.iter().chain(std::iter::repeat(&false)))
            .filter(|(_, held)| !**held)
            .map(|(tp, _)| tp.clone())
            .collect();
        self.lose(&lost, "this member was silent too long");

        let desired = self.share(&members).await?;
        let owned: BTreeSet<TopicPartition> = self.state().owned.keys().cloned().collect();
        let release: Vec<TopicPartition> = owned.difference(&desired).cloned().collect();
        if !release.is_empty() {
            // Kafka's order: commit what is done, then let the partitions go.
            let done = self.tracks.revoke(&release);
            if let Err(e) = self.commit(&done, &release, false).await {
                gochat_clog::warn!(self.inner.log, group = self.group, error = %e, "commit before revocation failed; those messages will be delivered again");
            }
            self.drop_owned(&release);
            gochat_clog::debug!(
                self.inner.log,
                group = self.group,
                partitions = release.len(),
                "partitions revoked"
            );
        }
        let claim: Vec<TopicPartition> = desired.difference(&owned).cloned().collect();
        if !claim.is_empty() {
            self.claim(&claim).await?;
        }
        self.refresh_lag().await
    }

    /// Gives up every partition without committing (the session is over).
    fn lose_all(&self) {
        let owned: Vec<TopicPartition> = self.state().owned.keys().cloned().collect();
        self.lose(&owned, "Redis unreachable for the session timeout");
    }

    /// Gives up `tps`, whose leases are gone, without committing: not ours to commit.
    fn lose(&self, tps: &[TopicPartition], why: &str) {
        if tps.is_empty() {
            return;
        }
        gochat_clog::warn!(
            self.inner.log,
            group = self.group,
            partitions = tps.len(),
            why,
            "partition leases lost; their messages go to other members"
        );
        let _ = self.tracks.revoke(tps);
        self.drop_owned(tps);
    }

    fn drop_owned(&self, tps: &[TopicPartition]) {
        {
            let mut state = self.state();
            for tp in tps {
                state.owned.remove(tp);
                state.paused.remove(tp);
            }
        }
        self.assignment.update(|owned| {
            for tp in tps {
                owned.remove(tp);
            }
        });
    }

    /// This member's share of the subscribed topics' partitions among `members`.
    async fn share(&self, members: &[String]) -> Result<BTreeSet<TopicPartition>> {
        let Some(index) = members.iter().position(|m| *m == self.id) else {
            return Ok(BTreeSet::new());
        };
        let counts: Vec<Option<u32>> = self
            .inner
            .client
            .hmget(self.inner.keys.topics(), self.topics.clone())
            .await
            .map_err(|e| map_error(&e, "reading the topics"))?;
        let mut all = Vec::new();
        for (topic, count) in self.topics.iter().zip(counts) {
            for partition in 0..count.unwrap_or(0) {
                all.push(TopicPartition::new(
                    topic.as_str(),
                    i32::try_from(partition).unwrap_or(i32::MAX),
                ));
            }
        }
        all.sort();
        Ok(all
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % members.len() == index)
            .map(|(_, tp)| tp)
            .collect())
    }

    /// Takes the free ones of `tps`, each from its committed offset.
    async fn claim(&self, tps: &[TopicPartition]) -> Result<()> {
        let mut keys = Vec::with_capacity(tps.len() * 3);
        let mut args: Vec<Value> = vec![self.id.clone().into(), self.session_ms().into()];
        for tp in tps {
            keys.push(self.lease(tp));
            keys.push(self.inner.keys.offsets(&tp.topic));
            keys.push(self.inner.keys.stream(&tp.topic, tp.partition));
            args.push(offset_field(tp.partition, &self.group).into());
        }
        let reply = eval(
            &self.inner.client,
            scripts::CLAIM,
            keys,
            args,
            "taking partitions",
        )
        .await?;
        let Value::Array(results) = reply else {
            return Err(Error::Backend(format!("the claim answered {reply:?}")));
        };
        let mut taken = Vec::new();
        {
            let mut state = self.state();
            for (tp, result) in tps.iter().zip(results) {
                let Value::Array(result) = result else {
                    continue;
                };
                let number = |i: usize| result.get(i).and_then(Value::as_i64).unwrap_or(0);
                if number(0) != 1 {
                    continue;
                }
                let (committed, end) = (number(1), number(2));
                let position = if committed >= 0 {
                    committed
                } else {
                    match self.start {
                        Start::Latest => end,
                        _ => 0,
                    }
                };
                let epoch = next_epoch();
                state.owned.insert(
                    tp.clone(),
                    Owned {
                        epoch,
                        position,
                        origin: position,
                    },
                );
                taken.push(tp.clone());
            }
        }
        if !taken.is_empty() {
            gochat_clog::debug!(
                self.inner.log,
                group = self.group,
                partitions = taken.len(),
                "partitions assigned"
            );
            self.assignment.update(|owned| owned.extend(taken));
            self.wake.notify_one();
        }
        Ok(())
    }

    async fn refresh_lag(&self) -> Result<()> {
        let owned: Vec<(TopicPartition, Owned)> = self
            .state()
            .owned
            .iter()
            .map(|(tp, o)| (tp.clone(), *o))
            .collect();
        let mut keys = Vec::with_capacity(owned.len() * 2);
        let mut args: Vec<Value> = Vec::with_capacity(owned.len() * 2);
        for (tp, o) in &owned {
            keys.push(self.inner.keys.stream(&tp.topic, tp.partition));
            keys.push(self.inner.keys.offsets(&tp.topic));
            args.push(offset_field(tp.partition, &self.group).into());
            args.push(o.origin.into());
        }
        let lag = if owned.is_empty() {
            0
        } else {
            eval(
                &self.inner.client,
                scripts::LAG,
                keys,
                args,
                "reading the lag",
            )
            .await?
            .as_u64()
            .unwrap_or(0)
        };
        self.counters
            .lag
            .store(lag, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// Ownership epochs, unique in the process.
fn next_epoch() -> u64 {
    static EPOCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    EPOCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// `{members, held}` of the heartbeat script: the live members sorted by id, and per lease
/// whether it is still held.
fn heartbeat_reply(reply: Value) -> (Vec<String>, Vec<bool>) {
    let Value::Array(mut parts) = reply else {
        return (Vec::new(), Vec::new());
    };
    let held = match parts.pop() {
        Some(Value::Array(held)) => held.iter().map(|h| h.as_i64() == Some(1)).collect(),
        _ => Vec::new(),
    };
    let mut members: Vec<String> = match parts.pop() {
        Some(Value::Array(members)) => members.iter().filter_map(Value::as_string).collect(),
        _ => Vec::new(),
    };
    members.sort();
    (members, held)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heartbeat_reply_is_read_and_sorted() {
        let reply = Value::Array(vec![
            Value::Array(vec![Value::from("b"), Value::from("a")]),
            Value::Array(vec![Value::from(1), Value::from(0)]),
        ]);
        assert_eq!(
            heartbeat_reply(reply),
            (vec!["a".to_owned(), "b".to_owned()], vec![true, false])
        );
        assert_eq!(heartbeat_reply(Value::Null), (vec![], vec![]));
    }
}
