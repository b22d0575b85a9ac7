//! An axum server behind both layers: per-user rate limiting (429 with Retry-After) and a
//! circuit breaker around a flaky backend (503 while open). The example then calls itself
//! over HTTP and prints what it gets.
//!
//! Run with `cargo run -p example-ratelimit`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use std::convert::Infallible;

use axum::{
    Router, error_handling::HandleErrorLayer, http::StatusCode, response::IntoResponse,
    routing::get,
};
use gochat_breaker::{BreakerError, BreakerLayer, Policy};
use gochat_core::Context;
use gochat_ratelimit::{Config, RateLimitLayer, Rule};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tower_layer::Stack;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctx = Context::new();
    // Three requests at once per user, then one every 10 seconds.
    let limits = Config::default().rule("api", Rule::new(1, Duration::from_secs(10), 3));
    let limiter = gochat_ratelimit::new(&ctx, limits, Default::default()).await?;
    let mut breaker_config = gochat_breaker::Config::default();
    breaker_config.default = Policy::Classic {
        failures: 2,
        open_timeout: Duration::from_secs(30),
        half_open_successes: 1,
    };
    let breakers = gochat_breaker::new(&ctx, breaker_config, Default::default()).await?;

    // A backend that fails from the third call on.
    let calls = Arc::new(AtomicU32::new(0));
    let backend = {
        let calls = calls.clone();
        move || async move {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                (StatusCode::OK, "hello\n")
            } else {
                (StatusCode::INTERNAL_SERVER_ERROR, "backend down\n")
            }
        }
    };
    let breaker = BreakerLayer::new(breakers.get("backend")).failure_if(
        |outcome: &Result<axum::response::Response, Infallible>| {
            outcome.as_ref().is_ok_and(|r| r.status().is_server_error())
        },
    );
    let rate_limit = RateLimitLayer::new(
        limiter,
        "api",
        |request: &http::Request<axum::body::Body>| {
            let user = request.headers().get("x-user-id")?;
            user.to_str().ok().map(str::to_owned)
        },
    );
    let app = Router::new()
        .route("/hello", get(backend))
        // Innermost first: the breaker (so requests the rate limit turned away never count
        // for it), then the rate limit, then the breaker's rejections turned into 503 answers
        // (axum needs services that cannot fail).
        .route_layer(Stack::new(
            Stack::new(breaker, rate_limit),
            HandleErrorLayer::new(|error: BreakerError<Infallible>| async move {
                (StatusCode::SERVICE_UNAVAILABLE, format!("{error}\n")).into_response()
            }),
        ));

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    println!("serving on http://{address}/hello");

    for (user, n) in [("ann", 5), ("bob", 3)] {
        for i in 1..=n {
            println!("{user} #{i}: {}", request(address, user).await?);
        }
    }
    Ok(())
}

/// One GET /hello as `user`; the status line and the headers that matter here.
async fn request(address: std::net::SocketAddr, user: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(address).await?;
    let request = format!(
        "GET /hello HTTP/1.1\r\nHost: {address}\r\nx-user-id: {user}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await?;
    let mut lines = reply.lines();
    let status = lines.next().unwrap_or_default().to_owned();
    let retry = lines.find(|l| l.to_ascii_lowercase().starts_with("retry-after"));
    Ok(match retry {
        Some(retry) => format!("{status} ({retry})"),
        None => status,
    })
}
