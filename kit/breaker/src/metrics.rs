//! Every breaker's figures as OpenTelemetry instruments, labelled by resource (docs/metrics.md).

use std::sync::{PoisonError, Weak};

use gochat_core::observe::{self, Points};
use opentelemetry::{KeyValue, metrics::Meter};

use crate::{Breaker, Shared, State, Stats};

fn each<T>(shared: &Shared, value: impl Fn(&Breaker, Stats) -> T) -> Points<T> {
    let breakers = shared
        .breakers
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    breakers
        .values()
        .map(|b| {
            (
                value(b, b.stats()),
                vec![KeyValue::new("resource", b.name().to_owned())],
            )
        })
        .collect()
}

pub(crate) fn register(meter: &Meter, shared: &Weak<Shared>) {
    observe::counter(meter, "breaker_calls", "Calls asked for.", shared, |s| {
        each(s, |_, st| st.calls)
    });
    observe::counter(meter, "breaker_rejected", "Calls rejected.", shared, |s| {
        each(s, |_, st| st.rejected)
    });
    observe::counter(
        meter,
        "breaker_failures",
        "Calls that failed.",
        shared,
        |s| each(s, |_, st| st.failures),
    );
    observe::counter(
        meter,
        "breaker_transitions",
        "State changes.",
        shared,
        |s| each(s, |_, st| st.transitions),
    );
    observe::gauge(
        meter,
        "breaker_state",
        "0 closed, 1 half-open, 2 open; between 0 and 1 while throttling: the rejection probability.",
        shared,
        |s| {
            each(s, |b, _| match b.state() {
                State::Open => 2.0,
                State::HalfOpen => 1.0,
                State::Throttling(p) => p,
                _ => 0.0,
            })
        },
    );
}
