//! The three instruments every request layer keeps, named by side and protocol
//! (`http_server_…`, `rpc_client_…`).

use std::time::Instant;

use opentelemetry::{
    KeyValue,
    metrics::{Counter, Histogram, Meter, UpDownCounter},
};

/// Latency buckets in seconds: 1 ms to 5 s.
const BOUNDARIES: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The method as a label value: the standard ones by name, any other as `other`, so made-up
/// methods cannot grow the series without bound.
pub(crate) fn method_label(method: &http::Method) -> KeyValue {
    let known = [
        http::Method::GET,
        http::Method::POST,
        http::Method::PUT,
        http::Method::DELETE,
        http::Method::PATCH,
        http::Method::HEAD,
        http::Method::OPTIONS,
        http::Method::CONNECT,
        http::Method::TRACE,
    ];
    let name = if known.contains(method) {
        method.as_str().to_owned()
    } else {
        "other".to_owned()
    };
    KeyValue::new("method", name)
}

/// `{prefix}_requests`, `{prefix}_duration_seconds`, `{prefix}_in_flight`.
#[derive(Clone, Debug)]
pub(crate) struct Instruments {
    requests: Counter<u64>,
    duration: Histogram<f64>,
    in_flight: UpDownCounter<i64>,
}

impl Instruments {
    pub(crate) fn new(meter: &Meter, prefix: &str, what: &str) -> Self {
        Self {
            requests: meter
                .u64_counter(format!("{prefix}_requests"))
                .with_description(format!("{what} finished, by outcome."))
                .build(),
            duration: meter
                .f64_histogram(format!("{prefix}_duration_seconds"))
                .with_description(format!("How long {what} took, by outcome."))
                .with_boundaries(BOUNDARIES.to_vec())
                .build(),
            in_flight: meter
                .i64_up_down_counter(format!("{prefix}_in_flight"))
                .with_description(format!("{what} under way."))
                .build(),
        }
    }

    /// Counts a request as started. It is recorded once, when the returned [`Started`] is
    /// dropped, with the outcome set last (`unfinished` if none was: a request abandoned).
    pub(crate) fn start(
        &self,
        labels: Vec<KeyValue>,
        in_flight: Option<KeyValue>,
        unfinished: KeyValue,
    ) -> Started {
        self.in_flight.add(1, in_flight.as_slice());
        Started {
            instruments: self.clone(),
            labels,
            in_flight,
            outcome: unfinished,
            started: Instant::now(),
        }
    }
}

/// A request being measured; recorded when dropped.
#[derive(Debug)]
pub(crate) struct Started {
    instruments: Instruments,
    labels: Vec<KeyValue>,
    in_flight: Option<KeyValue>,
    outcome: KeyValue,
    started: Instant,
}

impl Started {
    /// Replaces the label with the same key.
    pub(crate) fn relabel(&mut self, label: KeyValue) {
        self.labels.retain(|old| old.key != label.key);
        self.labels.push(label);
    }

    /// Sets the outcome label (`status="200"`, `code="OK"`).
    pub(crate) fn outcome(&mut self, outcome: KeyValue) {
        self.outcome = outcome;
    }

    /// Records the request with `outcome` now.
    pub(crate) fn finish(mut self, outcome: KeyValue) {
        self.outcome(outcome);
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let mut labels = std::mem::take(&mut self.labels);
        labels.push(self.outcome.clone());
        let instruments = &self.instruments;
        instruments.requests.add(1, &labels);
        instruments
            .duration
            .record(self.started.elapsed().as_secs_f64(), &labels);
        instruments.in_flight.add(-1, self.in_flight.as_slice());
    }
}
