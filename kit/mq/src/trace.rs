//! Traces across the broker: the producer writes the current span's W3C trace context into
//! the `traceparent` header; the consumer runs the handler in a span continuing it.

use gochat_clog::Logger;
use tracing::Span;

use crate::message::{Message, Received};

/// The header carrying the sender's trace context (W3C `traceparent`).
pub const TRACE_HEADER: &str = gochat_clog::TRACEPARENT;

/// Adds the current span's trace context to `message`, unless it has one.
pub(crate) fn stamp(message: &mut Message) {
    if !message.headers.contains(TRACE_HEADER) {
        gochat_clog::inject_trace(&mut message.headers);
    }
}

/// The span a handler runs in: the sender's trace (or a new one) and where the message is.
pub(crate) fn handler_span(log: &Logger, message: &Received) -> Span {
    let span = log.request_span_from(&message.headers);
    log.in_scope(|| {
        tracing::error_span!(
            parent: &span,
            "message",
            topic = %message.topic,
            partition = message.partition,
            offset = message.offset,
        )
    })
}
