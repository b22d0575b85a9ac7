//! The cache's figures as OpenTelemetry instruments (docs/metrics.md).

use std::sync::Weak;

use gochat_core::observe;
use opentelemetry::metrics::Meter;

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
