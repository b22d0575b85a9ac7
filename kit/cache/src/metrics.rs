//! The cache's figures as OpenTelemetry instruments (docs/metrics.md).

use std::sync::Weak;

use gochat_core::observe;
use opentelemetry::metrics::{Histogram, Meter};

use crate::Shared;

pub(crate) fn register(meter: &Meter, shared: &Weak<Shared>) {
    observe::counter(
        meter,
        "cache_hits",
        "Cache-aside reads answered from the cache.",
        shared,
        |s| vec![(s.stats.snapshot().hits, vec![])],
    );
    observe::counter(
        meter,
        "cache_misses",
        "Cache-aside reads that found nothing cached.",
        shared,
        |s| vec![(s.stats.snapshot().misses, vec![])],
    );
    observe::counter(
        meter,
        "cache_loads",
        "Cache-aside loader runs.",
        shared,
        |s| vec![(s.stats.snapshot().loads, vec![])],
    );
}

/// How long `get_or_load` took, by `outcome` (`hit`, `miss` — loaded or found after waiting
/// for another caller's load — or `error`).
pub(crate) fn latency(meter: &Meter) -> Histogram<f64> {
    meter
        .f64_histogram("cache_get_or_load_duration_seconds")
        .with_description("Time to answer a cache-aside read, by outcome.")
        .with_boundaries(vec![
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
        ])
        .build()
}
