//! End-to-end: the `gochat` binary (all four services, one process, SQLite under its data
//! dir), driven through real HTTP and WebSocket clients.

mod support;

use std::{path::Path, time::Duration};

use support::{
    Client, Proc, assert_acked_stored, by_seq,
    scenarios::{self, Target},
    security, sessions,
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
        tokio::time::sleep(Duration::from_millis(100)).await;
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

// --- the gateway's edge: slow clients, connection and socket caps, tickets, headers -----------

/// Reads until the server closes the connection; what it sent. `None` when it is still open
/// after `within`.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, within: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    });
    read.await.ok()?;
    Some(String::from_utf8_lossy(&got).into_owned())
}

/// `host:port` of a base URL.
fn host_port(base: &str) -> &str {
    base.trim_start_matches("http://")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_whose_headers_never_finish_are_closed() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(dir.path(), &[("GOCHAT_GATEWAY__HEADER_READ_TIMEOUT", "1s")]);
    let addr = host_port(&server.announced).to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: gochat\r\nX-Slow: ")
        .await
        .unwrap();
    let mut silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let bound = Duration::from_secs(15);
    assert!(
        read_until_closed(&mut slow, bound).await.is_some(),
        "a request with unfinished headers is still open after {bound:?}"
    );
    assert!(
        read_until_closed(&mut silent, bound).await.is_some(),
        "a connection that sends nothing is still open after {bound:?}"
    );
    // Everyone else is served as before.
    let client = Client::new(server.announced.clone());
    let (status, _) = client
        .call(reqwest::Method::GET, "/healthz", None, None)
        .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_are_closed_at_once_and_come_back_when_others_leave() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(
        dir.path(),
        &[
            ("GOCHAT_GATEWAY__MAX_CONNECTIONS", "4"),
            ("GOCHAT_GATEWAY__HEADER_READ_TIMEOUT", "60s"),
        ],
    );
    let addr = host_port(&server.announced).to_owned();
    let mut hogs = Vec::new();
    for _ in 0..4 {
        hogs.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    let mut extra = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // The write may fail if the server already closed it; the read below tells.
    let _ = extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gochat\r\n\r\n")
        .await;
    let answer = read_until_closed(&mut extra, Duration::from_secs(15))
        .await
        .expect("a connection over the cap is closed quickly");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 503"),
        "{answer}"
    );
    if let Some((_, body)) = answer.split_once("\r\n\r\n") {
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["code"], 1004, "{body}");
    }
    drop(hogs);
    let client = Client::new(server.announced.clone());
    let deadline = tokio::time::Instant::now() + support::PATIENCE;
    let refused = "gateway_refused_total{limit=\"max_connections\"} ";
    while scrape(&server.announced, refused)
        .await
        .is_none_or(|n| n < 1.0)
    {
        assert!(tokio::time::Instant::now() < deadline, "not served again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _) = client
        .call(reqwest::Method::GET, "/healthz", None, None)
        .await;
    assert_eq!(status, 200);
}

/// An upgrade the gateway refuses: its status and error body.
async fn refused_upgrade(request: String) -> (u16, serde_json::Value, Option<String>) {
    use tokio_tungstenite::tungstenite::Error;
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => panic!("the upgrade was accepted"),
        Err(Error::Http(response)) => {
            let body = response.body().as_deref().unwrap_or_default();
            let retry = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            (
                response.status().as_u16(),
                serde_json::from_slice(body).unwrap_or_default(),
                retry,
            )
        }
        Err(e) => panic!("the upgrade failed without an answer: {e}"),
    }
}

