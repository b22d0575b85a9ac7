//! The in-process broker: topics of partitioned logs, consumer groups with committed offsets,
//! and rebalancing among the members of a group, with Kafka's semantics where the kit relies
//! on them.
//!
//! A partition moves between members in two steps, as in Kafka's rebalance: its old owner
//! commits what it has done and releases it; only then does the new owner take it, starting at
//! the committed offset. A member that disappears without leaving cleanly (dropped) releases
//! its partitions without committing, so their unfinished messages are delivered again.
//!
//! Retention: a partition keeps at most `retention` records and `retention_bytes` bytes (the
//! oldest go first, consumed or not, as with Kafka's retention), and records every group
//! reading the topic has committed past are dropped at the commit, so memory follows the
//! backlog rather than the history. While no group reads a topic its records are kept (up to
//! the bounds) for the groups to come.

mod log;
mod partition;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use gochat_clog::Logger;
use gochat_core::NamedStores;
use tokio::sync::watch;

use crate::{
    Error, MemoryConfig, Start,
    admin::{Retained, TopicInfo},
    backend::{Assignment, Member},
    error::Result,
    message::{Delivery, Message, Received, TopicPartition},
    stats::Counters,
    track::Tracks,
};

use log::{Bounds, Log, Stored};
pub(crate) use partition::kafka_partition;

static BROKERS: NamedStores<Broker> = NamedStores::new();

pub(crate) struct Broker {
    config: MemoryConfig,
    state: Mutex<State>,
    /// Bumped on every change a waiting member may care about (a record, a rebalance).
    changed: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    topics: BTreeMap<String, Topic>,
    groups: HashMap<String, Group>,
    next_member: u64,
}

struct Topic {
    logs: Vec<Log>,
    /// Where the next keyless record goes.
    next_partition: usize,
}

#[derive(Default)]
struct Group {
    /// Member id → subscribed topics.
    members: BTreeMap<u64, Vec<String>>,
    /// Who should own each partition.
    target: HashMap<TopicPartition, u64>,
    /// Who owns each partition now (a partition is free between release and take-over).
    owners: HashMap<TopicPartition, u64>,
    committed: HashMap<TopicPartition, i64>,
    /// Where the group began reading a partition it has not committed yet (its start offset
    /// when a member took it): the group needs nothing before it.
    origins: HashMap<TopicPartition, i64>,
}

impl Topic {
    fn new(partitions: u32) -> Self {
        Self {
            logs: (0..partitions).map(|_| Log::default()).collect(),
            next_partition: 0,
        }
    }
}

impl Group {
    fn reads(&self, topic: &str) -> bool {
        self.members
            .values()
            .any(|topics| topics.iter().any(|t| t == topic))
    }

    /// Spreads each topic's partitions over the members subscribed to it.
    fn rebalance(&mut self, topics: &BTreeMap<String, Topic>) {
        self.target.clear();
        for (name, topic) in topics {
            let members: Vec<u64> = self
                .members
                .iter()
                .filter(|(_, subscribed)| subscribed.contains(name))
                .map(|(id, _)| *id)
                .collect();
            if members.is_empty() {
                continue;
            }
            for partition in 0..topic.logs.len() {
                let tp = TopicPartition::new(name.as_str(), partition_i32(partition));
                self.target.insert(tp, members[partition % members.len()]);
            }
        }
    }
}

fn partition_i32(partition: usize) -> i32 {
    i32::try_from(partition).unwrap_or(i32::MAX)
}

