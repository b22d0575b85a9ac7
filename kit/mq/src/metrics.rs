//! The provider's figures as OpenTelemetry instruments (docs/metrics.md).

use std::sync::Weak;

use gochat_core::observe;
use opentelemetry::metrics::Meter;

use crate::Shared;

pub(crate) fn register(meter: &Meter, shared: &Weak<Shared>) {
    observe::counter(
        meter,
        "mq_produced",
        "Messages the broker confirmed.",
        shared,
        |s| vec![(s.stats().produced, vec![])],
    );
    observe::counter(
        meter,
        "mq_produce_failed",
        "Sends that failed.",
        shared,
        |s| vec![(s.stats().produce_failed, vec![])],
    );
    observe::counter(
        meter,
        "mq_consumed",
        "Messages handed to handlers.",
        shared,
        |s| vec![(s.stats().consumed, vec![])],
    );
    observe::counter(meter, "mq_retried", "Handler retries.", shared, |s| {
        vec![(s.stats().retried, vec![])]
    });
    observe::counter(
        meter,
        "mq_dead_lettered",
        "Messages sent to a dead-letter topic.",
        shared,
        |s| vec![(s.stats().dead_lettered, vec![])],
    );
    observe::counter(
        meter,
        "mq_retention_dropped",
        "Records the in-process broker's retention dropped before every group had read them.",
        shared,
        |s| vec![(s.stats().retention_dropped, vec![])],
    );
    observe::gauge(
        meter,
        "mq_lag",
        "Messages in owned partitions not yet committed.",
        shared,
        |s| vec![(s.stats().lag as f64, vec![])],
    );
}
