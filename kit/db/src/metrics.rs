//! The provider's figures as OpenTelemetry instruments (docs/metrics.md).

use std::sync::Weak;

use gochat_core::observe;
use opentelemetry::metrics::Meter;

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
