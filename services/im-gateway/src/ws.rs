//! WebSocket connections: authenticate, register, read client frames, write the queue.
//!
//! Each connection has two halves: this reader (the upgraded request's task) and a writer
//! task draining the connection's bounded queue, pinging every heartbeat and kicking when
//! the access token runs out. Either half ending ends the other.

use std::{
    sync::{Arc, atomic::Ordering::Relaxed},
    time::Duration,
};

use axum::{
    body::Bytes,
    extract::{
        Query, State,
        rejection::QueryRejection,
        ws::{
            CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade,
            rejection::WebSocketUpgradeRejection,
        },
    },
    http::HeaderMap,
    response::Response,
};
use futures_util::{
    SinkExt, StreamExt,
    stream::{SplitSink, SplitStream},
};
use gochat_proto::{
    events::Upstream,
    logic::{MarkReadRequest, SendMessageRequest, Session},
    prost::Message as _,
};
use serde::Deserialize;
use tokio::{
    sync::mpsc,
    time::{Instant, interval, sleep_until, timeout},
};
use tonic::Request;

use crate::{
    ApiError, Gateway, WS_FRAME_RULE,
    error::code::{INTERNAL, INVALID, RATE_LIMITED, UNAUTHORIZED},
    extract::{ClientAddr, bearer},
    frames::{ClientFrame, ErrorJson, KickJson, SendData, ServerFrame},
    limits::Slot,
    registry::{Conn, reason},
};

/// The initial read buffer of a socket.
const READ_BUFFER: usize = 1024;

/// `GET /ws?ticket=` (from `POST /api/v1/ws/ticket`) or `GET /ws?token=`.
#[derive(Deserialize)]
pub(crate) struct WsQuery {
    token: Option<String>,
    ticket: Option<String>,
}

/// A refused upgrade: 1006 with a wait of a second (sockets close all the time).
fn over_cap(message: String) -> ApiError {
    ApiError {
        retry_after: Some(Duration::from_secs(1)),
        ..ApiError::new(RATE_LIMITED, message)
    }
}

/// An error frame.
fn error(code: i32, message: impl Into<String>, client_msg_id: String) -> Utf8Bytes {
    let frame = ServerFrame::Error(ErrorJson {
        code,
        message: message.into(),
        client_msg_id,
    });
    Utf8Bytes::from(frame.text())
}

/// Upgrades an authenticated request to a WebSocket, within the caps on sockets per client
/// address and per user.
pub(crate) async fn upgrade(
    State(gateway): State<Gateway>,
    ClientAddr(addr): ClientAddr,
    query: Result<Query<WsQuery>, QueryRejection>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let ws = ws.map_err(|e| ApiError::invalid(e.body_text()))?;
    if gateway.is_stopping() {
        return Err(ApiError::new(INTERNAL, "the gateway is shutting down"));
    }
    let config = &gateway.inner.config;
    let counters = &gateway.inner.counters;
    // The address first: it costs no call to im-logic.
    let Some(mut slot) = gateway
        .inner
        .sockets
        .take_addr(addr, config.max_sockets_per_addr)
    else {
        counters.refused_addr.fetch_add(1, Relaxed);
        return Err(over_cap(format!(
            "too many sockets from this address (at most {})",
            config.max_sockets_per_addr
        )));
    };
    let query = query.ok().map(|Query(q)| q);
    let token = match query {
        Some(WsQuery {
            ticket: Some(ticket),
            ..
        }) => gateway.redeem_ticket(&ticket).await?,
        Some(WsQuery {
            token: Some(token), ..
        }) => token,
        _ => bearer(&headers).map(str::to_owned).ok_or_else(|| {
            ApiError::unauthorized(
                "a ticket or token is needed: ?ticket=, ?token= or Authorization: Bearer",
            )
        })?,
    };
    let session = gateway.session(&token).await?;
    if !slot.take_user(&session.user_id, config.max_sockets_per_user) {
        counters.refused_user.fetch_add(1, Relaxed);
        return Err(over_cap(format!(
            "too many sockets of this user (at most {})",
            config.max_sockets_per_user
        )));
    }
    // Frames up to the configured limit are read (a larger one is answered and kicked);
    // far larger ones are cut off by the protocol layer before they are buffered whole.
    let hard = gateway
        .inner
        .config
        .max_frame_bytes
        .saturating_mul(4)
        .max(1 << 20);
    // Small buffers: an idle socket should cost kilobytes, not the 128 KiB the protocol
    // layer reads into by default; a large frame grows them while it is read.
    Ok(ws
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(hard)
        .max_frame_size(hard)
        .on_upgrade(move |socket| gateway.connection(socket, token, session, slot)))
}

/// Sends within `budget`; false when the client is gone or too slow to take it.
async fn send(
    sink: &mut SplitSink<WebSocket, Message>,
    message: Message,
    budget: Duration,
) -> bool {
    matches!(timeout(budget, sink.send(message)).await, Ok(Ok(())))
}