impl Broker {
    /// The broker named in `config`, shared in this process.
    pub(crate) fn named(config: &MemoryConfig) -> Arc<Self> {
        BROKERS.get_or_create(
            &config.name,
            || Self {
                config: config.clone(),
                state: Mutex::new(State::default()),
                changed: watch::Sender::new(0),
            },
            Duration::from_secs(3600),
            |_| {},
        )
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bump(&self) {
        self.changed
            .send_modify(|version| *version = version.wrapping_add(1));
    }

    fn bounds(&self) -> Bounds {
        Bounds {
            records: self.config.retention,
            bytes: self.config.retention_bytes,
        }
    }

    /// Appends `message`. Records the bounds drop to make room are counted in `counters`
    /// (`retention_dropped`) and logged through `log`.
    pub(crate) fn append(
        &self,
        message: Message,
        counters: &Counters,
        log: &Logger,
    ) -> Result<Delivery> {
        if message.topic.is_empty() {
            return Err(Error::InvalidArgument("the topic name is empty".to_owned()));
        }
        let (delivery, dropped) = {
            let mut state = self.state();
            let state = &mut *state;
            if !state.topics.contains_key(&message.topic) {
                state
                    .topics
                    .insert(message.topic.clone(), Topic::new(self.config.partitions));
                rebalance_all(state);
            }
            let Some(topic) = state.topics.get_mut(&message.topic) else {
                return Err(Error::UnknownTopic(message.topic));
            };
            let count = topic.logs.len();
            let partition = match &message.key {
                Some(key) => kafka_partition(key, count),
                None => {
                    topic.next_partition = (topic.next_partition + 1) % count;
                    topic.next_partition
                }
            };
            let topic_name = message.topic.clone();
            // Records every group had consumed went at their commit, so whatever the bounds
            // drop here some group (or a group still to come) had not read yet.
            let (offset, dropped) = topic.logs[partition].push(Stored::new(message), self.bounds());
            let delivery = Delivery {
                topic: topic_name,
                partition: partition_i32(partition),
                offset,
            };
            (delivery, dropped)
        };
        self.bump();
        if dropped > 0 {
            counters.retention_dropped(dropped, |total| {
                gochat_clog::warn!(
                    log,
                    topic = %delivery.topic,
                    partition = delivery.partition,
                    dropped,
                    total,
                    "retention dropped records not every consumer group had read \
                     (backend.memory.retention / retention_bytes)"
                );
            });
        }
        Ok(delivery)
    }

    /// What each partition of `topic` keeps, or `None` for an unknown topic.
    pub(crate) fn retained(&self, topic: &str) -> Option<Vec<Retained>> {
        let state = self.state();
        let topic = state.topics.get(topic)?;
        Some(
            topic
                .logs
                .iter()
                .map(|log| Retained {
                    start: log.start(),
                    end: log.end(),
                    bytes: log.bytes(),
                })
                .collect(),
        )
    }

    pub(crate) fn create_topic(&self, name: &str, partitions: u32) -> Result<()> {
        check_topic(name, partitions)?;
        {
            let mut state = self.state();
            if state.topics.contains_key(name) {
                return Err(Error::TopicExists(name.to_owned()));
            }
            state.topics.insert(name.to_owned(), Topic::new(partitions));
            rebalance_all(&mut state);
        }
        self.bump();
        Ok(())
    }

    pub(crate) fn delete_topic(&self, name: &str) -> Result<()> {
        {
            let mut state = self.state();
            if state.topics.remove(name).is_none() {
                return Err(Error::UnknownTopic(name.to_owned()));
            }
            for group in state.groups.values_mut() {
                group.committed.retain(|tp, _| tp.topic != name);
                group.origins.retain(|tp, _| tp.topic != name);
            }
            rebalance_all(&mut state);
        }
        self.bump();
        Ok(())
    }

    pub(crate) fn list_topics(&self) -> Vec<TopicInfo> {
        self.state()
            .topics
            .iter()
            .map(|(name, topic)| TopicInfo {
                name: name.clone(),
                partitions: u32::try_from(topic.logs.len()).unwrap_or(u32::MAX),
            })
            .collect()
    }

    pub(crate) fn join(self: &Arc<Self>, member: Member) -> MemberSource {
        let id = {
            let mut state = self.state();
            let state = &mut *state;
            for topic in &member.topics {
                if !state.topics.contains_key(topic) {
                    state
                        .topics
                        .insert(topic.clone(), Topic::new(self.config.partitions));
                }
            }
            state.next_member += 1;
            let id = state.next_member;
            state
                .groups
                .entry(member.group.clone())
                .or_default()
                .members
                .insert(id, member.topics.clone());
            rebalance_all(state);
            id
        };
        self.bump();
        MemberSource {
            broker: self.clone(),
            id,
            group: member.group,
            start: member.start,
            tracks: member.tracks,
            counters: member.counters,
            assignment: member.assignment,
            owned: Vec::new(),
            paused: HashSet::new(),
            cursor: 0,
            changed: self.changed.subscribe(),
            left: false,
        }
    }
}

fn rebalance_all(state: &mut State) {
    for group in state.groups.values_mut() {
        group.rebalance(&state.topics);
    }
}

/// The offset before which every group reading `tp` is done with it: the lowest committed
/// offset (or, for a group that has not committed, where it began), over the groups that
/// read the topic or hold an offset of `tp`. `None` while some reader has neither (it may
/// still read from the oldest record), or when no group reads `tp` (records wait for one).
fn consumed_by_all(groups: &HashMap<String, Group>, tp: &TopicPartition) -> Option<i64> {
    let mut floor: Option<i64> = None;
    for group in groups.values() {
        let position = match group.committed.get(tp).or_else(|| group.origins.get(tp)) {
            Some(position) => *position,
            None if group.reads(&tp.topic) => return None,
            None => continue,
        };
        floor = Some(floor.map_or(position, |floor| floor.min(position)));
    }
    floor
}

/// Drops the records of `tps` every group is done with. Their offsets stay what they were.
fn compact<'a>(state: &mut State, tps: impl IntoIterator<Item = &'a TopicPartition>) {
    for tp in tps {
        let Some(floor) = consumed_by_all(&state.groups, tp) else {
            continue;
        };
        if let Some(log) = log_of_mut(&mut state.topics, tp) {
            log.drop_before(floor);
        }
    }
}

