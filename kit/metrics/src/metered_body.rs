//! A response body that finishes its request's measurement when the body is done, for gRPC,
//! whose status comes in the trailers after the last message.

use std::{
    pin::Pin,
    task::{Context as TaskContext, Poll},
};

use http::{HeaderMap, Response};
use http_body::{Body, Frame, SizeHint};
use opentelemetry::KeyValue;

use crate::instruments::Started;

pin_project_lite::pin_project! {
    /// The body of a response through a [`ServerLayer`](crate::ServerLayer) or
    /// [`ClientLayer`](crate::ClientLayer): the inner body, unchanged. For gRPC it records the
    /// call when the trailers (with `grpc-status`) pass or the body is dropped.
    #[derive(Debug)]
    pub struct MeteredBody<B> {
        #[pin]
        inner: B,
        started: Option<Started>,
    }
}

impl<B> MeteredBody<B> {
    /// A body measured until it ends (gRPC).
    fn until_end(inner: B, started: Started) -> Self {
        Self {
            inner,
            started: Some(started),
        }
    }

    /// A body passed through (HTTP: the request was recorded at its response headers).
    fn passthrough(inner: B) -> Self {
        Self {
            inner,
            started: None,
        }
    }
}

impl<B: Body> Body for MeteredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(mut started) = this.started.take()
                    && let Some(code) = grpc_code(trailers)
                {
                    set_grpc_outcome(&mut started, code);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(mut started) = this.started.take() {
                    started.outcome(KeyValue::new("code", "Unknown"));
                }
            }
            Poll::Ready(None) => {
                this.started.take();
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Which protocol a layer measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    Http,
    Grpc,
}

impl Protocol {
    /// The outcome recorded when a request is dropped before its answer.
    pub(crate) fn unfinished(self) -> KeyValue {
        match self {
            Self::Http => KeyValue::new("status", "cancelled"),
            Self::Grpc => KeyValue::new("code", "Cancelled"),
        }
    }

    /// The outcome recorded when the inner service failed (`grpc_failure`: the gRPC code
    /// that stands for it on this side).
    pub(crate) fn failed(self, grpc_failure: &'static str) -> KeyValue {
        match self {
            Self::Http => KeyValue::new("status", "error"),
            Self::Grpc => KeyValue::new("code", grpc_failure),
        }
    }

    /// Finishes `started` from `response`: HTTP now, by status; gRPC when the body ends, by
    /// the `grpc-status` of the trailers (or of the headers, for a trailers-only answer).
    pub(crate) fn measure<B>(
        self,
        mut started: Started,
        response: Response<B>,
    ) -> Response<MeteredBody<B>> {
        match self {
            Self::Http => {
                let status = response.status().as_u16().to_string();
                started.finish(KeyValue::new("status", status));
                response.map(MeteredBody::passthrough)
            }
            Self::Grpc => {
                if let Some(code) = grpc_code(response.headers()) {
                    set_grpc_outcome(&mut started, code);
                }
                response.map(|body| MeteredBody::until_end(body, started))
            }
        }
    }
}

/// The `grpc-status` in headers or trailers.
fn grpc_code(headers: &HeaderMap) -> Option<i32> {
    headers.get("grpc-status")?.to_str().ok()?.parse().ok()
}

/// Sets `code` by name; an unimplemented method is labelled `rpc="unimplemented"` so that
/// made-up paths cannot grow the series without bound.
fn set_grpc_outcome(started: &mut Started, code: i32) {
    if code == 12 {
        started.relabel(KeyValue::new("rpc", "unimplemented"));
    }
    started.outcome(KeyValue::new("code", code_name(code)));
}

/// gRPC status codes by their canonical names.
fn code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "Cancelled",
        2 => "Unknown",
        3 => "InvalidArgument",
        4 => "DeadlineExceeded",
        5 => "NotFound",
        6 => "AlreadyExists",
        7 => "PermissionDenied",
        8 => "ResourceExhausted",
        9 => "FailedPrecondition",
        10 => "Aborted",
        11 => "OutOfRange",
        12 => "Unimplemented",
        13 => "Internal",
        14 => "Unavailable",
        15 => "DataLoss",
        16 => "Unauthenticated",
        _ => "Invalid",
    }
}
