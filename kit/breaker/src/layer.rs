//! A tower layer: calls to the wrapped service go through a breaker; rejected ones fail with
//! [`BreakerError::Open`] without reaching it.

use std::task::{Context as TaskContext, Poll};

use gochat_core::BoxFuture;
use tower_layer::Layer;
use tower_service::Service;

use crate::{Breaker, BreakerError};

/// Judges a call's outcome: `true` when it counts as a failure.
pub trait Classify<R, E> {
    /// Whether `outcome` is a failure of the resource.
    fn is_failure(&self, outcome: &Result<R, E>) -> bool;
}

/// The default judge: every error is a failure, every response a success.
#[derive(Clone, Copy, Debug, Default)]
pub struct ErrorsFail;

impl<R, E> Classify<R, E> for ErrorsFail {
    fn is_failure(&self, outcome: &Result<R, E>) -> bool {
        outcome.is_err()
    }
}

impl<R, E, F: Fn(&Result<R, E>) -> bool> Classify<R, E> for F {
    fn is_failure(&self, outcome: &Result<R, E>) -> bool {
        self(outcome)
    }
}

/// Wraps a service in a breaker.
///
/// ```
/// use gochat_breaker::{BreakerLayer, Config};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), gochat_breaker::Error> {
/// let breakers = gochat_breaker::new(&gochat_core::Context::new(), Config::default(), Default::default()).await?;
/// // HTTP: count 5xx answers as failures too.
/// let layer = BreakerLayer::new(breakers.get("im-repo")).failure_if(
///     |outcome: &Result<http::Response<()>, std::convert::Infallible>| {
///         outcome.as_ref().map_or(true, |r| r.status().is_server_error())
///     },
/// );
/// # let _ = layer;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct BreakerLayer<C = ErrorsFail> {
    breaker: Breaker,
    classify: C,
}

impl BreakerLayer {
    /// Every error of the wrapped service counts as a failure.
    pub fn new(breaker: Breaker) -> Self {
        Self {
            breaker,
            classify: ErrorsFail,
        }
    }
}

impl<C> BreakerLayer<C> {
    /// `judge` decides which outcomes are failures (e.g. HTTP 5xx answers).
    pub fn failure_if<J>(self, judge: J) -> BreakerLayer<J> {
        BreakerLayer {
            breaker: self.breaker,
            classify: judge,
        }
    }
}

impl<S, C: Clone> Layer<S> for BreakerLayer<C> {
    type Service = BreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        BreakerService {
            inner,
            breaker: self.breaker.clone(),
            classify: self.classify.clone(),
        }
    }
}

/// The service [`BreakerLayer`] wraps around another.
#[derive(Clone, Debug)]
pub struct BreakerService<S, C = ErrorsFail> {
    inner: S,
    breaker: Breaker,
    classify: C,
}

impl<S, C, Request> Service<Request> for BreakerService<S, C>
where
    S: Service<Request> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send,
    S::Error: Send,
    C: Classify<S::Response, S::Error> + Clone + Send + Sync + 'static,
    Request: Send + 'static,
{
    type Response = S::Response;
    type Error = BreakerError<S::Error>;
    type Future = BoxFuture<'static, Result<S::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(BreakerError::Inner)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let permit = self.breaker.try_acquire::<S::Error>();
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let classify = self.classify.clone();
        Box::pin(async move {
            let permit = permit?;
            let outcome = inner.call(request).await;
            if classify.is_failure(&outcome) {
                permit.failure();
            } else {
                permit.success();
            }
            outcome.map_err(BreakerError::Inner)
        })
    }
}