pub(crate) fn check_topic(name: &str, partitions: u32) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidArgument("the topic name is empty".to_owned()));
    }
    if partitions == 0 {
        return Err(Error::InvalidArgument(format!(
            "topic {name} needs at least one partition"
        )));
    }
    Ok(())
}

/// One member of a consumer group on the in-process broker.
pub(crate) struct MemberSource {
    broker: Arc<Broker>,
    id: u64,
    group: String,
    start: Start,
    tracks: Arc<Tracks>,
    counters: Arc<Counters>,
    assignment: Assignment,
    /// Owned partitions and the next offset to read from each.
    owned: Vec<(TopicPartition, i64)>,
    paused: HashSet<TopicPartition>,
    cursor: usize,
    changed: watch::Receiver<u64>,
    left: bool,
}

impl MemberSource {
    pub(crate) async fn next(&mut self) -> Result<Received> {
        loop {
            self.changed.borrow_and_update();
            let (message, released) = self.step();
            if !released.is_empty() {
                // What the revocation committed may free records.
                compact(&mut self.broker.state(), &released);
                self.broker.bump();
            }
            if let Some(message) = message {
                return Ok(message);
            }
            if self.changed.changed().await.is_err() {
                return Err(Error::Closed);
            }
        }
    }

    /// Follows the group's assignment, then takes the next record of an owned partition
    /// (round robin). Also returns the partitions it released.
    fn step(&mut self) -> (Option<Received>, Vec<TopicPartition>) {
        let mut state = self.broker.state();
        let State { topics, groups, .. } = &mut *state;
        let Some(group) = groups.get_mut(&self.group) else {
            return (None, Vec::new());
        };

        let lost: Vec<TopicPartition> = self
            .owned
            .iter()
            .filter(|(tp, _)| group.target.get(tp) != Some(&self.id))
            .map(|(tp, _)| tp.clone())
            .collect();
        if !lost.is_empty() {
            for (tp, next) in self.tracks.revoke(&lost) {
                group.committed.insert(tp, next);
            }
            for tp in &lost {
                group.owners.remove(tp);
                self.paused.remove(tp);
            }
            self.owned.retain(|(tp, _)| !lost.contains(tp));
            self.assignment.update(|owned| {
                lost.iter().for_each(|tp| {
                    owned.remove(tp);
                });
            });
        }

        let free: Vec<TopicPartition> = group
            .target
            .iter()
            .filter(|(tp, id)| **id == self.id && !group.owners.contains_key(*tp))
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in free {
            let (start, end) = log_of(topics, &tp).map_or((0, 0), |log| (log.start(), log.end()));
            let position = if let Some(committed) = group.committed.get(&tp) {
                *committed
            } else {
                let origin = match self.start {
                    Start::Earliest => start,
                    Start::Latest => end,
                };
                group.origins.insert(tp.clone(), origin);
                origin
            };
            group.owners.insert(tp.clone(), self.id);
            self.assignment.update(|owned| {
                owned.insert(tp.clone());
            });
            self.owned.push((tp, position));
        }

        let lag: i64 = self
            .owned
            .iter()
            .map(|(tp, _)| {
                let (start, end) =
                    log_of(topics, tp).map_or((0, 0), |log| (log.start(), log.end()));
                end - group.committed.get(tp).copied().unwrap_or(start).max(start)
            })
            .sum();
        self.counters.lag.store(
            u64::try_from(lag).unwrap_or(0),
            std::sync::atomic::Ordering::Relaxed,
        );

        let count = self.owned.len();
        for i in 0..count {
            let index = (self.cursor + i) % count;
            let (tp, position) = &mut self.owned[index];
            if self.paused.contains(tp) {
                continue;
            }
            let Some(log) = log_of(topics, tp) else {
                continue;
            };
            *position = (*position).max(log.start());
            let Some(record) = log.get(*position) else {
                continue;
            };
            let message = Received {
                topic: tp.topic.clone(),
                partition: tp.partition,
                offset: *position,
                key: record.key.clone(),
                value: record.value.clone(),
                headers: record.headers.clone(),
                timestamp: Some(record.timestamp),
                attempt: 0,
            };
            *position += 1;
            self.cursor = index + 1;
            return (Some(message), lost);
        }
        (None, lost)
    }

