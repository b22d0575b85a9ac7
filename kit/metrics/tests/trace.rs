//! The tracing ↔ OpenTelemetry bridge end to end: one HTTP request's trace id is in its log
//! lines, in the `traceparent` header of the message it sends, and in the log lines of the
//! consumer that handles that message.

use std::time::Duration;

use axum::{Router, body::Body, extract::State, routing::post};
use gochat_clog::MemoryWriter;
use gochat_core::{Context, Env};
use gochat_metrics::{Config, Options, ServerLayer, TRACE_ID_HEADER};
use gochat_mq::{HandlerError, Message, Mq, Received};
use tokio::sync::mpsc;
use tower_service::Service;

const PATIENCE: Duration = Duration::from_secs(30);

async fn send(State(mq): State<Mq>) -> &'static str {
    tracing::info!("accepted");
    mq.producer()
        .send(Message::new("traced", "hello"))
        .await
        .unwrap();
    "sent"
}

#[tokio::test]
async fn one_http_requests_trace_id_is_in_its_logs_the_mq_header_and_the_consumers_logs() {
    let ctx = Context::new();
    let mut config = Config::default();
    config.listen = None;
    let metrics = gochat_metrics::new(&ctx, config, Options::default()).unwrap();
    let out = MemoryWriter::new();
    let log = gochat_clog::new(
        &ctx,
        gochat_clog::Config::for_env(Env::Production),
        gochat_clog::Options::default()
            .writer(out.clone())
            .tracer(metrics.tracer()),
    )
    .unwrap();
    let mut mq_config = gochat_mq::Config::for_env(Env::Development);
    mq_config.backend = gochat_mq::Backend::Memory(gochat_mq::MemoryConfig::named("trace-e2e"));
    let mq = gochat_mq::new(
        &ctx,
        mq_config,
        gochat_mq::Options::default().logger(log.clone()),
    )
    .await
    .unwrap();
    mq.admin().create_topic("traced", 1).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel::<Option<String>>();
    let handler = move |message: Received| {
        let tx = tx.clone();
        async move {
            tracing::info!("consumed");
            let header = message.headers.get_str("traceparent").map(str::to_owned);
            tx.send(header)
                .map_err(|e| HandlerError::from(e.to_string()))
        }
    };
    let subscription = mq
        .consumer("trace-e2e")
        .subscribe(&["traced"], handler)
        .await
        .unwrap();
    let mut app = Router::new()
        .route("/send", post(send))
        .with_state(mq.clone())
        .layer(ServerLayer::http(&metrics.meter("http")).logger(log.clone()));

    // A caller that sends its own trace context, and one that does not.
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    for traceparent in [Some(incoming), None] {
        let mut request = http::Request::post("/send");
        if let Some(value) = traceparent {
            request = request.header("traceparent", value);
        }
        let response = app
            .call(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let trace_id = response.headers()[TRACE_ID_HEADER]
            .to_str()
            .unwrap()
            .to_owned();
        if traceparent.is_some() {
            assert_eq!(trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        }
        assert_eq!(trace_id.len(), 32);

        let header = tokio::time::timeout(PATIENCE, rx.recv())
            .await
            .unwrap()
            .unwrap()
            .expect("the message carries a traceparent");
        let parts: Vec<&str> = header.split('-').collect();
        assert_eq!(parts[1], trace_id, "the mq header: {header}");
        if traceparent.is_some() {
            assert_ne!(
                parts[2], "00f067aa0ba902b7",
                "the request's own span is the parent"
            );
            assert_eq!(parts[3], "01", "sampled, as the caller said");
        }

        let lines = out.json_lines().unwrap();
        for message in ["accepted", "consumed"] {
            let line = lines
                .iter()
                .rev()
                .find(|line| line["message"] == message)
                .unwrap_or_else(|| panic!("no {message} line in {lines:?}"));
            assert_eq!(line["trace_id"], trace_id.as_str(), "{line}");
        }
    }
    subscription.shutdown().await;
    metrics.close().await;
}
