//! The limiter's figures as OpenTelemetry instruments (docs/metrics.md).

use std::sync::Weak;

use gochat_core::observe;
use opentelemetry::{KeyValue, metrics::Meter};

use crate::Shared;

pub(crate) fn register(meter: &Meter, shared: &Weak<Shared>) {
    observe::counter(
        meter,
        "ratelimit_decisions",
        "Checks, by decision.",
        shared,
        |s| {
            let stats = s.counters.snapshot();
            vec![
                (stats.allowed, vec![KeyValue::new("decision", "allowed")]),
                (stats.denied, vec![KeyValue::new("decision", "denied")]),
            ]
        },
    );
    observe::counter(
        meter,
        "ratelimit_fallback",
        "Checks decided locally because Redis was unreachable.",
        shared,
        |s| vec![(s.counters.snapshot().fallback, vec![])],
    );
    observe::counter(
        meter,
        "ratelimit_unknown_rule",
        "Checks against a rule nobody defined.",
        shared,
        |s| vec![(s.counters.snapshot().unknown_rule, vec![])],
    );
}
