//! A tower layer: requests over their rule's rate get `429 Too Many Requests` with
//! `Retry-After`.
//!
//! ```
//! use gochat_ratelimit::{Config, RateLimitLayer, Rule};
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::default().rule("api", Rule::new(100, Duration::from_secs(1), 20));
//! let limiter = gochat_ratelimit::new(&gochat_core::Context::new(), config, Default::default()).await?;
//! // Keyed by a header the gateway sets after authentication; no header, no limit.
//! let layer = RateLimitLayer::new(limiter, "api", |request: &http::Request<()>| {
//!     request.headers().get("x-user-id")?.to_str().ok().map(str::to_owned)
//! });
//! # let _ = layer;
//! # Ok(()) }
//! ```

use std::{
    sync::Arc,
    task::{Context as TaskContext, Poll},
};

use gochat_core::BoxFuture;
use http::{HeaderValue, Request, Response, StatusCode, header::RETRY_AFTER};
use tower_layer::Layer;
use tower_service::Service;

use crate::{Decision, RateLimiter};

/// Limits requests by a key taken from each request (a user id, a client IP) under one rule.
#[derive(Clone)]
pub struct RateLimitLayer<K> {
    limiter: RateLimiter,
    rule: Arc<str>,
    key: K,
}

impl<K> std::fmt::Debug for RateLimitLayer<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("rule", &self.rule)
            .finish_non_exhaustive()
    }
}

impl<K> RateLimitLayer<K> {
    /// Requests are limited under `rule`, per the key `key` returns; a request for which it
    /// returns `None` is not limited.
    pub fn new(limiter: RateLimiter, rule: &str, key: K) -> Self {
        Self {
            limiter,
            rule: rule.into(),
            key,
        }
    }
}

impl<S, K: Clone> Layer<S> for RateLimitLayer<K> {
    type Service = RateLimitService<S, K>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService {
            inner,
            limiter: self.limiter.clone(),
            rule: self.rule.clone(),
            key: self.key.clone(),
        }
    }
}

/// The service [`RateLimitLayer`] wraps around another.
#[derive(Clone)]
pub struct RateLimitService<S, K> {
    inner: S,
    limiter: RateLimiter,
    rule: Arc<str>,
    key: K,
}

impl<S, K> std::fmt::Debug for RateLimitService<S, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitService")
            .field("rule", &self.rule)
            .finish_non_exhaustive()
    }
}

impl<S, K, ReqBody, ResBody> Service<Request<ReqBody>> for RateLimitService<S, K>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    K: Fn(&Request<ReqBody>) -> Option<String> + Clone + Send + Sync + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let key = (self.key)(&request);
        // The clone that was made ready goes with this call; a fresh clone stays.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let (limiter, rule) = (self.limiter.clone(), self.rule.clone());
        Box::pin(async move {
            if let Some(key) = key {
                match limiter.allow(&key, &rule).await {
                    Ok(decision) if !decision.allowed => return Ok(too_many(&decision)),
                    Ok(_) => {}
                    // Only a request above the burst errs; let the service judge it.
                    Err(e) => limiter.log_refused_check(&rule, &e),
                }
            }
            inner.call(request).await
        })
    }
}

/// `429 Too Many Requests` with `Retry-After` in whole seconds (at least 1).
fn too_many<B: Default>(decision: &Decision) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    if let Some(wait) = decision.retry_after {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    }
    response
}
