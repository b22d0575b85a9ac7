//! End-to-end test support: gochat processes, an HTTP client and WebSocket clients speaking
//! CONTRACT.md, and the scenarios both the standalone and the cluster tests run.

pub(crate) mod scenarios;
pub(crate) mod security;
pub(crate) mod sessions;

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

/// How long anything may take before a test gives up on it (a failure, never a measurement).
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// A running service process; killed when dropped.
pub(crate) struct Proc {
    child: Child,
    /// What its ready line announced (e.g. the HTTP address).
    pub(crate) announced: String,
}

impl Proc {
    /// Starts `bin` and waits for a stdout line starting with `ready`; the rest of that line
    /// is [`Proc::announced`].
    pub(crate) fn spawn(bin: &str, args: &[&str], envs: &[(String, String)], ready: &str) -> Proc {
        let mut child = Command::new(bin)
            .args(args)
            .envs(envs.iter().cloned())
            .env("GOCHAT_LOG__LEVEL", "info,gochat_mq=debug")
            .env("GOCHAT_LOG__FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{bin} did not start: {e}"));
        let stdout = child.stdout.take().unwrap();
        // Everything it prints goes to a file named in failures (logs at warn and above).
        let name = Path::new(bin)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let log_path =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}.log", child.id()));
        let mut log = std::fs::File::create(&log_path).unwrap();
        let (found, announced) = std::sync::mpsc::channel();
        let wanted = ready.to_owned();
        // Drains stdout for the process's whole life, so it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix(&wanted)
                    && let Some(found) = found.take()
                {
                    let _ = found.send(rest.trim().to_owned());
                }
                let _ = writeln!(log, "{line}");
            }
        });
        let Ok(announced) = announced.recv_timeout(Duration::from_secs(120)) else {
            let _ = child.kill();
            panic!(
                "{bin} {args:?} did not say {ready:?}; its output is in {}",
                log_path.display()
            );
        };
        Proc { child, announced }
    }

    /// SIGKILL: no clean-up of any kind.
    pub(crate) fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the process to exit; whether it exited with success.
    pub(crate) fn terminate(&mut self) -> bool {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid} failed");
        self.child.wait().is_ok_and(|s| s.success())
    }
}

