//! The provider's figures as OpenTelemetry instruments (docs/metrics.md).

use std::sync::Weak;

use gochat_core::observe;
use opentelemetry::metrics::Meter;

use crate::Shared;

pub(crate) fn register(meter: &Meter, shared: &Weak<Shared>) {
    observe::counter(
        meter,
        "coord_watch_resumes",
        "Watches interrupted and resumed.",
        shared,
        |s| vec![(s.counters.snapshot().watch_resumes, vec![])],
    );
    observe::counter(
        meter,
        "coord_watch_rereads",
        "Watches whose revision was compacted away, re-reading their prefix.",
        shared,
        |s| vec![(s.counters.snapshot().watch_rereads, vec![])],
    );
    observe::counter(
        meter,
        "coord_lease_losses",
        "Leases that ran out.",
        shared,
        |s| vec![(s.counters.snapshot().lease_losses, vec![])],
    );
}