/// The writer half: the queue, heartbeats, token expiry, and the kick frame at the end.
async fn write(
    mut sink: SplitSink<WebSocket, Message>,
    mut frames: mpsc::Receiver<Utf8Bytes>,
    conn: Arc<Conn>,
    heartbeat: Duration,
    expires: Instant,
) {
    // A write that takes longer than a heartbeat means the client is not reading.
    let budget = heartbeat;
    // The first ping goes out at once: a live client's automatic pong is its first frame,
    // within the handshake timeout even when it has nothing to say.
    let mut ping = interval(heartbeat);
    let expiry = sleep_until(expires);
    tokio::pin!(expiry);
    loop {
        tokio::select! {
            biased;
            () = conn.done().cancelled() => break,
            () = &mut expiry => {
                conn.kick(reason::EXPIRED);
                break;
            }
            frame = frames.recv() => {
                let Some(frame) = frame else { break };
                if !send(&mut sink, Message::Text(frame), budget).await {
                    conn.end();
                    return;
                }
            }
            _ = ping.tick() => {
                if !send(&mut sink, Message::Ping(Bytes::new()), budget).await {
                    conn.end();
                    return;
                }
            }
        }
    }
    let close = match conn.kick_reason() {
        Some(why) => {
            // What was queued before the kick (the error frame saying why) goes first, unless
            // the client is the reason the queue is full.
            if why != reason::SLOW {
                while let Ok(frame) = frames.try_recv() {
                    if !send(&mut sink, Message::Text(frame), budget).await {
                        return;
                    }
                }
            }
            let kick = ServerFrame::Kick(KickJson {
                reason: why.to_owned(),
            });
            if !send(&mut sink, Message::Text(kick.text().into()), budget).await {
                return;
            }
            CloseFrame {
                code: if why == reason::SHUTDOWN { 1001 } else { 1000 },
                reason: Utf8Bytes::from(why.chars().take(100).collect::<String>()),
            }
        }
        None => CloseFrame {
            code: 1000,
            reason: Utf8Bytes::from_static(""),
        },
    };
    if send(&mut sink, Message::Close(Some(close)), budget).await {
        let _ = timeout(budget, sink.close()).await;
    }
}

/// How long a closing socket waits for the client's close frame.
const LINGER: Duration = Duration::from_secs(2);

/// How long until `expires_at_ms` (Unix ms).
fn until(expires_at_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(expires_at_ms - gochat_proto::now_ms()).unwrap_or(0))
}

/// The partition key of a single chat named by its two users: the same for both.
fn pair_key(a: &str, b: &str) -> String {
    if a < b {
        format!("{a}:{b}")
    } else {
        format!("{b}:{a}")
    }
}

impl Gateway {
    /// One connection, from upgrade to close; its place under the socket caps is given back
    /// when it ends.
    async fn connection(self, socket: WebSocket, token: String, session: Session, slot: Slot) {
        let inner = &self.inner;
        let id = format!("{}-{}", inner.id, inner.next_conn.fetch_add(1, Relaxed));
        let (conn, frames) = Conn::new(
            id,
            session.user_id,
            session.token_id,
            inner.config.send_queue,
            inner.counters.clone(),
        );
        inner.counters.accepted.fetch_add(1, Relaxed);
        inner.registry.add(conn.clone());
        // Every connection writes its presence (not only a user's first here: that one's
        // write may still be under way), then checks its session again: a logout after the
        // upgrade's check either finds this gateway in the presence and kicks the socket, or
        // is found by this check.
        self.mark_online(&conn.user_id).await;
        Box::pin(self.recheck(&conn, token, session.expires_at_ms)).await;
        // Registered after a shutdown swept the registry: kick it too.
        if self.is_stopping() {
            conn.kick(reason::SHUTDOWN);
        }
        let (sink, mut stream) = socket.split();
        let expires = Instant::now() + until(session.expires_at_ms);
        let writer = tokio::spawn(write(
            sink,
            frames,
            conn.clone(),
            inner.config.heartbeat,
            expires,
        ));
        self.read(&mut stream, &conn).await;
        conn.end();
        if inner.registry.remove(&conn) {
            self.mark_offline(&conn.user_id).await;
        }
        // Reads on while the writer sends the kick and the close frame, until the client's
        // close: a socket dropped with unread client frames is reset, and a reset loses the
        // kick frame still on its way to the client.
        let drain = async {
            while let Some(Ok(message)) = stream.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        };
        let _ = timeout(LINGER, drain).await;
        let _ = writer.await;
        drop(slot);
    }

    /// Kicks a just registered connection whose session ended after the upgrade checked it:
    /// one this gateway was told of, or one im-logic now refuses. im-logic out of reach lets
    /// it be (the upgrade checked it a moment ago).
    async fn recheck(&self, conn: &Conn, token: String, expires_at_ms: i64) {
        if self.inner.registry.has_ended(&conn.session_id) {
            conn.kick(reason::LOGOUT);
            return;
        }
        match self.session(&token).await {
            Ok(_) => {}
            Err(e) if e.code == UNAUTHORIZED => {
                conn.kick(if until(expires_at_ms).is_zero() {
                    reason::EXPIRED
                } else {
                    reason::LOGOUT
                });
            }
            Err(e) => self.inner.deps.log.warn(format!(
                "im-gateway: a new socket's session was not checked again: {}",
                e.message
            )),
        }
    }

