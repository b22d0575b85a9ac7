//! A breaker's counters, for dashboards and the metrics component.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

/// A snapshot of one breaker's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Calls asked for.
    pub calls: u64,
    /// Calls rejected.
    pub rejected: u64,
    /// Calls that succeeded.
    pub successes: u64,
    /// Calls that failed (as the classifier judged).
    pub failures: u64,
    /// State changes.
    pub transitions: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) calls: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) successes: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) transitions: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            calls: self.calls.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            successes: self.successes.load(Relaxed),
            failures: self.failures.load(Relaxed),
            transitions: self.transitions.load(Relaxed),
        }
    }
}
