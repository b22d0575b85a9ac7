//! The provider's figures as OpenTelemetry instruments (docs/metrics.md).

use std::sync::Weak;

use gochat_core::observe;
use opentelemetry::metrics::{Histogram, Meter};

use crate::stats::Counters;

pub(crate) fn register(meter: &Meter, counters: &Weak<Counters>) {
    observe::counter(meter, "db_queries", "Statements run.", counters, |c| {
        vec![(c.snapshot().queries, vec![])]
    });
    observe::counter(
        meter,
        "db_failed_queries",
        "Statements that failed.",
        counters,
        |c| vec![(c.snapshot().failed, vec![])],
    );
    observe::counter(
        meter,
        "db_slow_queries",
        "Statements slower than slow_query.",
        counters,
        |c| vec![(c.snapshot().slow, vec![])],
    );
    observe::counter_f64(
        meter,
        "db_query_seconds",
        "Time spent in statements.",
        counters,
        |c| vec![(c.snapshot().total_time.as_secs_f64(), vec![])],
    );
}

/// `db_query_duration_seconds`, recorded by every pool's statement callback.
pub(crate) fn histogram(meter: &Meter) -> Histogram<f64> {
    meter
        .f64_histogram("db_query_duration_seconds")
        .with_description("Statement durations, by outcome.")
        .with_boundaries(vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ])
        .build()
}
