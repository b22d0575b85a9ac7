//! W3C trace context without an OpenTelemetry tracer: the trace id still crosses processes.
//! (With a tracer, gochat-metrics' tests check the same through the SDK.)

use std::collections::HashMap;

use gochat_clog::{Config, MemoryWriter, Options, TRACEPARENT, inject_trace};
use gochat_core::{Context, Env};

fn logger() -> (gochat_clog::Logger, MemoryWriter) {
    let out = MemoryWriter::new();
    let log = gochat_clog::new(
        &Context::new(),
        Config::for_env(Env::Production),
        Options::default().writer(out.clone()),
    )
    .unwrap();
    (log, out)
}

fn carrier(traceparent: &str) -> HashMap<String, String> {
    HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())])
}

#[test]
fn an_incoming_traceparent_sets_the_logged_trace_id_and_goes_out_again() {
    let (log, out) = logger();
    let incoming = carrier("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    let mut outgoing = HashMap::new();
    log.in_scope(|| {
        let span = log.request_span_from(&incoming);
        let _entered = span.enter();
        tracing::info!("handling");
        inject_trace(&mut outgoing);
    });
    let lines = out.json_lines().unwrap();
    assert_eq!(lines[0]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    let sent = &outgoing[TRACEPARENT];
    let parts: Vec<&str> = sent.split('-').collect();
    assert_eq!(parts.len(), 4, "{sent}");
    assert_eq!(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(parts[2].len(), 16, "a span id of our own: {sent}");
}

#[test]
fn a_malformed_or_missing_traceparent_starts_a_new_trace() {
    let (log, out) = logger();
    for bad in [
        carrier("not-a-traceparent"),
        carrier("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
        carrier("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
        HashMap::new(),
    ] {
        log.in_scope(|| {
            log.request_span_from(&bad)
                .in_scope(|| tracing::info!("handling"));
        });
    }
    let ids: Vec<String> = out
        .json_lines()
        .unwrap()
        .iter()
        .map(|line| line["trace_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 4);
    for id in &ids {
        assert_eq!(id.len(), 32, "{id}");
        assert_ne!(id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(id, &"0".repeat(32));
    }
}

#[test]
fn nothing_is_injected_outside_a_trace_or_for_a_non_w3c_id() {
    let (log, _out) = logger();
    let mut outside = HashMap::new();
    log.in_scope(|| inject_trace(&mut outside));
    assert!(outside.is_empty());

    let mut legacy = HashMap::new();
    log.in_scope(|| {
        log.request_span(Some("req-42"))
            .in_scope(|| inject_trace(&mut legacy));
    });
    assert!(legacy.is_empty(), "{legacy:?}");
}
