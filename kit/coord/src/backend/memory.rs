//! The in-process backend: a revisioned map with leases (expired on tokio's clock, so tests
//! can pause time) and watches that can resume from a past revision.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use futures_util::StreamExt;
use gochat_core::{BoxFuture, NamedStores};
use tokio::{sync::mpsc, time::Instant};

use super::{
    Backend, Created, Event, EventStream, KeyValue, LeaseId, Revision, WatchError, ttl_secs,
};
use crate::error::Result;

/// Events kept for watches that resume from a past revision; older ones are compacted.
const HISTORY: usize = 10_000;
/// How often expired leases are reaped.
const REAP_EVERY: Duration = Duration::from_millis(100);

/// Stores by name, so providers with the same memory name in one process share state.
static STORES: NamedStores<MemoryStore> = NamedStores::new();

pub(crate) struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    revision: Revision,
    kvs: BTreeMap<String, Entry>,
    leases: HashMap<LeaseId, Lease>,
    next_lease: LeaseId,
    history: VecDeque<Event>,
    /// Events at or below this revision are no longer in `history`.
    compacted: Revision,
    watchers: Vec<Watcher>,
}

struct Entry {
    value: Vec<u8>,
    mod_revision: Revision,
    lease: Option<LeaseId>,
}

struct Lease {
    ttl: Duration,
    expires_at: Instant,
    keys: BTreeSet<String>,
}

struct Watcher {
    prefix: String,
    tx: mpsc::UnboundedSender<Vec<Event>>,
}

