//! The primitives every backend provides: a revisioned key-value store with leases and
//! watches, as etcd has them. Registry, config centre, locks and instance ids are written
//! once on top of these, so both backends behave alike by construction.

pub(crate) mod etcd;
pub(crate) mod memory;

use std::time::Duration;

use futures_util::stream::BoxStream;
use gochat_core::BoxFuture;

use crate::error::{Error, Result};

/// A store revision: rises by one with each change.
pub(crate) type Revision = i64;
/// A lease id.
pub(crate) type LeaseId = i64;

/// A stored key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyValue {
    pub(crate) key: String,
    pub(crate) value: Vec<u8>,
    pub(crate) mod_revision: Revision,
}

/// One change seen by a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    Put(KeyValue),
    Delete { key: String, revision: Revision },
}

impl Event {
    pub(crate) fn revision(&self) -> Revision {
        match self {
            Self::Put(kv) => kv.mod_revision,
            Self::Delete { revision, .. } => *revision,
        }
    }
}

/// Why a watch stream stopped.
#[derive(Debug)]
pub(crate) enum WatchError {
    /// The revision asked for was compacted away: re-read the state.
    Compacted,
    /// The connection or the stream failed: resume from the last revision seen.
    Failed(Error),
}

/// Batches of events, in revision order.
pub(crate) type EventStream = BoxStream<'static, std::result::Result<Vec<Event>, WatchError>>;

/// The outcome of a create-if-absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Created {
    /// Created at this revision.
    Yes(Revision),
    /// The key existed; the store was at this revision when checked.
    No(Revision),
}

pub(crate) trait Backend: Send + Sync + 'static {
    /// `"memory"` or `"etcd"`.
    fn name(&self) -> &'static str;
    fn get(&self, key: &str) -> BoxFuture<'_, Result<Option<KeyValue>>>;
    /// Every key under `prefix`, sorted, and the revision they were read at.
    fn list(&self, prefix: &str) -> BoxFuture<'_, Result<(Vec<KeyValue>, Revision)>>;
    fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> BoxFuture<'_, Result<Revision>>;
    fn create(
        &self,
        key: &str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> BoxFuture<'_, Result<Created>>;
    /// Whether the key existed.
    fn delete(&self, key: &str) -> BoxFuture<'_, Result<bool>>;
    /// A lease of `ttl` (whole seconds, at least 1); returns the id and the TTL granted.
    fn grant(&self, ttl: Duration) -> BoxFuture<'_, Result<(LeaseId, Duration)>>;
    /// Renews a lease; `false` when it no longer exists (expired or revoked).
    fn keep_alive(&self, lease: LeaseId) -> BoxFuture<'_, Result<bool>>;
    /// Revokes a lease, deleting its keys; revoking a lease that is gone is not an error.
    fn revoke(&self, lease: LeaseId) -> BoxFuture<'_, Result<()>>;
    /// Changes under `prefix` from revision `from` on (inclusive).
    fn watch(&self, prefix: &str, from: Revision) -> BoxFuture<'_, Result<EventStream>>;
    /// Whether the store answers.
    fn health(&self) -> BoxFuture<'_, Result<()>>;
}

/// Lease TTLs are whole seconds (etcd's unit), at least one.
pub(crate) fn ttl_secs(ttl: Duration) -> i64 {
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    i64::try_from(secs.max(1)).unwrap_or(i64::MAX)
}
