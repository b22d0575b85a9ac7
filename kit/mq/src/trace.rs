//! Trace ids across the broker: the producer writes the current span's id into the
//! `trace_id` header; the consumer runs the handler in a span carrying it.

use gochat_clog::Logger;
use tracing::Span;

use crate::message::{Message, Received};

/// The header carrying the sender's trace id.
pub const TRACE_HEADER: &str = "trace_id";

/// Adds the current span's trace id to `message`, unless it has one.
pub(crate) fn stamp(message: &mut Message) {
    if !message.headers.contains(TRACE_HEADER)
        && let Some(id) = gochat_clog::current_trace_id()
    {
        message.headers.insert(TRACE_HEADER, id);
    }
}

/// The span a handler runs in: the sender's trace id (or a new one) and where the message is.
pub(crate) fn handler_span(log: &Logger, message: &Received) -> Span {
    let span = log.request_span(message.trace_id());
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
