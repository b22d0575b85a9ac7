//! A tower layer for HTTP and gRPC clients: the current trace goes out in `traceparent`, and
//! each request is counted, timed and tracked while in flight.
//!
//! ```
//! use gochat_metrics::{ClientLayer, Config};
//!
//! # fn main() -> Result<(), gochat_metrics::Error> {
//! let metrics = gochat_metrics::new(&gochat_core::Context::new(), Config::default(), Default::default())?;
//! // tonic: `tower::ServiceBuilder::new().layer(grpc).service(channel)`.
//! let http = ClientLayer::http(&metrics.meter("http"));
//! let grpc = ClientLayer::grpc(&metrics.meter("rpc"));
//! # let _ = (http, grpc);
//! # Ok(()) }
//! ```

use std::task::{Context as TaskContext, Poll};

use gochat_core::BoxFuture;
use http::{Request, Response};
use opentelemetry::{KeyValue, metrics::Meter};
use tower_layer::Layer;
use tower_service::Service;

use crate::{
    HeaderInjector, MeteredBody,
    instruments::{Instruments, method_label},
    metered_body::Protocol,
};

/// For HTTP: `http_client_requests`, `http_client_duration_seconds` by `method`, `host` and
/// `status` (`error` when no response came), and `http_client_in_flight` by `host`;
/// recorded at the response headers. For gRPC: `rpc_client_requests`,
/// `rpc_client_duration_seconds` by `rpc` and `code`, `rpc_client_in_flight`;
/// recorded when the response body ends.
///
/// The current span's trace context is written into the request's `traceparent` header
/// (unless the request already has one).
#[derive(Clone, Debug)]
pub struct ClientLayer {
    instruments: Instruments,
    protocol: Protocol,
}

impl ClientLayer {
    /// A layer for an HTTP client service.
    pub fn http(meter: &Meter) -> Self {
        Self {
            instruments: Instruments::new(meter, "http_client", "HTTP requests sent"),
            protocol: Protocol::Http,
        }
    }

    /// A layer for a gRPC client (a tonic `Channel`).
    pub fn grpc(meter: &Meter) -> Self {
        Self {
            instruments: Instruments::new(meter, "rpc_client", "gRPC calls made"),
            protocol: Protocol::Grpc,
        }
    }
}

impl<S> Layer<S> for ClientLayer {
    type Service = ClientService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`ClientLayer`] wraps around another.
#[derive(Clone, Debug)]
pub struct ClientService<S> {
    inner: S,
    layer: ClientLayer,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ClientService<S>
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

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        if !request.headers().contains_key(gochat_clog::TRACEPARENT) {
            gochat_clog::inject_trace(&mut HeaderInjector(request.headers_mut()));
        }
        let protocol = self.layer.protocol;
        let started = match protocol {
            Protocol::Http => {
                let host = KeyValue::new("host", request.uri().host().unwrap_or("none").to_owned());
                let method = method_label(request.method());
                (self.layer.instruments).start(
                    vec![method, host.clone()],
                    Some(host),
                    protocol.unfinished(),
                )
            }
            Protocol::Grpc => {
                let rpc = KeyValue::new("rpc", request.uri().path().to_owned());
                (self.layer.instruments).start(vec![rpc], None, protocol.unfinished())
            }
        };
        let answer = self.inner.call(request);
        Box::pin(async move {
            match answer.await {
                Ok(response) => Ok(protocol.measure(started, response)),
                Err(e) => {
                    started.finish(protocol.failed("Unavailable"));
                    Err(e)
                }
            }
        })
    }
}