impl Drop for Proc {
    /// Stops the process the way an operator would (SIGTERM: consumers leave their groups,
    /// registrations are withdrawn), so the shared engines are not left with a dead member's
    /// work; SIGKILL after 10 s.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let pid = self.child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            for _ in 0..100 {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `seq → message_id` of a history.
pub(crate) fn by_seq(history: &[Value]) -> BTreeMap<i64, String> {
    history
        .iter()
        .map(|m| {
            (
                m["seq"].as_i64().unwrap(),
                m["message_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Every acked message is stored under its seq, with its id: nothing acked was lost.
pub(crate) fn assert_acked_stored(acked: &BTreeMap<i64, String>, stored: &BTreeMap<i64, String>) {
    for (seq, id) in acked {
        assert_eq!(
            stored.get(seq),
            Some(id),
            "acked seq {seq} survives kill -9"
        );
    }
}

/// Names no other test (or earlier run against the same database) has used.
pub(crate) fn unique(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros()
        % 1_000_000_000;
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{tag}{n}_{nonce}")
}

/// An authenticated user.
#[derive(Clone, Debug)]
pub(crate) struct User {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) access: String,
    pub(crate) refresh: String,
}

/// An HTTP client of one gateway.
#[derive(Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    /// `http://host:port`.
    pub(crate) base: String,
}

impl Client {
    pub(crate) fn new(base: impl Into<String>) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(PATIENCE)
                .build()
                .unwrap(),
            base: base.into(),
        }
    }

    /// A raw request: status and JSON body (`null` when empty or not JSON).
    pub(crate) async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<reqwest::Body>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A JSON call.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let body = body.map(|b| reqwest::Body::from(b.to_string()));
        self.raw(method, path, token, body).await
    }

    pub(crate) async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub(crate) async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Registers `name` and logs in.
    pub(crate) async fn user(&self, tag: &str) -> User {
        let name = unique(tag);
        let (status, body) = self
            .post(
                "/api/v1/users/register",
                None,
                json!({"username": name, "password": "correct horse", "nickname": tag}),
            )
            .await;
        assert_eq!(status, 201, "register {name}: {body}");
        self.login(&name).await
    }

    pub(crate) async fn login(&self, name: &str) -> User {
        let (status, body) = self
            .post(
                "/api/v1/auth/login",
                None,
                json!({"username": name, "password": "correct horse"}),
            )
            .await;
        assert_eq!(status, 200, "login {name}: {body}");
        User {
            id: body["user"]["id"].as_str().unwrap().to_owned(),
            name: name.to_owned(),
            access: body["access_token"].as_str().unwrap().to_owned(),
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    /// Sends a message over HTTP; its ack.
    pub(crate) async fn send(&self, user: &User, conversation: &str, content: &str) -> Value {
        let (status, ack) = self
            .post(
                "/api/v1/messages/send",
                Some(&user.access),
                json!({
                    "conversation_id": conversation,
                    "content": content,
                    "message_type": "text",
                    "client_msg_id": unique("c"),
                }),
            )
            .await;
        assert_eq!(status, 200, "send: {ack}");
        ack
    }

    /// The whole history of a conversation (pages of 100, upwards).
    pub(crate) async fn history(&self, user: &User, conversation: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut after = 0;
        loop {
            let path = format!(
                "/api/v1/messages/history?conversation_id={conversation}&after_seq={after}&limit=100"
            );
            let (status, page) = self.get(&path, &user.access).await;
            assert_eq!(status, 200, "history: {page}");
            let messages = page["messages"].as_array().unwrap().clone();
            if let Some(last) = messages.last() {
                after = last["seq"].as_i64().unwrap();
            }
            all.extend(messages);
            if !page["has_more"].as_bool().unwrap() {
                return all;
            }
        }
    }

    /// The single chat of two users.
    pub(crate) async fn single(&self, a: &User, b: &User) -> String {
        let (status, body) = self
            .post(
                "/api/v1/conversations/create",
                Some(&a.access),
                json!({"peer_user_id": b.id}),
            )
            .await;
        assert_eq!(status, 200, "create conversation: {body}");
        body["conversation"]["id"].as_str().unwrap().to_owned()
    }

    /// Opens a socket.
    pub(crate) async fn socket(&self, user: &User) -> Socket {
        Socket::connect(&self.base, &user.access).await
    }
}

/// A WebSocket client.
pub(crate) struct Socket {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Socket {
    pub(crate) async fn connect(base: &str, token: &str) -> Socket {
        let url = format!("{}/ws?token={token}", base.replace("http://", "ws://"));
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut socket = Socket { ws };
        // A ping answered means the connection is registered (and its presence written).
        socket.send(json!({"type": "ping"})).await;
        socket.expect("pong").await;
        socket
    }

    pub(crate) async fn send(&mut self, frame: Value) {
        self.send_text(frame.to_string()).await;
    }

    pub(crate) async fn send_text(&mut self, text: String) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    /// Sends a message frame.
    pub(crate) async fn message(&mut self, conversation: &str, content: &str, client_msg_id: &str) {
        self.send(json!({"type": "message", "data": {
            "conversation_id": conversation, "content": content,
            "message_type": "text", "client_msg_id": client_msg_id,
        }}))
        .await;
    }

    /// The next JSON frame; `None` once the server closed the socket.
    pub(crate) async fn next(&mut self) -> Option<Value> {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("no frame within the test's patience");
            match frame {
                None | Some(Err(_) | Ok(Message::Close(_))) => return None,
                Some(Ok(Message::Text(text))) => {
                    return Some(serde_json::from_str(text.as_str()).unwrap());
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next frame of type `kind`, skipping others (read receipts, other messages).
    pub(crate) async fn expect(&mut self, kind: &str) -> Value {
        loop {
            let frame = self
                .next()
                .await
                .unwrap_or_else(|| panic!("the socket closed while waiting for {kind}"));
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// Waits for `n` ack frames; `seq → message_id` of each.
    pub(crate) async fn acks(&mut self, n: usize) -> BTreeMap<i64, String> {
        let mut acked = BTreeMap::new();
        while acked.len() < n {
            let ack = self.expect("ack").await;
            acked.insert(
                ack["data"]["seq"].as_i64().unwrap(),
                ack["data"]["message_id"].as_str().unwrap().to_owned(),
            );
        }
        acked
    }

    /// Waits for `n` message frames of `conversation`; their seqs in arrival order.
    pub(crate) async fn messages(&mut self, conversation: &str, n: usize) -> Vec<i64> {
        let mut seqs = Vec::new();
        while seqs.len() < n {
            let frame = self.expect("message").await;
            if frame["data"]["conversation_id"] == conversation {
                seqs.push(frame["data"]["seq"].as_i64().unwrap());
            }
        }
        seqs
    }

    /// Whether the server closes the socket (after whatever frames it sends first); the
    /// kick frame's reason, if one came.
    pub(crate) async fn closed(&mut self) -> Option<String> {
        let mut reason = None;
        while let Some(frame) = self.next().await {
            if frame["type"] == "kick" {
                reason = frame["data"]["reason"].as_str().map(str::to_owned);
            }
        }
        reason
    }
}
