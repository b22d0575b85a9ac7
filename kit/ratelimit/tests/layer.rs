//! The tower layer: over the limit, `429` with `Retry-After`, and the service is not called.

use std::{
    future::{Ready, ready},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context as TaskContext, Poll},
    time::Duration,
};

use gochat_core::Context;
use gochat_ratelimit::{Config, RateLimitLayer, Rule};
use http::{Request, Response, StatusCode, header::RETRY_AFTER};
use tower_layer::Layer;
use tower_service::Service;

/// Answers 200, counting its calls.
#[derive(Clone)]
struct Counting(Arc<AtomicUsize>);

impl Service<Request<()>> for Counting {
    type Response = Response<String>;
    type Error = std::convert::Infallible;
    type Future = Ready<Result<Response<String>, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: Request<()>) -> Self::Future {
        self.0.fetch_add(1, Ordering::SeqCst);
        ready(Ok(Response::new("ok".to_owned())))
    }
}

fn from(user: Option<&str>) -> Request<()> {
    let mut request = Request::builder().uri("/send");
    if let Some(user) = user {
        request = request.header("x-user-id", user);
    }
    request.body(()).unwrap()
}

#[tokio::test]
async fn over_the_limit_is_429_with_retry_after_and_the_service_is_not_called() {
    let config = Config::default().rule("send", Rule::new(1, Duration::from_secs(30), 2));
    let limiter = gochat_ratelimit::new(&Context::new(), config, Default::default())
        .await
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = RateLimitLayer::new(limiter, "send", |request: &Request<()>| {
        request
            .headers()
            .get("x-user-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
    let mut service = layer.layer(Counting(calls.clone()));

    for _ in 0..2 {
        let response = service.call(from(Some("ann"))).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let limited = service.call(from(Some("ann"))).await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the limited request never reached the service"
    );

    let other = service.call(from(Some("bob"))).await.unwrap();
    assert_eq!(other.status(), StatusCode::OK, "bob has his own bucket");
    for _ in 0..5 {
        let anonymous = service.call(from(None)).await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::OK, "no key, no limit");
    }
}
