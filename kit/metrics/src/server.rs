//! A tower layer for HTTP and gRPC servers: each request runs in a span continuing the
//! caller's trace (`traceparent`), and is counted, timed and tracked while in flight.
//!
//! ```
//! use gochat_metrics::{Config, ServerLayer};
//!
//! # fn main() -> Result<(), gochat_metrics::Error> {
//! let metrics = gochat_metrics::new(&gochat_core::Context::new(), Config::default(), Default::default())?;
//! // axum: `Router::new().route(…).layer(http)`; tonic: `Server::builder().layer(grpc)`.
//! let http = ServerLayer::http(&metrics.meter("http"));
//! let grpc = ServerLayer::grpc(&metrics.meter("rpc"));
//! # let _ = (http, grpc);
//! # Ok(()) }
//! ```

use std::task::{Context as TaskContext, Poll};

use gochat_clog::Logger;
use gochat_core::BoxFuture;
use http::{HeaderValue, Request, Response};
use opentelemetry::{KeyValue, metrics::Meter};
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument;

use crate::{
    HeaderExtractor, MeteredBody,
    instruments::{Instruments, method_label},
    metered_body::Protocol,
};

/// The response header naming the request's trace id, for a client to quote.
pub const TRACE_ID_HEADER: &str = "x-trace-id";

/// For HTTP: `http_server_requests` (counter), `http_server_duration_seconds` (histogram),
/// both by `method`, `route` (the axum route pattern, or `unmatched`) and `status`, and
/// `http_server_in_flight` (by `method`); recorded when the response headers are ready.
/// For gRPC: `rpc_server_requests`, `rpc_server_duration_seconds` by `rpc`
/// (`/package.Service/Method`) and `code` (`OK`, `NotFound`, …, from `grpc-status`), and
/// `rpc_server_in_flight` (unlabelled: a path is only known good once answered); recorded when the response body ends.
///
/// Each request runs in a clog request span (with the layer's logger as the current
/// subscriber) continuing the `traceparent` header (a new
/// trace without one); the response carries the trace id in `x-trace-id`.
#[derive(Clone, Debug)]
pub struct ServerLayer {
    instruments: Instruments,
    protocol: Protocol,
    log: Logger,
}

impl ServerLayer {
    /// A layer for an HTTP server (axum or any tower HTTP service).
    pub fn http(meter: &Meter) -> Self {
        Self::new(meter, Protocol::Http)
    }

    /// A layer for a gRPC server (tonic).
    pub fn grpc(meter: &Meter) -> Self {
        Self::new(meter, Protocol::Grpc)
    }

    fn new(meter: &Meter, protocol: Protocol) -> Self {
        let instruments = match protocol {
            Protocol::Http => Instruments::new(meter, "http_server", "HTTP requests answered"),
            Protocol::Grpc => Instruments::new(meter, "rpc_server", "gRPC calls answered"),
        };
        Self {
            instruments,
            protocol,
            log: Logger::current(),
        }
    }

    /// The logger whose subscriber request spans are made in. Default: the current one.
    #[must_use]
    pub fn logger(mut self, log: Logger) -> Self {
        self.log = log;
        self
    }
}

impl<S> Layer<S> for ServerLayer {
    type Service = ServerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`ServerLayer`] wraps around another.
#[derive(Clone, Debug)]
pub struct ServerService<S> {
    inner: S,
    layer: ServerLayer,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ServerService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    ResBody: Send + 'static,
{
    type Response = Response<MeteredBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let protocol = self.layer.protocol;
        let span = self
            .layer
            .log
            .request_span_from(&HeaderExtractor(request.headers()));
        let trace_id =
            gochat_clog::span_trace_id(&span).and_then(|id| HeaderValue::from_str(&id).ok());
        let started = match protocol {
            Protocol::Http => {
                let method = method_label(request.method());
                let route = request
                    .extensions()
                    .get::<axum::extract::MatchedPath>()
                    .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
                self.layer.instruments.start(
                    vec![method.clone(), KeyValue::new("route", route)],
                    Some(method),
                    protocol.unfinished(),
                )
            }
            Protocol::Grpc => {
                let rpc = KeyValue::new("rpc", request.uri().path().to_owned());
                (self.layer.instruments).start(vec![rpc], None, protocol.unfinished())
            }
        };
        let answer = self
            .layer
            .log
            .in_scope(|| span.in_scope(|| self.inner.call(request)));
        let log = self.layer.log.clone();
        Box::pin(
            log.bind(
                async move {
                    let mut response = match answer.await {
                        Ok(response) => response,
                        Err(e) => {
                            started.finish(protocol.failed("Unknown"));
                            return Err(e);
                        }
                    };
                    if let Some(trace_id) = trace_id {
                        response.headers_mut().insert(TRACE_ID_HEADER, trace_id);
                    }
                    Ok(protocol.measure(started, response))
                }
                .instrument(span),
            ),
        )
    }
}
