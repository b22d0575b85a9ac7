//! A prefix watch that survives the backend: it starts with the current state, resumes from
//! the last revision it saw after a connection failure, and re-reads the state (sending the
//! difference) when that revision was compacted away.

use std::{collections::BTreeMap, sync::Arc};

use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::{
    Shared,
    backend::{Event, Revision, WatchError},
    lease::Backoff,
};

/// A change under the watched prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// The key was set; `new` when it did not exist before.
    Put {
        key: String,
        value: Vec<u8>,
        new: bool,
    },
    /// The key was deleted.
    Delete { key: String },
}

/// Starts watching `prefix`; the task stops when the receiver is dropped or the provider
/// closes.
pub(crate) fn watch_prefix(shared: &Arc<Shared>, prefix: String) -> mpsc::Receiver<Change> {
    let (tx, rx) = mpsc::channel(256);
    let task_shared = shared.clone();
    let ctx = shared.ctx.clone();
    shared.ctx.spawn(async move {
        let shared = task_shared;
        // Stop as soon as the receiver is dropped, even on a prefix where nothing changes.
        let _ = ctx
            .run_until_cancelled(async {
                tokio::select! {
                    () = run(&shared, &prefix, &tx) => {}
                    () = tx.closed() => {}
                }
            })
            .await;
    });
    rx
}

async fn run(shared: &Shared, prefix: &str, tx: &mpsc::Sender<Change>) {
    let mut known: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut backoff = Backoff::new();
    let mut next: Option<Revision> = None;
    loop {
        let from = match next {
            Some(revision) => revision,
            None => match resync(shared, prefix, &mut known, tx).await {
                Some(Ok(revision)) => revision + 1,
                Some(Err(())) => {
                    if !backoff.wait(&shared.ctx).await {
                        return;
                    }
                    continue;
                }
                None => return,
            },
        };
        next = Some(from);
        let mut stream = match shared.backend.watch(prefix, from).await {
            Ok(stream) => stream,
            Err(e) => {
                gochat_clog::warn!(shared.log, prefix, error = %e, "watch failed; retrying");
                if !backoff.wait(&shared.ctx).await {
                    return;
                }
                continue;
            }
        };
        backoff.reset();
        while let Some(batch) = stream.next().await {
            match batch {
                Ok(events) => {
                    for event in events {
                        next = Some(event.revision() + 1);
                        let change = match event {
                            Event::Put(kv) => {
                                let new = known.insert(kv.key.clone(), kv.value.clone()).is_none();
                                Change::Put {
                                    key: kv.key,
                                    value: kv.value,
                                    new,
                                }
                            }
                            Event::Delete { key, .. } => {
                                if known.remove(&key).is_none() {
                                    continue;
                                }
                                Change::Delete { key }
                            }
                        };
                        if tx.send(change).await.is_err() {
                            return;
                        }
                    }
                }
                Err(WatchError::Compacted) => {
                    crate::Counters::add(&shared.counters.watch_rereads);
                    gochat_clog::warn!(shared.log, prefix, "watch revision compacted; re-reading");
                    next = None;
                    break;
                }
                Err(WatchError::Failed(e)) => {
                    crate::Counters::add(&shared.counters.watch_resumes);
                    gochat_clog::warn!(shared.log, prefix, error = %e, "watch interrupted; resuming");
                    break;
                }
            }
        }
        if tx.is_closed() || !backoff.wait(&shared.ctx).await {
            return;
        }
    }
}

/// Reads the current state and sends what differs from `known`. `None`: the receiver is gone.
async fn resync(
    shared: &Shared,
    prefix: &str,
    known: &mut BTreeMap<String, Vec<u8>>,
    tx: &mpsc::Sender<Change>,
) -> Option<Result<Revision, ()>> {
    let (kvs, revision) = match shared.backend.list(prefix).await {
        Ok(listed) => listed,
        Err(e) => {
            gochat_clog::warn!(shared.log, prefix, error = %e, "listing for a watch failed; retrying");
            return Some(Err(()));
        }
    };
    let current: BTreeMap<String, Vec<u8>> = kvs.into_iter().map(|kv| (kv.key, kv.value)).collect();
    let gone: Vec<String> = known
        .keys()
        .filter(|k| !current.contains_key(*k))
        .cloned()
        .collect();
    for key in gone {
        known.remove(&key);
        tx.send(Change::Delete { key }).await.ok()?;
    }
    for (key, value) in current {
        if known.get(&key) != Some(&value) {
            let new = known.insert(key.clone(), value.clone()).is_none();
            tx.send(Change::Put { key, value, new }).await.ok()?;
        }
    }
    Some(Ok(revision))
}
