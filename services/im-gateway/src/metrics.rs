//! The gateway's figures as OpenTelemetry instruments (docs/metrics.md).

use std::sync::{Weak, atomic::Ordering::Relaxed};

use gochat_core::observe;
use opentelemetry::{KeyValue, metrics::Meter};

use crate::Inner;

pub(crate) fn register(meter: &Meter, inner: &Weak<Inner>) {
    observe::gauge(
        meter,
        "gateway_connections",
        "Open WebSocket connections.",
        inner,
        |i| vec![(i.registry.len() as f64, vec![])],
    );
    observe::counter(
        meter,
        "gateway_connections_accepted",
        "WebSocket connections accepted.",
        inner,
        |i| vec![(i.counters.accepted.load(Relaxed), vec![])],
    );
    observe::counter(
        meter,
        "gateway_refused",
        "Connections and WebSocket upgrades refused, by the limit they hit.",
        inner,
        |i| {
            let c = &i.counters;
            [
                ("max_connections", &c.refused_connections),
                ("max_sockets_per_addr", &c.refused_addr),
                ("max_sockets_per_user", &c.refused_user),
            ]
            .into_iter()
            .map(|(limit, n)| (n.load(Relaxed), vec![KeyValue::new("limit", limit)]))
            .collect()
        },
    );
    observe::counter(
        meter,
        "gateway_frames",
        "WebSocket text frames, by direction (in: from clients; out: queued to them).",
        inner,
        |i| {
            vec![
                (
                    i.counters.frames_in.load(Relaxed),
                    vec![KeyValue::new("direction", "in")],
                ),
                (
                    i.counters.frames_out.load(Relaxed),
                    vec![KeyValue::new("direction", "out")],
                ),
            ]
        },
    );
    observe::counter(
        meter,
        "gateway_kicks",
        "Sockets closed by the gateway, by reason.",
        inner,
        |i| {
            i.counters
                .kicks()
                .into_iter()
                .map(|(reason, n)| (n, vec![KeyValue::new("reason", reason)]))
                .collect()
        },
    );
}
