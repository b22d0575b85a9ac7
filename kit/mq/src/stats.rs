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
    /// Records the in-process broker's retention bounds (`retention`, `retention_bytes`)
    /// dropped to make room for this provider's sends before every consumer group had read
    /// them. Always 0 on Kafka, whose retention runs in the broker.
    pub retention_dropped: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) produced: AtomicU64,
    pub(crate) produce_failed: AtomicU64,
    pub(crate) consumed: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) lag: AtomicU64,
    pub(crate) retention_dropped: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    /// Counts `n` records dropped by retention; calls `milestone` with the new total when it
    /// reaches a power of two (1, 2, 4, …), so a steady loss is logged, but not per record.
    pub(crate) fn retention_dropped(&self, n: u64, milestone: impl FnOnce(u64)) {
        let before = self.retention_dropped.fetch_add(n, Relaxed);
        let total = before.saturating_add(n);
        let next = before
            .checked_add(1)
            .and_then(u64::checked_next_power_of_two);
        if next.is_some_and(|power| power <= total) {
            milestone(total);
        }
    }

    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            produced: self.produced.load(Relaxed),
            produce_failed: self.produce_failed.load(Relaxed),
            consumed: self.consumed.load(Relaxed),
            retried: self.retried.load(Relaxed),
            dead_lettered: self.dead_lettered.load(Relaxed),
            lag: self.lag.load(Relaxed),
            retention_dropped: self.retention_dropped.load(Relaxed),
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
            retention_dropped: self.retention_dropped + other.retention_dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_drops_are_reported_at_powers_of_two() {
        let counters = Counters::default();
        let mut reported = Vec::new();
        for n in [1, 1, 1, 2, 1, 10, 100] {
            counters.retention_dropped(n, |total| reported.push(total));
        }
        assert_eq!(reported, [1, 2, 5, 16, 116]);
        assert_eq!(counters.snapshot().retention_dropped, 116);
    }
}
