//! The in-process backend: Redis semantics for every command the kit uses, TTLs on tokio's
//! clock (exact under paused time in tests).

use std::{
    cmp::Ordering,
    collections::{BTreeSet, HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use gochat_core::NamedStores;
use tokio::time::Instant;

use crate::{
    command::{Command, Reply, SetWhen},
    error::{Error, Result},
};

/// How often expired keys are purged (they are also dropped whenever touched).
const PURGE_EVERY: Duration = Duration::from_secs(1);

static STORES: NamedStores<MemoryStore> = NamedStores::new();

pub(crate) struct MemoryStore {
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    value: Value,
    expires: Option<Instant>,
}

enum Value {
    Str(Vec<u8>),
    Hash(HashMap<String, Vec<u8>>),
    Set(HashSet<Vec<u8>>),
    ZSet(ZSet),
}

#[derive(Default)]
struct ZSet {
    scores: HashMap<Vec<u8>, f64>,
    order: BTreeSet<(Score, Vec<u8>)>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Score(f64);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl ZSet {
    fn insert(&mut self, score: f64, member: Vec<u8>) -> bool {
        let new = match self.scores.insert(member.clone(), score) {
            Some(old) => {
                self.order.remove(&(Score(old), member.clone()));
                false
            }
            None => true,
        };
        self.order.insert((Score(score), member));
        new
    }

    fn remove(&mut self, member: &[u8]) -> bool {
        match self.scores.remove(member) {
            Some(score) => {
                self.order.remove(&(Score(score), member.to_vec()));
                true
            }
            None => false,
        }
    }

    fn pairs(&self) -> impl DoubleEndedIterator<Item = (&Vec<u8>, f64)> {
        self.order.iter().map(|(s, m)| (m, s.0))
    }
}

impl MemoryStore {
    /// The store of this name, created (with its purge task) if none is alive. Must be called
    /// inside a tokio runtime.
    pub(crate) fn named(name: &str) -> Arc<Self> {
        let make = || Self {
            entries: Mutex::new(HashMap::new()),
        };
        STORES.get_or_create(name, make, PURGE_EVERY, |store| {
            let now = Instant::now();
            store
                .lock()
                .retain(|_, e| e.expires.is_none_or(|at| at > now));
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl MemoryStore {
    pub(crate) fn one(&self, command: Command) -> Result<Reply> {
        apply(&mut self.lock(), command, Instant::now())
    }

    pub(crate) fn exec(&self, commands: Vec<Command>) -> Vec<Result<Reply>> {
        let now = Instant::now();
        let mut entries = self.lock();
        commands
            .into_iter()
            .map(|c| apply(&mut entries, c, now))
            .collect()
    }
}

/// The live entry at `key`, dropping it if expired.
fn live<'a>(
    entries: &'a mut HashMap<String, Entry>,
    key: &str,
    now: Instant,
) -> Option<&'a mut Entry> {
    if entries
        .get(key)
        .is_some_and(|e| e.expires.is_some_and(|at| at <= now))
    {
        entries.remove(key);
    }
    entries.get_mut(key)
}

fn wrong_type(key: &str) -> Error {
    Error::WrongType {
        key: key.to_owned(),
    }
}

macro_rules! typed {
    ($entries:expr, $key:expr, $now:expr, $variant:ident) => {
        match live($entries, $key, $now) {
            None => None,
            Some(Entry {
                value: Value::$variant(inner),
                ..
            }) => Some(inner),
            Some(_) => return Err(wrong_type($key)),
        }
    };
}

/// The collection at `key`, created empty if missing.
macro_rules! typed_or_insert {
    ($entries:expr, $key:expr, $now:expr, $variant:ident) => {{
        if live($entries, &$key, $now).is_none() {
            $entries.insert(
                $key.clone(),
                Entry {
                    value: Value::$variant(Default::default()),
                    expires: None,
                },
            );
        }
        match $entries.get_mut($key.as_str()) {
            Some(Entry {
                value: Value::$variant(inner),
                ..
            }) => inner,
            _ => return Err(wrong_type(&$key)),
        }
    }};
}

fn drop_if_empty(entries: &mut HashMap<String, Entry>, key: &str) {
    let empty = match entries.get(key).map(|e| &e.value) {
        Some(Value::Hash(h)) => h.is_empty(),
        Some(Value::Set(s)) => s.is_empty(),
        Some(Value::ZSet(z)) => z.scores.is_empty(),
        _ => false,
    };
    if empty {
        entries.remove(key);
    }
}

fn int(n: usize) -> Reply {
    Reply::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

fn parse_int(key: &str, bytes: &[u8]) -> Result<i64> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::NotAnInteger {
            key: key.to_owned(),
        })
}

fn add(key: &str, current: i64, by: i64) -> Result<i64> {
    current
        .checked_add(by)
        .ok_or_else(|| Error::InvalidArgument(format!("incrementing {key} would overflow")))
}

/// Redis rank semantics: negative counts from the end; out-of-range clamps; empty if crossed.
fn rank_range(len: usize, start: i64, stop: i64) -> Option<(usize, usize)> {
    let len = i64::try_from(len).ok()?;
    let start = if start < 0 {
        (start + len).max(0)
    } else {
        start
    };
    let stop = if stop < 0 {
        stop + len
    } else {
        stop.min(len - 1)
    };
    if start > stop || start >= len {
        return None;
    }
    Some((usize::try_from(start).ok()?, usize::try_from(stop).ok()?))
}

fn with_scores<'a>(pairs: impl Iterator<Item = (&'a Vec<u8>, f64)>) -> Reply {
    Reply::Array(
        pairs
            .flat_map(|(m, s)| [Reply::Bytes(m.clone()), Reply::Float(s)])
            .collect(),
    )
}

fn apply(entries: &mut HashMap<String, Entry>, command: Command, now: Instant) -> Result<Reply> {
    Ok(match command {
        Command::Ping => Reply::Ok,
        Command::Get(key) => {
            typed!(entries, &key, now, Str).map_or(Reply::Nil, |v| Reply::Bytes(v.clone()))
        }
        Command::Set {
            key,
            value,
            ttl,
            when,
        } => {
            if when == SetWhen::IfAbsent && live(entries, &key, now).is_some() {
                return Ok(Reply::Nil);
            }
            let expires = ttl.map(|t| now + t);
            entries.insert(
                key,
                Entry {
                    value: Value::Str(value),
                    expires,
                },
            );
            Reply::Ok
        }
        Command::GetSet { key, value } => {
            let old =
                typed!(entries, &key, now, Str).map_or(Reply::Nil, |v| Reply::Bytes(v.clone()));
            entries.insert(
                key,
                Entry {
                    value: Value::Str(value),
                    expires: None,
                },
            );
            old
        }
        Command::IncrBy { key, by } => match live(entries, &key, now) {
            None => {
                entries.insert(
                    key,
                    Entry {
                        value: Value::Str(by.to_string().into_bytes()),
                        expires: None,
                    },
                );
                Reply::Int(by)
            }
            Some(Entry {
                value: Value::Str(v),
                ..
            }) => {
                let next = add(&key, parse_int(&key, v)?, by)?;
                *v = next.to_string().into_bytes();
                Reply::Int(next)
            }
            Some(_) => return Err(wrong_type(&key)),
        },
        Command::MGet(keys) => Reply::Array(
            keys.iter()
                .map(|k| match live(entries, k, now) {
                    Some(Entry {
                        value: Value::Str(v),
                        ..
                    }) => Reply::Bytes(v.clone()),
                    _ => Reply::Nil,
                })
                .collect(),
        ),
        Command::MSet(pairs) => {
            for (key, value) in pairs {
                entries.insert(
                    key,
                    Entry {
                        value: Value::Str(value),
                        expires: None,
                    },
                );
            }
            Reply::Ok
        }
        Command::Del(keys) => {
            let mut removed = 0;
            for key in keys {
                if live(entries, &key, now).is_some() {
                    entries.remove(&key);
                    removed += 1;
                }
            }
            int(removed)
        }
        Command::Exists(key) => int(usize::from(live(entries, &key, now).is_some())),
        Command::PExpire { key, ttl } => match live(entries, &key, now) {
            Some(entry) => {
                entry.expires = Some(now + ttl);
                Reply::Int(1)
            }
            None => Reply::Int(0),
        },
        Command::PTtl(key) => match live(entries, &key, now) {
            None => Reply::Int(-2),
            Some(Entry { expires: None, .. }) => Reply::Int(-1),
            Some(Entry {
                expires: Some(at), ..
            }) => Reply::Int(i64::try_from(at.duration_since(now).as_millis()).unwrap_or(i64::MAX)),
        },
        Command::HGet { key, field } => typed!(entries, &key, now, Hash)
            .and_then(|h| h.get(&field))
            .map_or(Reply::Nil, |v| Reply::Bytes(v.clone())),
        Command::HSet { key, pairs } => {
            let hash = typed_or_insert!(entries, key, now, Hash);
            int(pairs
                .into_iter()
                .filter(|(f, v)| hash.insert(f.clone(), v.clone()).is_none())
                .count())
        }
        Command::HGetAll(key) => match typed!(entries, &key, now, Hash) {
            Some(h) => Reply::Array(
                h.iter()
                    .flat_map(|(f, v)| {
                        [
                            Reply::Bytes(f.clone().into_bytes()),
                            Reply::Bytes(v.clone()),
                        ]
                    })
                    .collect(),
            ),
            None => Reply::Array(Vec::new()),
        },
        Command::HDel { key, fields } => {
            let removed = match typed!(entries, &key, now, Hash) {
                Some(h) => fields.iter().filter(|f| h.remove(*f).is_some()).count(),
                None => 0,
            };
            drop_if_empty(entries, &key);
            int(removed)
        }
        Command::HExists { key, field } => int(usize::from(
            typed!(entries, &key, now, Hash).is_some_and(|h| h.contains_key(&field)),
        )),
        Command::HLen(key) => int(typed!(entries, &key, now, Hash).map_or(0, |h| h.len())),
        Command::HIncrBy { key, field, by } => {
            let hash = typed_or_insert!(entries, key, now, Hash);
            let current = match hash.get(&field) {
                Some(v) => parse_int(&key, v)?,
                None => 0,
            };
            let next = add(&key, current, by)?;
            hash.insert(field, next.to_string().into_bytes());
            Reply::Int(next)
        }
        Command::SAdd { key, members } => {
            let set = typed_or_insert!(entries, key, now, Set);
            int(members
                .into_iter()
                .filter(|m| set.insert(m.clone()))
                .count())
        }
        Command::SRem { key, members } => {
            let removed = match typed!(entries, &key, now, Set) {
                Some(s) => members.iter().filter(|m| s.remove(*m)).count(),
                None => 0,
            };
            drop_if_empty(entries, &key);
            int(removed)
        }
        Command::SMembers(key) => {
            Reply::Array(typed!(entries, &key, now, Set).map_or_else(Vec::new, |s| {
                s.iter().map(|m| Reply::Bytes(m.clone())).collect()
            }))
        }
        Command::SIsMember { key, member } => int(usize::from(
            typed!(entries, &key, now, Set).is_some_and(|s| s.contains(&member)),
        )),
        Command::SCard(key) => int(typed!(entries, &key, now, Set).map_or(0, |s| s.len())),
        Command::ZAdd { key, members } => {
            if members.iter().any(|(s, _)| s.is_nan()) {
                return Err(Error::InvalidArgument("a score must not be NaN".to_owned()));
            }
            let zset = typed_or_insert!(entries, key, now, ZSet);
            int(members
                .into_iter()
                .filter(|(s, m)| zset.insert(*s, m.clone()))
                .count())
        }
        Command::ZRange {
            key,
            start,
            stop,
            rev,
        } => match typed!(entries, &key, now, ZSet) {
            Some(z) => match rank_range(z.scores.len(), start, stop) {
                Some((from, to)) if rev => {
                    with_scores(z.pairs().rev().skip(from).take(to - from + 1))
                }
                Some((from, to)) => with_scores(z.pairs().skip(from).take(to - from + 1)),
                None => Reply::Array(Vec::new()),
            },
            None => Reply::Array(Vec::new()),
        },
        Command::ZRangeByScore { key, min, max } => match typed!(entries, &key, now, ZSet) {
            Some(z) => with_scores(z.pairs().filter(|(_, s)| *s >= min && *s <= max)),
            None => Reply::Array(Vec::new()),
        },
        Command::ZRem { key, members } => {
            let removed = match typed!(entries, &key, now, ZSet) {
                Some(z) => members.iter().filter(|m| z.remove(m)).count(),
                None => 0,
            };
            drop_if_empty(entries, &key);
            int(removed)
        }
        Command::ZRemRangeByRank { key, start, stop } => {
            let removed = match typed!(entries, &key, now, ZSet) {
                Some(z) => match rank_range(z.scores.len(), start, stop) {
                    Some((from, to)) => {
                        let doomed: Vec<Vec<u8>> = z
                            .pairs()
                            .skip(from)
                            .take(to - from + 1)
                            .map(|(m, _)| m.clone())
                            .collect();
                        doomed.iter().filter(|m| z.remove(m)).count()
                    }
                    None => 0,
                },
                None => 0,
            };
            drop_if_empty(entries, &key);
            int(removed)
        }
        Command::ZCard(key) => int(typed!(entries, &key, now, ZSet).map_or(0, |z| z.scores.len())),
        Command::ZCount { key, min, max } => int(typed!(entries, &key, now, ZSet).map_or(0, |z| {
            z.pairs().filter(|(_, s)| *s >= min && *s <= max).count()
        })),
        Command::ZScore { key, member } => typed!(entries, &key, now, ZSet)
            .and_then(|z| z.scores.get(&member))
            .map_or(Reply::Nil, |s| Reply::Float(*s)),
        Command::DelIfEq { key, value } => {
            let owned = matches!(live(entries, &key, now), Some(Entry { value: Value::Str(v), .. }) if *v == value);
            if owned {
                entries.remove(&key);
            }
            int(usize::from(owned))
        }
        Command::SetIfEq {
            key,
            expected,
            value,
            ttl,
        } => match live(entries, &key, now) {
            Some(entry) if matches!(&entry.value, Value::Str(v) if *v == expected) => {
                entry.value = Value::Str(value);
                entry.expires = Some(now + ttl);
                Reply::Int(1)
            }
            _ => Reply::Int(0),
        },
        Command::PExpireIfEq { key, value, ttl } => match live(entries, &key, now) {
            Some(entry) if matches!(&entry.value, Value::Str(v) if *v == value) => {
                entry.expires = Some(now + ttl);
                Reply::Int(1)
            }
            _ => Reply::Int(0),
        },
        Command::Eval { .. } | Command::EvalSha { .. } | Command::ScriptLoad(_) => {
            return Err(Error::Unsupported {
                backend: "memory",
                what: "Lua scripts",
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_follow_redis() {
        assert_eq!(rank_range(5, 0, -1), Some((0, 4)));
        assert_eq!(rank_range(5, -2, -1), Some((3, 4)));
        assert_eq!(rank_range(5, 1, 100), Some((1, 4)));
        assert_eq!(rank_range(5, 3, 1), None);
        assert_eq!(rank_range(5, 7, 9), None);
        assert_eq!(rank_range(0, 0, -1), None);
        assert_eq!(rank_range(5, -100, 0), Some((0, 0)));
    }
}

#[cfg(test)]
mod ttl_tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn ttls_are_exact_under_paused_time() {
        let store = MemoryStore::named("unit-exact-ttl");
        let ttl = Some(Duration::from_secs(5));
        let set = Command::Set {
            key: "k".to_owned(),
            value: b"v".to_vec(),
            ttl,
            when: SetWhen::Always,
        };
        store.one(set).unwrap();
        tokio::time::advance(Duration::from_millis(4_999)).await;
        assert_eq!(
            store.one(Command::Get("k".to_owned())).unwrap(),
            Reply::Bytes(b"v".to_vec())
        );
        assert_eq!(
            store.one(Command::PTtl("k".to_owned())).unwrap(),
            Reply::Int(1)
        );
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(
            store.one(Command::Get("k".to_owned())).unwrap(),
            Reply::Nil,
            "gone at exactly 5 s"
        );
    }
}