    /// The reader half: client frames until the client leaves, goes quiet or is kicked. The
    /// first frame (a pong counts) must come within the handshake timeout, each next one within
    /// the idle timeout. Every frame of a session this gateway was told has ended gets the
    /// socket kicked instead.
    async fn read(&self, stream: &mut SplitStream<WebSocket>, conn: &Conn) {
        let config = &self.inner.config;
        let mut wait = (config.handshake_timeout, reason::HANDSHAKE);
        let mut denied = 0;
        loop {
            let next = tokio::select! {
                () = conn.done().cancelled() => return,
                next = timeout(wait.0, stream.next()) => next,
            };
            let message = match next {
                Err(_) => {
                    conn.kick(wait.1);
                    return;
                }
                Ok(None | Some(Err(_))) => return,
                Ok(Some(Ok(message))) => message,
            };
            wait = (config.idle_timeout, reason::IDLE);
            if self.inner.registry.has_ended(&conn.session_id) {
                conn.kick(reason::LOGOUT);
                return;
            }
            match message {
                Message::Text(text) => {
                    self.inner.counters.frames_in.fetch_add(1, Relaxed);
                    self.frame(conn, text.as_str(), &mut denied).await;
                }
                Message::Binary(_) => {
                    conn.push(error(INVALID, "frames are JSON text", String::new()));
                }
                Message::Close(_) => return,
                // Any frame, pongs included, is a sign of life.
                Message::Ping(_) | Message::Pong(_) => {}
            }
        }
    }

    /// One client text frame.
    async fn frame(&self, conn: &Conn, text: &str, denied: &mut u32) {
        let config = &self.inner.config;
        if text.len() > config.max_frame_bytes {
            let why = format!(
                "a frame of {} bytes is over the limit of {}",
                text.len(),
                config.max_frame_bytes
            );
            conn.push(error(INVALID, why, String::new()));
            conn.kick(reason::TOO_LARGE);
            return;
        }
        if let Err(e) = self.limit(&conn.user_id, WS_FRAME_RULE).await {
            *denied += 1;
            conn.push(error(e.code, e.message, String::new()));
            if *denied >= config.abuse_limit {
                conn.kick(reason::RATE_LIMITED);
            }
            return;
        }
        *denied = 0;
        match ClientFrame::parse(text) {
            Err(why) => {
                conn.push(error(INVALID, why, String::new()));
            }
            Ok(ClientFrame::Ping) => {
                conn.push(Utf8Bytes::from(ServerFrame::Pong.text()));
            }
            Ok(ClientFrame::Read(read)) => {
                let call = self.logic().mark_read(Request::new(MarkReadRequest {
                    user_id: conn.user_id.clone(),
                    conversation_id: read.conversation_id,
                    seq: read.seq,
                    connection_id: conn.id.clone(),
                }));
                if let Err(status) = call.await {
                    let e = ApiError::from(status);
                    conn.push(error(e.code, e.message, String::new()));
                }
            }
            Ok(ClientFrame::Message(send)) if send.content.len() > config.max_content_bytes => {
                let why = format!(
                    "content of {} bytes is over the limit of {}",
                    send.content.len(),
                    config.max_content_bytes
                );
                conn.push(error(INVALID, why, send.client_msg_id));
            }
            Ok(ClientFrame::Message(send)) => self.publish(conn, send).await,
        }
    }

    /// Hands a message frame to im-logic on `im-upstream`; the ack or error comes back on
    /// this gateway's downstream topic.
    async fn publish(&self, conn: &Conn, send: SendData) {
        let key = if send.conversation_id.is_empty() {
            pair_key(&conn.user_id, &send.to_user_id)
        } else {
            send.conversation_id.clone()
        };
        let client_msg_id = send.client_msg_id.clone();
        let upstream = Upstream {
            send: Some(SendMessageRequest {
                user_id: conn.user_id.clone(),
                conversation_id: send.conversation_id,
                to_user_id: send.to_user_id,
                content: send.content,
                message_type: send.message_type,
                client_msg_id: send.client_msg_id,
                gateway_id: self.inner.id.clone(),
            }),
            connection_id: conn.id.clone(),
        };
        let message =
            gochat_mq::Message::new(self.inner.upstream.clone(), upstream.encode_to_vec()).key(key);
        if let Err(e) = Box::pin(self.inner.producer.send(message)).await {
            self.inner
                .deps
                .log
                .warn(format!("im-gateway: a message frame was not queued: {e}"));
            conn.push(error(
                INTERNAL,
                "the message could not be queued; resend it",
                client_msg_id,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_users_of_a_single_chat_share_its_partition_key() {
        assert_eq!(pair_key("7", "3"), pair_key("3", "7"));
        assert_ne!(pair_key("7", "3"), pair_key("7", "4"));
    }

    #[test]
    fn an_expiry_in_the_past_is_now() {
        assert_eq!(until(0), Duration::ZERO);
        assert!(until(gochat_proto::now_ms() + 60_000) > Duration::from_secs(50));
    }
}
