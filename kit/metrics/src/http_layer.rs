//! A tower layer for HTTP servers: requests by method and status, their duration, and how many
//! are in flight.
//!
//! ```
//! use gochat_metrics::{Config, HttpMetricsLayer};
//!
//! let metrics = gochat_metrics::new(&gochat_core::Context::new(), Config::default(), Default::default()).unwrap();
//! let layer = HttpMetricsLayer::new(&metrics.meter("http"));
//! # let _ = layer;
//! ```

use std::{
    task::{Context as TaskContext, Poll},
    time::Instant,
};

use gochat_core::BoxFuture;
use http::{Request, Response};
use opentelemetry::{
    KeyValue,
    metrics::{Counter, Histogram, Meter, UpDownCounter},
};
use tower_layer::Layer;
use tower_service::Service;

/// Records `http_server_requests` (counter), `http_server_duration_seconds` (histogram) — both
/// by `method` and `status` — and `http_server_in_flight` (up-down counter, by `method`).
#[derive(Clone, Debug)]
pub struct HttpMetricsLayer {
    instruments: Instruments,
}

#[derive(Clone, Debug)]
struct Instruments {
    requests: Counter<u64>,
    duration: Histogram<f64>,
    in_flight: UpDownCounter<i64>,
}

impl HttpMetricsLayer {
    /// Instruments made on `meter`.
    pub fn new(meter: &Meter) -> Self {
        Self {
            instruments: Instruments {
                requests: meter
                    .u64_counter("http_server_requests")
                    .with_description("HTTP requests answered, by method and status.")
                    .build(),
                duration: meter
                    .f64_histogram("http_server_duration_seconds")
                    .with_description("Time to answer an HTTP request, by method and status.")
                    .with_boundaries(vec![
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    ])
                    .build(),
                in_flight: meter
                    .i64_up_down_counter("http_server_in_flight")
                    .with_description("HTTP requests being answered, by method.")
                    .build(),
            },
        }
    }
}

impl<S> Layer<S> for HttpMetricsLayer {
    type Service = HttpMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpMetricsService {
            inner,
            instruments: self.instruments.clone(),
        }
    }
}

/// The service [`HttpMetricsLayer`] wraps around another.
#[derive(Clone, Debug)]
pub struct HttpMetricsService<S> {
    inner: S,
    instruments: Instruments,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for HttpMetricsService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    ResBody: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let method = KeyValue::new("method", request.method().as_str().to_owned());
        let instruments = self.instruments.clone();
        instruments.in_flight.add(1, std::slice::from_ref(&method));
        let started = Instant::now();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let outcome = answer.await;
            let status = match &outcome {
                Ok(response) => response.status().as_u16().to_string(),
                Err(_) => "error".to_owned(),
            };
            let labels = [method.clone(), KeyValue::new("status", status)];
            instruments.requests.add(1, &labels);
            instruments
                .duration
                .record(started.elapsed().as_secs_f64(), &labels);
            instruments.in_flight.add(-1, &[method]);
            outcome
        })
    }
}
