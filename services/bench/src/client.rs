//! Users and sockets: registration, login, conversations, WebSocket connections.

use std::time::Duration;

use futures_util::{StreamExt, stream};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

/// Reads `message` frames from `ws` until `expected` were kept or `stop`; `keep` turns a
/// message's content into what the scenario records (`None`: not one of its messages).
pub(crate) async fn receive<T>(
    ws: Ws,
    expected: usize,
    stop: tokio::time::Instant,
    keep: impl Fn(&str) -> Option<T>,
) -> Vec<T> {
    let (_sink, mut frames) = ws.split();
    let mut kept = Vec::with_capacity(expected);
    while kept.len() < expected {
        let frame = tokio::select! {
            frame = frames.next() => frame,
            () = tokio::time::sleep_until(stop) => break,
        };
        let Some(Ok(frame)) = frame else { break };
        if let Some(v) = json(&frame)
            && v["type"] == "message"
            && let Some(found) = v["data"]["content"].as_str().and_then(&keep)
        {
            kept.push(found);
        }
    }
    kept
}

/// A WebSocket to a gateway.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A logged-in user.
#[derive(Clone, Debug)]
pub(crate) struct User {
    pub(crate) id: String,
    pub(crate) token: String,
}

/// What every scenario sets up with.
pub(crate) struct Setup {
    http: reqwest::Client,
    /// Where senders connect.
    pub(crate) send_url: String,
    /// Where receivers connect.
    pub(crate) receive_url: String,
    concurrency: usize,
    run: u64,
}

impl Setup {
    pub(crate) fn new(urls: &[String], concurrency: usize) -> Self {
        let first = urls
            .first()
            .cloned()
            .unwrap_or_else(|| "http://127.0.0.1:8080".into());
        let last = urls.last().cloned().unwrap_or_else(|| first.clone());
        let run = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() % 1_000_000);
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap_or_default(),
            send_url: first,
            receive_url: last,
            concurrency: concurrency.max(1),
            run,
        }
    }

    /// `POST`s `body` with `token`; the JSON answer, or the status and body as an error.
    pub(crate) async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> Result<Value, String> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.send_url))
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("POST {path}: {e}"))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| format!("POST {path}: {e}"))?;
        if !status.is_success() {
            return Err(format!("POST {path}: {status} {text}"));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Registers and logs in `n` users named for this run and `tag`.
    pub(crate) async fn users(&self, tag: &str, n: usize) -> Result<Vec<User>, String> {
        let made = stream::iter(0..n)
            .map(|i| async move {
                let name = format!("b{}{tag}{i}", self.run);
                let body = json!({"username": name, "password": "bench password"});
                self.post("/api/v1/users/register", None, body.clone())
                    .await?;
                let pair = self.post("/api/v1/auth/login", None, body).await?;
                Ok::<_, String>(User {
                    id: pair["user"]["id"].as_str().unwrap_or_default().to_owned(),
                    token: pair["access_token"].as_str().unwrap_or_default().to_owned(),
                })
            })
            .buffered(self.concurrency)
            .collect::<Vec<_>>()
            .await;
        made.into_iter().collect()
    }

    /// Opens a socket of each `(user, url)`, several at a time.
    pub(crate) async fn sockets(&self, who: Vec<(User, String)>) -> Result<Vec<Ws>, String> {
        let opened = stream::iter(who)
            .map(|(user, url)| async move { connect(&url, &user.token).await })
            .buffered(self.concurrency)
            .collect::<Vec<_>>()
            .await;
        opened.into_iter().collect()
    }
}

/// A socket of the user with `token` to the gateway at `url`.
pub(crate) async fn connect(url: &str, token: &str) -> Result<Ws, String> {
    let ws_url = format!("{}/ws?token={token}", url.replacen("http", "ws", 1));
    tokio_tungstenite::connect_async(ws_url)
        .await
        .map(|(ws, _)| ws)
        .map_err(|e| format!("connect {url}: {e}"))
}

/// Microseconds since `origin`: how the bench stamps what it sends.
pub(crate) fn micros_since(origin: std::time::Instant) -> u64 {
    u64::try_from(origin.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// A text frame as JSON; `None` for other frames.
pub(crate) fn json(frame: &Message) -> Option<Value> {
    match frame {
        Message::Text(t) => serde_json::from_str(t.as_str()).ok(),
        _ => None,
    }
}
