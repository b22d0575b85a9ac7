//! Query counters and the slow-query log, fed by sea-orm's metric callback.

use std::{
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::Duration,
};

use gochat_clog::Logger;
use opentelemetry::{KeyValue, metrics::Histogram};
use serde::Serialize;

/// A snapshot of a provider's query counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Statements run.
    pub queries: u64,
    /// Statements that failed.
    pub failed: u64,
    /// Statements slower than `slow_query`.
    pub slow: u64,
    /// Time spent in statements, in total.
    pub total_time: Duration,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    queries: AtomicU64,
    failed: AtomicU64,
    slow: AtomicU64,
    micros: AtomicU64,
    /// Statement durations, when a meter was given.
    duration: Option<Histogram<f64>>,
}

impl Counters {
    pub(crate) fn new(duration: Option<Histogram<f64>>) -> Self {
        Self {
            duration,
            ..Self::default()
        }
    }

    pub(crate) fn record(
        &self,
        info: &sea_orm::metric::Info<'_>,
        slow_after: Duration,
        log: &Logger,
    ) {
        self.queries.fetch_add(1, Relaxed);
        if let Some(duration) = &self.duration {
            let outcome = if info.failed { "error" } else { "ok" };
            duration.record(
                info.elapsed.as_secs_f64(),
                &[KeyValue::new("outcome", outcome)],
            );
        }
        if info.failed {
            self.failed.fetch_add(1, Relaxed);
        }
        let micros = u64::try_from(info.elapsed.as_micros()).unwrap_or(u64::MAX);
        self.micros.fetch_add(micros, Relaxed);
        if info.elapsed >= slow_after {
            self.slow.fetch_add(1, Relaxed);
            gochat_clog::warn!(
                log,
                elapsed_ms = info.elapsed.as_millis(),
                failed = info.failed,
                sql = %info.statement.sql,
                "slow query"
            );
        }
    }

    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            queries: self.queries.load(Relaxed),
            failed: self.failed.load(Relaxed),
            slow: self.slow.load(Relaxed),
            total_time: Duration::from_micros(self.micros.load(Relaxed)),
        }
    }
}
