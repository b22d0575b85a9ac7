//! Which offsets are done and not yet committed, per partition this consumer owns.
//!
//! A worker marks an offset done only after its handler succeeded (or the message was
//! dead-lettered), and works through a partition in order, so "done" is always a prefix of the
//! partition. When a partition is revoked its track is closed: what was done is handed to the
//! commit that precedes the revocation, and a handler finishing later commits nothing.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError, atomic::AtomicBool},
};

use crate::message::TopicPartition;

/// The offsets to commit: the next offset to read, per partition.
pub(crate) type Offsets = Vec<(TopicPartition, i64)>;

#[derive(Debug, Default)]
pub(crate) struct Track {
    state: Mutex<State>,
    /// Set by the dispatcher while messages wait for room in the partition's queue; the
    /// worker clears it and asks for a refill once the queue is half empty.
    pub(crate) backlog: AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    revoked: bool,
    /// The next offset to read, once everything before it is done; not yet committed.
    pending: Option<i64>,
}

impl Track {
    /// Everything before `next` is done. Ignored once the partition was revoked.
    pub(crate) fn finish(&self, next: i64) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !state.revoked {
            state.pending = Some(next);
        }
    }

    pub(crate) fn is_revoked(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .revoked
    }

    /// Closes the track; returns what is done and not committed.
    fn revoke(&self) -> Option<i64> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.revoked = true;
        state.pending.take()
    }

    fn take(&self) -> Option<i64> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pending
            .take()
    }
}

/// The tracks of the partitions a consumer owns, shared by its dispatcher, its workers and
/// its backend's rebalance handling.
#[derive(Debug, Default)]
pub(crate) struct Tracks {
    live: Mutex<HashMap<TopicPartition, Arc<Track>>>,
}

impl Tracks {
    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<TopicPartition, Arc<Track>>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new track for `tp` (a partition received again after a revocation gets a fresh one).
    pub(crate) fn start(&self, tp: TopicPartition) -> Arc<Track> {
        let track = Arc::new(Track::default());
        if let Some(old) = self.live().insert(tp, track.clone()) {
            old.revoke();
        }
        track
    }

    /// Closes the tracks of `tps`; returns the offsets to commit before they go.
    pub(crate) fn revoke<'a>(&self, tps: impl IntoIterator<Item = &'a TopicPartition>) -> Offsets {
        let mut live = self.live();
        tps.into_iter()
            .filter_map(|tp| {
                let next = live.remove(tp)?.revoke()?;
                Some((tp.clone(), next))
            })
            .collect()
    }

    /// Closes every track; returns the offsets to commit.
    pub(crate) fn revoke_all(&self) -> Offsets {
        self.live()
            .drain()
            .filter_map(|(tp, track)| Some((tp, track.revoke()?)))
            .collect()
    }

    /// What is done and not committed yet, for a periodic commit.
    pub(crate) fn take_pending(&self) -> Offsets {
        self.live()
            .iter()
            .filter_map(|(tp, track)| Some((tp.clone(), track.take()?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revoked_partition_commits_what_was_done_and_nothing_after() {
        let tracks = Tracks::default();
        let tp = TopicPartition::new("t", 0);
        let track = tracks.start(tp.clone());
        track.finish(5);
        assert_eq!(tracks.take_pending(), vec![(tp.clone(), 5)]);
        assert_eq!(tracks.take_pending(), vec![], "taken once");
        track.finish(7);
        assert_eq!(tracks.revoke([&tp]), vec![(tp.clone(), 7)]);
        track.finish(9);
        assert!(track.is_revoked());
        assert_eq!(
            tracks.revoke_all(),
            vec![],
            "a late handler commits nothing"
        );

        let again = tracks.start(tp.clone());
        again.finish(3);
        assert_eq!(tracks.revoke_all(), vec![(tp, 3)]);
    }
}