impl MemoryStore {
    /// The store of this name, created (with its lease reaper) if none is alive.
    /// Must be called inside a tokio runtime.
    pub(crate) fn named(name: &str) -> Arc<Self> {
        let make = || Self {
            state: Mutex::new(State {
                next_lease: 1,
                ..State::default()
            }),
        };
        STORES.get_or_create(name, make, REAP_EVERY, |store| {
            store.lock().expire(Instant::now());
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn record(&mut self, event: Event) {
        self.watchers.retain(|w| {
            let key = match &event {
                Event::Put(kv) => &kv.key,
                Event::Delete { key, .. } => key,
            };
            !key.starts_with(&w.prefix) || w.tx.send(vec![event.clone()]).is_ok()
        });
        self.history.push_back(event);
        while self.history.len() > HISTORY {
            if let Some(old) = self.history.pop_front() {
                self.compacted = old.revision();
            }
        }
    }

    fn put(&mut self, key: &str, value: Vec<u8>, lease: Option<LeaseId>) -> Result<Revision> {
        if let Some(id) = lease
            && !self.leases.contains_key(&id)
        {
            return Err(crate::Error::LeaseLost(format!("lease {id:x}")));
        }
        self.revision += 1;
        let revision = self.revision;
        let old = self.kvs.insert(
            key.to_owned(),
            Entry {
                value: value.clone(),
                mod_revision: revision,
                lease,
            },
        );
        if let Some(old_lease) = old.and_then(|e| e.lease)
            && let Some(l) = self.leases.get_mut(&old_lease)
        {
            l.keys.remove(key);
        }
        if let Some(l) = lease.and_then(|id| self.leases.get_mut(&id)) {
            l.keys.insert(key.to_owned());
        }
        self.record(Event::Put(KeyValue {
            key: key.to_owned(),
            value,
            mod_revision: revision,
        }));
        Ok(revision)
    }

    fn delete(&mut self, key: &str) -> bool {
        let Some(entry) = self.kvs.remove(key) else {
            return false;
        };
        if let Some(l) = entry.lease.and_then(|id| self.leases.get_mut(&id)) {
            l.keys.remove(key);
        }
        self.revision += 1;
        let revision = self.revision;
        self.record(Event::Delete {
            key: key.to_owned(),
            revision,
        });
        true
    }

    fn drop_lease(&mut self, id: LeaseId) {
        if let Some(lease) = self.leases.remove(&id) {
            for key in lease.keys {
                self.delete(&key);
            }
        }
    }

    fn expire(&mut self, now: Instant) {
        let expired: Vec<_> = self
            .leases
            .iter()
            .filter(|(_, l)| l.expires_at <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.drop_lease(id);
        }
    }
}

impl Backend for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn get(&self, key: &str) -> BoxFuture<'_, Result<Option<KeyValue>>> {
        let found = self.lock().kvs.get(key).map(|e| KeyValue {
            key: key.to_owned(),
            value: e.value.clone(),
            mod_revision: e.mod_revision,
        });
        Box::pin(async move { Ok(found) })
    }

    fn list(&self, prefix: &str) -> BoxFuture<'_, Result<(Vec<KeyValue>, Revision)>> {
        let state = self.lock();
        let kvs = state
            .kvs
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, e)| KeyValue {
                key: k.clone(),
                value: e.value.clone(),
                mod_revision: e.mod_revision,
            })
            .collect();
        let revision = state.revision;
        Box::pin(async move { Ok((kvs, revision)) })
    }

    fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> BoxFuture<'_, Result<Revision>> {
        let result = self.lock().put(key, value, lease);
        Box::pin(async move { result })
    }

    fn create(
        &self,
        key: &str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> BoxFuture<'_, Result<Created>> {
        let mut state = self.lock();
        let result = if state.kvs.contains_key(key) {
            Ok(Created::No(state.revision))
        } else {
            state.put(key, value, lease).map(Created::Yes)
        };
        Box::pin(async move { result })
    }

    fn delete(&self, key: &str) -> BoxFuture<'_, Result<bool>> {
        let existed = self.lock().delete(key);
        Box::pin(async move { Ok(existed) })
    }

    fn grant(&self, ttl: Duration) -> BoxFuture<'_, Result<(LeaseId, Duration)>> {
        let ttl = Duration::from_secs(ttl_secs(ttl).unsigned_abs());
        let mut state = self.lock();
        let id = state.next_lease;
        state.next_lease += 1;
        state.leases.insert(
            id,
            Lease {
                ttl,
                expires_at: Instant::now() + ttl,
                keys: BTreeSet::new(),
            },
        );
        Box::pin(async move { Ok((id, ttl)) })
    }

    fn keep_alive(&self, lease: LeaseId) -> BoxFuture<'_, Result<bool>> {
        let now = Instant::now();
        let mut state = self.lock();
        state.expire(now);
        let alive = match state.leases.get_mut(&lease) {
            Some(l) => {
                l.expires_at = now + l.ttl;
                true
            }
            None => false,
        };
        Box::pin(async move { Ok(alive) })
    }

    fn revoke(&self, lease: LeaseId) -> BoxFuture<'_, Result<()>> {
        self.lock().drop_lease(lease);
        Box::pin(async { Ok(()) })
    }

    fn watch(&self, prefix: &str, from: Revision) -> BoxFuture<'_, Result<EventStream>> {
        let mut state = self.lock();
        let (tx, rx) = mpsc::unbounded_channel();
        let stream: EventStream = if from > 0 && from <= state.compacted {
            Box::pin(futures_util::stream::once(async {
                Err(WatchError::Compacted)
            }))
        } else {
            let backlog: Vec<Event> = state
                .history
                .iter()
                .filter(|e| e.revision() >= from)
                .filter(|e| match e {
                    Event::Put(kv) => kv.key.starts_with(prefix),
                    Event::Delete { key, .. } => key.starts_with(prefix),
                })
                .cloned()
                .collect();
            if !backlog.is_empty() {
                // The receiver is alive: it is in this function.
                let _ = tx.send(backlog);
            }
            state.watchers.push(Watcher {
                prefix: prefix.to_owned(),
                tx,
            });
            Box::pin(receiver_stream(rx).map(Ok::<_, WatchError>))
        };
        Box::pin(async move { Ok(stream) })
    }

    fn health(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

fn receiver_stream<T: Send + 'static>(
    rx: mpsc::UnboundedReceiver<T>,
) -> impl futures_util::Stream<Item = T> + Send + 'static {
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn leases_expire_on_the_tokio_clock_and_delete_their_keys() {
        let store = MemoryStore::named("unit-lease-expiry");
        let (lease, ttl) = store.grant(Duration::from_millis(1500)).await.unwrap();
        assert_eq!(
            ttl,
            Duration::from_secs(2),
            "TTLs round up to whole seconds"
        );
        store.put("/k", b"v".to_vec(), Some(lease)).await.unwrap();
        let (_, revision) = store.list("/").await.unwrap();
        let mut watch = store.watch("/", revision + 1).await.unwrap();

        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(store.keep_alive(lease).await.unwrap());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(store.get("/k").await.unwrap().is_some(), "kept alive");
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(store.get("/k").await.unwrap().is_none(), "expired");
        assert!(!store.keep_alive(lease).await.unwrap());
        let events = watch.next().await.unwrap().unwrap();
        assert!(matches!(&events[0], Event::Delete { key, .. } if key == "/k"));
    }

    #[tokio::test]
    async fn a_watch_resumes_from_a_past_revision_and_reports_compaction() {
        let store = MemoryStore::named("unit-resume");
        let first = store.put("/a/1", b"x".to_vec(), None).await.unwrap();
        store.put("/b/1", b"y".to_vec(), None).await.unwrap();
        store.put("/a/2", b"z".to_vec(), None).await.unwrap();
        let mut watch = store.watch("/a/", first).await.unwrap();
        let events = watch.next().await.unwrap().unwrap();
        let keys: Vec<_> = events
            .iter()
            .map(|e| match e {
                Event::Put(kv) => kv.key.as_str(),
                Event::Delete { key, .. } => key.as_str(),
            })
            .collect();
        assert_eq!(keys, ["/a/1", "/a/2"]);

        for i in 0..HISTORY + 1 {
            store
                .put("/c", i.to_string().into_bytes(), None)
                .await
                .unwrap();
        }
        let mut old = store.watch("/a/", first).await.unwrap();
        assert!(matches!(old.next().await, Some(Err(WatchError::Compacted))));
    }
}
