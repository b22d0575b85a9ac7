//! Counters every producer and consumer keeps, for dashboards and the metrics component.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

/// A snapshot of a provider's or a subscription's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Messages the broker confirmed.
    pub produced: u64,
    /// Sends that failed.
    pub produce_failed: u64,
    /// Messages handed to handlers (first attempts).
    pub consumed: u64,
    /// Handler retries.
    pub retried: u64,
    /// Messages sent to a dead-letter topic.
    pub dead_lettered: u64,
    /// Messages in the assigned partitions not yet committed (last known).
    pub lag: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) produced: AtomicU64,
    pub(crate) produce_failed: AtomicU64,
    pub(crate) consumed: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) lag: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            produced: self.produced.load(Relaxed),
            produce_failed: self.produce_failed.load(Relaxed),
            consumed: self.consumed.load(Relaxed),
            retried: self.retried.load(Relaxed),
            dead_lettered: self.dead_lettered.load(Relaxed),
            lag: self.lag.load(Relaxed),
        }
    }
}

impl std::ops::Add for Stats {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self {
            produced: self.produced + other.produced,
            produce_failed: self.produce_failed + other.produce_failed,
            consumed: self.consumed + other.consumed,
            retried: self.retried + other.retried,
            dead_lettered: self.dead_lettered + other.dead_lettered,
            lag: self.lag + other.lag,
        }
    }
}
