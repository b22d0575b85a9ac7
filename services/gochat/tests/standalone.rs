//! End-to-end: the `gochat` binary (all four services, one process, SQLite under its data
//! dir), driven through real HTTP and WebSocket clients.

mod support;

use std::path::Path;

use support::{
    Client, Proc, assert_acked_stored, by_seq,
    scenarios::{self, Target},
};

fn start(data_dir: &Path) -> Proc {
    start_with(data_dir, &[])
}

fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> Proc {
    let dir = data_dir.to_str().unwrap();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Proc::spawn(
        env!("CARGO_BIN_EXE_gochat"),
        &["--http-addr", "127.0.0.1:0", "--data-dir", dir],
        &env,
        "gochat: listening on ",
    )
}

/// One gochat process; both "gateways" of the scenarios are its one gateway.
async fn with_gochat(scenario: impl AsyncFnOnce(&Target)) {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let client = Client::new(server.announced.clone());
    scenario(&Target {
        a: client.clone(),
        b: client,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_refresh_rotation_and_logout_kicks() {
    with_gochat(scenarios::accounts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_chat_acks_contiguous_seqs_multi_device_and_resends() {
    with_gochat(scenarios::single_chat).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_paging_unread_and_read_receipts() {
    with_gochat(scenarios::history_and_receipts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_roles_and_delivery() {
    with_gochat(scenarios::groups).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn world_channel_reaches_everyone() {
    with_gochat(scenarios::world).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_input_is_a_1001_and_harms_nothing() {
    with_gochat(scenarios::bad_input).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_keeps_every_acked_message_and_seq_continues() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let client = Client::new(server.announced.clone());
    let ann = client.user("ann").await;
    let bob = client.user("bob").await;
    let conversation = client.single(&ann, &bob).await;
    let mut socket = client.socket(&ann).await;
    // Many in flight at once, so the kill lands while the batcher is busy.
    for i in 0..40 {
        socket
            .message(&conversation, &format!("m{i}"), &format!("c{i}"))
            .await;
    }
    let acked = socket.acks(30).await;
    server.kill9();

    let server = start(dir.path());
    let client = Client::new(server.announced.clone());
    let ann = client.login(&ann.name).await;
    let history = client.history(&ann, &conversation).await;
    let stored = by_seq(&history);
    assert_acked_stored(&acked, &stored);
    let last = stored.keys().max().copied().unwrap_or(0);
    assert_eq!(
        stored.keys().copied().collect::<Vec<_>>(),
        (1..=last).collect::<Vec<_>>()
    );
    let ack = client.send(&ann, &conversation, "after the restart").await;
    assert_eq!(
        ack["seq"].as_i64(),
        Some(last + 1),
        "seq continues after the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_kicks_sockets_with_a_reason_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let client = Client::new(server.announced.clone());
    let ann = client.user("ann").await;
    let mut socket = client.socket(&ann).await;
    let stopped = tokio::task::spawn_blocking(move || server.terminate());
    assert_eq!(socket.closed().await.as_deref(), Some("shutdown"));
    assert!(
        stopped.await.unwrap(),
        "gochat exits with success on SIGTERM"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_socket_and_an_expired_token_are_kicked_with_their_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(
        dir.path(),
        &[
            ("GOCHAT_GATEWAY__HEARTBEAT", "300ms"),
            ("GOCHAT_GATEWAY__IDLE_TIMEOUT", "1s"),
            ("GOCHAT_LOGIC__ACCESS_TTL", "3s"),
        ],
    );
    let client = Client::new(server.announced.clone());
    let ann = client.user("ann").await;
    let mut silent = client.socket(&ann).await;
    let mut alive = client.socket(&ann).await;
    // The silent socket is not read, so it answers no ping; the live one is read (tungstenite
    // answers pings while reading) until the server closes it.
    let alive = tokio::spawn(async move { alive.closed().await });
    // The silent client cannot be made to read its kick frame without answering the pings
    // queued before it (tungstenite answers them first, and the write may hit the closed
    // connection), so the gateway's own count of kicks says why it was closed.
    let kicks = "gateway_kicks_total{reason=\"idle timeout\"} ";
    let deadline = tokio::time::Instant::now() + support::PATIENCE;
    while scrape(&server.announced, kicks).await != Some(1.0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no idle-timeout kick"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    silent.closed().await;
    assert_eq!(alive.await.unwrap().as_deref(), Some("token expired"));
}

/// The value of the series starting with `series` in the server's `/metrics`.
async fn scrape(base: &str, series: &str) -> Option<f64> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let line = text.lines().find(|l| l.starts_with(series))?;
    line.rsplit(' ').next()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrape_shows_the_gateways_series() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let client = Client::new(server.announced.clone());
    let ann = client.user("ann").await;
    let mut kicked = client.socket(&ann).await;
    kicked.send_text("x".repeat(70 * 1024)).await;
    assert_eq!(kicked.closed().await.as_deref(), Some("frame too large"));
    let _open = client.socket(&ann).await;

    let value = async |series: &str| {
        scrape(&server.announced, series)
            .await
            .unwrap_or_else(|| panic!("no {series} in the scrape"))
    };
    assert_eq!(value("gateway_connections ").await, 1.0);
    assert_eq!(value("gateway_connections_accepted_total ").await, 2.0);
    assert_eq!(
        value("gateway_kicks_total{reason=\"frame too large\"} ").await,
        1.0
    );
    assert!(
        value("gateway_frames_total{direction=\"in\"} ").await >= 3.0,
        "two pings and the big frame"
    );
    let logins =
        "http_server_requests_total{method=\"POST\",route=\"/api/v1/auth/login\",status=\"200\"} ";
    assert_eq!(value(logins).await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_with_retry_after_and_kick_abusive_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(
        dir.path(),
        &[
            ("GOCHAT_RATELIMIT__RULES__API__RATE", "1"),
            ("GOCHAT_RATELIMIT__RULES__API__PERIOD", "1m"),
            ("GOCHAT_RATELIMIT__RULES__API__BURST", "2"),
            ("GOCHAT_RATELIMIT__RULES__WS_FRAME__RATE", "1"),
            ("GOCHAT_RATELIMIT__RULES__WS_FRAME__PERIOD", "1m"),
            ("GOCHAT_RATELIMIT__RULES__WS_FRAME__BURST", "2"),
            ("GOCHAT_GATEWAY__ABUSE_LIMIT", "3"),
        ],
    );
    let client = Client::new(server.announced.clone());
    let ann = client.user("ann").await;
    for _ in 0..2 {
        assert_eq!(
            client.get("/api/v1/users/profile", &ann.access).await.0,
            200
        );
    }
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/users/profile", server.announced))
        .bearer_auth(&ann.access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], 1006);

    // The socket's ping is one frame of the two allowed; the next one is allowed, then three
    // refusals in a row kick it.
    let mut socket = client.socket(&ann).await;
    socket.send(serde_json::json!({"type": "ping"})).await;
    socket.expect("pong").await;
    for _ in 0..3 {
        socket.send(serde_json::json!({"type": "ping"})).await;
        let refused = socket.expect("error").await;
        assert_eq!(refused["data"]["code"], 1006);
    }
    assert_eq!(socket.closed().await.as_deref(), Some("rate limited"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_served_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let client = Client::new(server.announced.clone());
    let (status, api) = client
        .call(reqwest::Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(api["openapi"], "3.1.0");
    assert!(
        api["paths"]["/api/v1/messages/send"]["post"].is_object(),
        "{api}"
    );
}