fn ws_url(base: &str, query: &str) -> String {
    format!("{}/ws?{query}", base.replace("http://", "ws://"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_are_capped_per_user_and_per_client_address() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(
        dir.path(),
        &[
            ("GOCHAT_GATEWAY__MAX_SOCKETS_PER_USER", "2"),
            ("GOCHAT_GATEWAY__MAX_SOCKETS_PER_ADDR", "3"),
        ],
    );
    let client = Client::new(server.announced.clone());
    let ann = client.user("ann").await;
    let bob = client.user("bob").await;
    let mut ann_sockets = vec![client.socket(&ann).await, client.socket(&ann).await];
    let (status, body, retry) =
        refused_upgrade(ws_url(&client.base, &format!("token={}", ann.access))).await;
    assert_eq!((status, body["code"].as_i64()), (429, Some(1006)), "{body}");
    assert!(body["message"].as_str().unwrap().contains("user"), "{body}");
    assert!(retry.is_some(), "a 429 says when to retry");

    let _bob = client.socket(&bob).await;
    let (status, body, _) =
        refused_upgrade(ws_url(&client.base, &format!("token={}", bob.access))).await;
    assert_eq!((status, body["code"].as_i64()), (429, Some(1006)), "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("address"),
        "{body}"
    );

    // Another address has its own count.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let stream = socket
        .connect(host_port(&client.base).parse().unwrap())
        .await
        .unwrap();
    let url = ws_url(&client.base, &format!("token={}", bob.access));
    let (mut elsewhere, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    elsewhere
        .send(Message::text(r#"{"type":"ping"}"#))
        .await
        .unwrap();
    loop {
        match elsewhere.next().await {
            Some(Ok(Message::Text(text))) if text.contains("pong") => break,
            Some(Ok(_)) => {}
            other => panic!("no pong from the other address: {other:?}"),
        }
    }

    // A closed socket gives its places back.
    ann_sockets.pop();
    let deadline = tokio::time::Instant::now() + support::PATIENCE;
    loop {
        let url = ws_url(&client.base, &format!("token={}", ann.access));
        if tokio_tungstenite::connect_async(url).await.is_ok() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the place never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = async |limit: &str| {
        let series = format!("gateway_refused_total{{limit=\"{limit}\"}} ");
        scrape(&server.announced, &series).await
    };
    assert_eq!(refused("max_sockets_per_user").await, Some(1.0));
    assert!(refused("max_sockets_per_addr").await >= Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_silent_after_its_upgrade_is_closed_and_a_live_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(dir.path(), &[("GOCHAT_GATEWAY__HANDSHAKE_TIMEOUT", "1s")]);
    let client = Client::new(server.announced.clone());
    let ann = client.user("ann").await;
    let url = ws_url(&client.base, &format!("token={}", ann.access));
    // Never read, so it never answers the gateway's first ping.
    let (mut silent, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    // Read (answering pings) but sends nothing of its own for a while.
    let url = ws_url(&client.base, &format!("token={}", ann.access));
    let (passive, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let (mut passive_tx, mut passive_rx) = futures_util::StreamExt::split(passive);
    let (frames_tx, mut frames) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(frame)) = futures_util::StreamExt::next(&mut passive_rx).await {
            if frames_tx.send(frame).is_err() {
                return;
            }
        }
    });
    let kicks = "gateway_kicks_total{reason=\"handshake timeout\"} ";
    let deadline = tokio::time::Instant::now() + support::PATIENCE;
    while scrape(&server.announced, kicks).await != Some(1.0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no handshake-timeout kick"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let closed = tokio::time::timeout(support::PATIENCE, async {
        while let Some(Ok(_)) = futures_util::StreamExt::next(&mut silent).await {}
    });
    assert!(closed.await.is_ok(), "the silent socket was not closed");
    // Well past the timeout, the passive socket still answers.
    tokio::time::sleep(Duration::from_secs(2)).await;
    futures_util::SinkExt::send(
        &mut passive_tx,
        tokio_tungstenite::tungstenite::Message::text(r#"{"type":"ping"}"#),
    )
    .await
    .unwrap();
    loop {
        let frame = tokio::time::timeout(support::PATIENCE, frames.recv())
            .await
            .expect("no pong")
            .expect("the passive socket was closed");
        if frame.to_text().unwrap_or_default().contains("pong") {
            break;
        }
    }
    assert_eq!(scrape(&server.announced, kicks).await, Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_over_the_gateways_limit_is_refused_there_and_never_queued() {
    let dir = tempfile::tempdir().unwrap();
    // im-logic would take up to 4 KiB: a refusal of 200 bytes can only be the gateway's.
    let server = start_with(dir.path(), &[("GOCHAT_GATEWAY__MAX_CONTENT_BYTES", "100")]);
    let client = Client::new(server.announced.clone());
    let ann = client.user("ann").await;
    let bob = client.user("bob").await;
    let conversation = client.single(&ann, &bob).await;
    let mut socket = client.socket(&ann).await;
    socket.message(&conversation, &"x".repeat(200), "big").await;
    let refused = socket.expect("error").await;
    assert_eq!(refused["data"]["code"], 1001, "{refused}");
    assert_eq!(refused["data"]["client_msg_id"], "big", "{refused}");
    assert!(
        refused["data"]["message"].as_str().unwrap().contains("100"),
        "{refused}"
    );
    // The socket stays open and a small message goes through, as the first of the chat.
    socket
        .message(&conversation, &"y".repeat(100), "small")
        .await;
    let ack = socket.expect("ack").await;
    assert_eq!(ack["data"]["client_msg_id"], "small", "{ack}");
    assert_eq!(ack["data"]["seq"], 1, "{ack}");
    let history = client.history(&ann, &conversation).await;
    assert_eq!(history.len(), 1, "{history:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ws_ticket_opens_one_socket_once_and_tokens_still_work() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let client = Client::new(server.announced.clone());
    let ann = client.user("ann").await;
    let (status, body) = client
        .call(reqwest::Method::POST, "/api/v1/ws/ticket", None, None)
        .await;
    assert_eq!((status, body["code"].as_i64()), (401, Some(1002)), "{body}");
    let (status, body) = client
        .call(
            reqwest::Method::POST,
            "/api/v1/ws/ticket",
            Some(&ann.access),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], 30, "{body}");
    let ticket = body["ticket"].as_str().unwrap().to_owned();
    assert!(ticket.len() >= 32 && !ticket.contains(&ann.access));

    let (mut ws, _) =
        tokio_tungstenite::connect_async(ws_url(&client.base, &format!("ticket={ticket}")))
            .await
            .unwrap();
    ws.send(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) if text.contains("pong") => break,
            Some(Ok(_)) => {}
            other => panic!("no pong over the ticket's socket: {other:?}"),
        }
    }
    for query in [
        format!("ticket={ticket}"),
        "ticket=00000000000000000000000000000000".to_owned(),
        "ticket=nonsense".to_owned(),
    ] {
        let (status, body, _) = refused_upgrade(ws_url(&client.base, &query)).await;
        assert_eq!(
            (status, body["code"].as_i64()),
            (401, Some(1002)),
            "{query}: {body}"
        );
    }
    // ?token= and the Authorization header still open sockets (CONTRACT.md).
    let _by_token = client.socket(&ann).await;
    let mut request = ws_url(&client.base, "").into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", ann.access).parse().unwrap(),
    );
    assert!(tokio_tungstenite::connect_async(request).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_every_answer_carry_the_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let http = reqwest::Client::new();
    for path in [
        "/",
        "/app.js",
        "/style.css",
        "/api/v1/openapi.json",
        "/healthz",
        "/nowhere",
    ] {
        let response = http
            .get(format!("{}{path}", server.announced))
            .send()
            .await
            .unwrap();
        let headers = response.headers();
        let csp = headers
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("{path}: no Content-Security-Policy"))
            .to_str()
            .unwrap();
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        if path == "/" {
            let page = response.text().await.unwrap();
            // Nothing inline for the policy to block: scripts come from files, no handlers.
            assert!(!page.contains("<script>"), "an inline script");
            for handler in ["onclick=", "onload=", "onsubmit=", "oninput=", "style=\""] {
                assert!(!page.contains(handler), "inline {handler} in the page");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_controls_hold_from_outside() {
    with_gochat(async |t: &Target| {
        security::usernames_are_normalised(t).await;
        security::refresh_reuse_ends_the_session(t).await;
        security::resends_are_acked_not_routed(t).await;
        security::world_is_limited(t).await;
        security::group_removal_bans_and_history_starts_at_join(t).await;
        security::reads_are_clamped_and_fields_bounded(t).await;
        // Last: it spends the address's registrations.
        security::register_floods_are_refused(t).await;
    })
    .await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_dir_and_its_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(&data);
    let client = Client::new(server.announced.clone());
    client.user("ann").await;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("jwt_secret")), 0o600);
    assert_eq!(mode(&data.join("gochat.db")), 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversation_lists_are_paged_and_group_adds_capped() {
    with_gochat(scenarios::conversation_lists_are_paged).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_session_closes_every_socket_even_one_racing_the_logout() {
    with_gochat(async |t: &Target| {
        sessions::logout_closes_every_socket_of_the_session(t).await;
        sessions::a_frame_of_an_ended_session_is_kicked(t).await;
        sessions::refresh_reuse_closes_the_sessions_sockets(t).await;
        sessions::sockets_racing_a_logout_all_close(t, 20).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_outlives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let client = Client::new(server.announced.clone());
    let ann = client.user("ann").await;
    let bob = client.user("bob").await;
    let (status, _) = client
        .post(
            "/api/v1/auth/logout",
            Some(&ann.access),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = client.get("/api/v1/users/profile", &ann.access).await;
    assert_eq!(status, 401);
    server.kill9();

    let mut server = start(dir.path());
    let client = Client::new(server.announced.clone());
    let (status, body) = client.get("/api/v1/users/profile", &ann.access).await;
    assert_eq!(status, 401, "a logged-out token after kill -9: {body}");
    let (status, body) = client
        .post(
            "/api/v1/auth/refresh",
            None,
            serde_json::json!({"refresh_token": ann.refresh}),
        )
        .await;
    assert_eq!(status, 401, "its refresh token after kill -9: {body}");
    let (status, body) = client.get("/api/v1/users/profile", &bob.access).await;
    assert_eq!(status, 200, "a live session survives the restart: {body}");
    let (status, _) = client
        .post(
            "/api/v1/auth/logout",
            Some(&bob.access),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 204);
    assert!(server.terminate(), "gochat exits with success on SIGTERM");

    let server = start(dir.path());
    let client = Client::new(server.announced.clone());
    for user in [&ann, &bob] {
        let (status, body) = client.get("/api/v1/users/profile", &user.access).await;
        assert_eq!(status, 401, "after SIGTERM and a second restart: {body}");
    }
    let mut socket = tokio_tungstenite::connect_async(format!(
        "{}/ws?token={}",
        client.base.replace("http://", "ws://"),
        ann.access
    ))
    .await;
    assert!(
        matches!(&mut socket, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 401),
        "a socket of a logged-out session is refused after a restart"
    );
}
