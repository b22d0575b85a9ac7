//! The server and client layers on real routers and a real gRPC server: series by route,
//! status, rpc and code on `/metrics`, and the trace carried from client to server.

use axum::{Router, body::Body, http::StatusCode, routing::get};
use gochat_clog::{MemoryWriter, Options as LogOptions};
use gochat_core::{Context, Env};
use gochat_metrics::{ClientLayer, Config, Metrics, Options, ServerLayer, TRACE_ID_HEADER};
use tonic::transport::{Endpoint, Server, server::TcpIncoming};
use tonic_health::{
    ServingStatus,
    pb::{HealthCheckRequest, health_client::HealthClient},
};
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument;

fn metrics() -> Metrics {
    let mut config = Config::default();
    config.listen = None;
    gochat_metrics::new(&Context::new(), config, Options::default()).unwrap()
}

/// The value of one series, by its name and labels as Prometheus prints them.
fn value(text: &str, series: &str) -> String {
    let prefix = format!("{series} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .to_owned()
}

fn logger() -> (gochat_clog::Logger, MemoryWriter) {
    let out = MemoryWriter::new();
    let log = gochat_clog::new(
        &Context::new(),
        gochat_clog::Config::for_env(Env::Production),
        LogOptions::default().writer(out.clone()),
    )
    .unwrap();
    (log, out)
}

async fn status(code: axum::extract::Path<u16>) -> StatusCode {
    tracing::info!("answering");
    StatusCode::from_u16(code.0).unwrap_or(StatusCode::BAD_REQUEST)
}

#[tokio::test]
async fn prometheus_shows_http_server_requests_by_route_method_and_status() {
    let metrics = metrics();
    let (log, out) = logger();
    let mut app = Router::new()
        .route("/status/{code}", get(status).post(status))
        .layer(ServerLayer::http(&metrics.meter("http")).logger(log));
    let mut trace_ids = Vec::new();
    for (method, path) in [
        ("GET", "/status/200"),
        ("GET", "/status/200"),
        ("GET", "/status/500"),
        ("POST", "/status/201"),
        ("GET", "/nowhere/at/all"),
    ] {
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        let response = app.call(request).await.unwrap();
        let id = response.headers()[TRACE_ID_HEADER].to_str().unwrap();
        trace_ids.push(id.to_owned());
    }

    let text = metrics.scrape().unwrap();
    for (series, expected) in [
        (
            r#"http_server_requests_total{method="GET",route="/status/{code}",status="200"}"#,
            "2",
        ),
        (
            r#"http_server_requests_total{method="GET",route="/status/{code}",status="500"}"#,
            "1",
        ),
        (
            r#"http_server_requests_total{method="POST",route="/status/{code}",status="201"}"#,
            "1",
        ),
        (
            r#"http_server_duration_seconds_count{method="GET",route="/status/{code}",status="200"}"#,
            "2",
        ),
        (r#"http_server_in_flight{method="GET"}"#, "0"),
    ] {
        assert_eq!(value(&text, series), expected, "{series}");
    }
    assert!(
        !text.contains("/nowhere"),
        "an unrouted path is not a label value:\n{text}"
    );

    // Each request was its own trace, and the handler's line carries it.
    let logged: Vec<String> = out
        .json_lines()
        .unwrap()
        .iter()
        .map(|line| line["trace_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(logged, trace_ids[..4], "one line per routed request");
    assert!(trace_ids.iter().all(|id| id.len() == 32));
    let mut unique = trace_ids.clone();
    unique.dedup();
    assert_eq!(unique.len(), 5);
}

#[tokio::test]
async fn prometheus_shows_http_client_requests_and_the_server_continues_the_clients_trace() {
    let metrics = metrics();
    let (log, _out) = logger();
    let server = Router::new()
        .route("/status/{code}", get(status))
        .layer(ServerLayer::http(&metrics.meter("http")).logger(log.clone()));
    // The router stands in for the transport: the client layer sees real responses.
    let mut client = ClientLayer::http(&metrics.meter("http")).layer(server);

    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let span = log.request_span(Some(trace));
    let request = http::Request::get("http://backend.local/status/404")
        .body(Body::empty())
        .unwrap();
    let call = log.in_scope(|| span.in_scope(|| client.call(request)));
    let response = call.await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()[TRACE_ID_HEADER], trace);

    let text = metrics.scrape().unwrap();
    assert_eq!(
        value(
            &text,
            r#"http_client_requests_total{host="backend.local",method="GET",status="404"}"#
        ),
        "1"
    );
    assert_eq!(
        value(&text, r#"http_client_in_flight{host="backend.local"}"#),
        "0"
    );
}

#[tokio::test]
async fn prometheus_shows_grpc_calls_by_rpc_and_code_on_both_sides() {
    let metrics = metrics();
    let (log, _out) = logger();
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("gochat.Repo", ServingStatus::Serving)
        .await;
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let address = incoming.local_addr().unwrap();
    let layer = ServerLayer::grpc(&metrics.meter("rpc")).logger(log.clone());
    tokio::spawn(async move {
        let _keep_reporting = reporter;
        Server::builder()
            .layer(layer)
            .add_service(health)
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
    let channel = Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(ClientLayer::grpc(&metrics.meter("rpc")).layer(channel));

    let trace = "0af7651916cd43dd8448eb211c80319c";
    let span = log.request_span(Some(trace));
    let check = |service: &str| HealthCheckRequest {
        service: service.to_owned(),
    };
    let served = log
        .bind(client.check(check("gochat.Repo")).instrument(span))
        .await
        .unwrap();
    assert_eq!(
        served.metadata().get(TRACE_ID_HEADER).unwrap(),
        trace,
        "the server continued the client's trace"
    );
    for _ in 0..2 {
        let missing = client.check(check("nothing.Here")).await.unwrap_err();
        assert_eq!(missing.code(), tonic::Code::NotFound);
    }

    let text = metrics.scrape().unwrap();
    let rpc = "/grpc.health.v1.Health/Check";
    for side in ["server", "client"] {
        assert_eq!(
            value(
                &text,
                &format!(r#"rpc_{side}_requests_total{{code="OK",rpc="{rpc}"}}"#)
            ),
            "1",
            "{side}"
        );
        assert_eq!(
            value(
                &text,
                &format!(r#"rpc_{side}_requests_total{{code="NotFound",rpc="{rpc}"}}"#)
            ),
            "2",
            "{side}"
        );
        assert_eq!(
            value(&text, &format!("rpc_{side}_in_flight")),
            "0",
            "{side}"
        );
    }
}

#[tokio::test]
async fn an_unknown_grpc_method_is_one_series_not_one_per_path() {
    let metrics = metrics();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let address = incoming.local_addr().unwrap();
    let layer = ServerLayer::grpc(&metrics.meter("rpc"));
    tokio::spawn(
        Server::builder()
            .layer(layer)
            .add_service(health)
            .serve_with_incoming(incoming),
    );
    let mut channel = Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    for path in ["/made.Up/One", "/made.Up/Two"] {
        let request = http::Request::post(format!("http://{address}{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(tonic::body::Body::empty())
            .unwrap();
        std::future::poll_fn(|cx| channel.poll_ready(cx))
            .await
            .unwrap();
        let response = channel.call(request).await.unwrap();
        assert_eq!(response.headers()["grpc-status"], "12");
    }
    let text = metrics.scrape().unwrap();
    assert_eq!(
        value(
            &text,
            r#"rpc_server_requests_total{code="Unimplemented",rpc="unimplemented"}"#
        ),
        "2"
    );
    assert!(!text.contains("made.Up"), "{text}");
}
