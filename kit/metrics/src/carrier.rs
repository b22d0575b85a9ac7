//! HTTP headers (and so gRPC metadata, which travels as headers) as trace-context carriers.

use gochat_clog::{Extractor, Injector};
use http::{HeaderMap, HeaderName, HeaderValue};

/// Reads `traceparent` from request headers: `log.request_span_from(&HeaderExtractor(headers))`.
#[derive(Debug)]
pub struct HeaderExtractor<'a>(pub &'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// Writes `traceparent` into request headers: `gochat_clog::inject_trace(&mut HeaderInjector(headers))`.
#[derive(Debug)]
pub struct HeaderInjector<'a>(pub &'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // The propagator writes only its own well-formed names and values; anything else is
        // skipped rather than sent malformed.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}
