//! Trace ids: one per request, on every line logged while handling it; W3C trace context
//! (`traceparent`) across process boundaries.
//!
//! ```
//! use std::collections::HashMap;
//! use gochat_clog::{inject_trace, new_trace_id, request_span, request_span_from};
//!
//! let id = new_trace_id();
//! assert_eq!(id.len(), 32);
//! // An incoming id (a header from a client or another service) is kept if it is sane…
//! let _span = request_span(Some("req-42"));
//! // …and replaced by a fresh one if it is not (empty, too long, or not printable ASCII).
//! let _span = request_span(Some("bad\nid"));
//! // Between services the W3C `traceparent` header carries the trace: read it on the way in…
//! let incoming = HashMap::from([(
//!     "traceparent".to_owned(),
//!     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
//! )]);
//! let span = request_span_from(&incoming);
//! // …and write the current one on the way out (nothing is written outside a trace).
//! let mut outgoing = HashMap::new();
//! span.in_scope(|| inject_trace(&mut outgoing));
//! ```

use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState},
};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::{Span, field};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The field name of the trace id, on spans and on JSON lines.
pub const TRACE_ID_FIELD: &str = "trace_id";

/// The W3C trace-context header that carries a trace between services.
pub const TRACEPARENT: &str = "traceparent";

/// The longest incoming trace id kept as is.
pub const MAX_TRACE_ID_LEN: usize = 128;

/// A fresh trace id: 32 lowercase hex digits (128 random bits), the W3C trace-context form,
/// so OpenTelemetry can adopt it.
pub fn new_trace_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Whether an incoming trace id is kept: 1 to 128 characters of `[A-Za-z0-9._:-]`. Anything
/// else could forge log lines or blow up log storage, so it is replaced.
pub fn is_valid_trace_id(id: &str) -> bool {
    (1..=MAX_TRACE_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
}

/// Starts a `request` span carrying `trace_id`: the given one when valid, else a new one.
///
/// Every event inside the span (entered, or `.instrument`ed on a future) carries the id.
/// The span is created at `ERROR` level so that it exists whatever the level filter: a span
/// filtered out would take the trace id off the lines that do pass.
///
/// With an OpenTelemetry tracer installed ([`Options::tracer`](crate::Options::tracer)) the
/// span is also an OpenTelemetry span: a given W3C id (32 hex digits) becomes its trace id
/// (continued as an unsampled remote parent: the sampler decides), and without a given id the
/// logged id is OpenTelemetry's. Between services prefer [`request_span_from`], which carries
/// the caller's span and sampling decision too.
pub fn request_span(trace_id: Option<&str>) -> Span {
    let given = trace_id.filter(|id| is_valid_trace_id(id));
    let parent = given.and_then(w3c_trace_id).map(|trace_id| {
        Context::new().with_remote_span_context(SpanContext::new(
            trace_id,
            random_span_id(),
            TraceFlags::default(),
            true,
            TraceState::default(),
        ))
    });
    start(parent, given)
}

/// Starts a `request` span continuing the trace in `carrier`'s `traceparent` (W3C trace
/// context: HTTP headers, gRPC metadata, message headers); a missing or malformed header
/// starts a new trace. The logged `trace_id` is the W3C trace id.
pub fn request_span_from(carrier: &dyn Extractor) -> Span {
    let parent = TraceContextPropagator::new().extract(carrier);
    let valid = parent.span().span_context().is_valid();
    start(valid.then_some(parent), None)
}

/// Writes the current span's trace context into `carrier` as `traceparent` (and
/// `tracestate`), for an outgoing request or message. Without an OpenTelemetry tracer the
/// current `trace_id` is carried when it is a W3C id; outside any trace nothing is written.
pub fn inject_trace(carrier: &mut dyn Injector) {
    let propagator = TraceContextPropagator::new();
    let cx = Span::current().context();
    if cx.span().span_context().is_valid() {
        propagator.inject_context(&cx, carrier);
    } else if let Some(trace_id) = crate::current_trace_id().as_deref().and_then(w3c_trace_id) {
        let remote = SpanContext::new(
            trace_id,
            random_span_id(),
            TraceFlags::default(),
            false,
            TraceState::default(),
        );
        propagator.inject_context(&Context::new().with_remote_span_context(remote), carrier);
    }
}

fn start(parent: Option<Context>, given: Option<&str>) -> Span {
    let span = tracing::error_span!("request", trace_id = field::Empty);
    let remote = parent
        .as_ref()
        .map(|cx| cx.span().span_context().trace_id());
    if let Some(parent) = parent {
        // Fails only without an OpenTelemetry layer, where the remote id is used below.
        let _ = span.set_parent(parent);
    }
    let otel = span.context().span().span_context().clone();
    let id = match (given, otel.is_valid(), remote) {
        (Some(given), _, _) => given.to_owned(),
        (None, true, _) => otel.trace_id().to_string(),
        (None, false, Some(remote)) => remote.to_string(),
        (None, false, None) => new_trace_id(),
    };
    span.record(TRACE_ID_FIELD, field::display(id));
    span
}

/// A W3C trace id: exactly 32 hex digits, not all zero.
fn w3c_trace_id(id: &str) -> Option<TraceId> {
    let trace_id = (id.len() == 32)
        .then(|| TraceId::from_hex(id).ok())
        .flatten()?;
    (trace_id != TraceId::INVALID).then_some(trace_id)
}

fn random_span_id() -> SpanId {
    let (high, _) = uuid::Uuid::new_v4().as_u64_pair();
    SpanId::from(high.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_incoming_ids_are_kept() {
        assert!(is_valid_trace_id("00f067aa0ba902b7"));
        assert!(is_valid_trace_id("svc:req-1.2_3"));
        for bad in ["", "a b", "x\"}", "\n", &"a".repeat(MAX_TRACE_ID_LEN + 1)] {
            assert!(!is_valid_trace_id(bad), "{bad:?}");
        }
        let fresh = new_trace_id();
        assert!(fresh.len() == 32 && fresh.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(fresh, new_trace_id());
    }

    #[test]
    fn w3c_ids_are_32_hex_digits_not_all_zero() {
        assert!(w3c_trace_id("4bf92f3577b34da6a3ce929d0e0e4736").is_some());
        for bad in [
            "",
            "req-42",
            "4bf92f3577b34da6",
            &"0".repeat(32),
            &"g".repeat(32),
        ] {
            assert!(w3c_trace_id(bad).is_none(), "{bad:?}");
        }
    }
}