    /// Commits offsets of partitions this member still owns; others' are stale and ignored.
    /// Then drops the records of those partitions every group is done with.
    pub(crate) fn commit(&self, offsets: &[(TopicPartition, i64)]) {
        let mut state = self.broker.state();
        let Some(group) = state.groups.get_mut(&self.group) else {
            return;
        };
        for (tp, next) in offsets {
            if group.owners.get(tp) == Some(&self.id) {
                group.committed.insert(tp.clone(), *next);
            }
        }
        compact(&mut state, offsets.iter().map(|(tp, _)| tp));
    }

    pub(crate) fn pause(&mut self, tp: &TopicPartition) {
        self.paused.insert(tp.clone());
    }

    pub(crate) fn resume(&mut self, tp: &TopicPartition) {
        self.paused.remove(tp);
        self.broker.bump();
    }

    pub(crate) fn leave(mut self) {
        self.leave_group();
    }

    fn leave_group(&mut self) {
        if std::mem::replace(&mut self.left, true) {
            return;
        }
        {
            let mut state = self.broker.state();
            let State { topics, groups, .. } = &mut *state;
            if let Some(group) = groups.get_mut(&self.group) {
                group.members.remove(&self.id);
                group.owners.retain(|_, owner| *owner != self.id);
                group.rebalance(topics);
            }
        }
        self.assignment.update(std::collections::BTreeSet::clear);
        self.broker.bump();
    }
}

impl Drop for MemberSource {
    /// A member dropped without `leave` (its task aborted) releases its partitions without
    /// committing, like a consumer whose session expired.
    fn drop(&mut self) {
        self.leave_group();
    }
}

fn log_of<'a>(topics: &'a BTreeMap<String, Topic>, tp: &TopicPartition) -> Option<&'a Log> {
    let partition = usize::try_from(tp.partition).ok()?;
    topics.get(&tp.topic)?.logs.get(partition)
}

fn log_of_mut<'a>(
    topics: &'a mut BTreeMap<String, Topic>,
    tp: &TopicPartition,
) -> Option<&'a mut Log> {
    let partition = usize::try_from(tp.partition).ok()?;
    topics.get_mut(&tp.topic)?.logs.get_mut(partition)
}
