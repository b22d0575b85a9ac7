//! Trace ids: one per request, on every line logged while handling it.
//!
//! ```
//! use gochat_clog::{new_trace_id, request_span};
//!
//! let id = new_trace_id();
//! assert_eq!(id.len(), 32);
//! // An incoming id (a header from a client or another service) is kept if it is sane…
//! let _span = request_span(Some("req-42"));
//! // …and replaced by a fresh one if it is not (empty, too long, or not printable ASCII).
//! let _span = request_span(Some("bad\nid"));
//! ```

use tracing::Span;

/// The field name of the trace id, on spans and on JSON lines.
pub const TRACE_ID_FIELD: &str = "trace_id";

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
pub fn request_span(trace_id: Option<&str>) -> Span {
    let id = match trace_id {
        Some(id) if is_valid_trace_id(id) => id.to_owned(),
        _ => new_trace_id(),
    };
    tracing::error_span!("request", trace_id = %id)
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
}
