//! What im-logic and im-task route to this gateway, on its own `im-downstream-{gateway_id}`
//! topic, turned into frames for the connections it names.

use axum::extract::ws::Utf8Bytes;
use gochat_mq::{HandlerError, Permanent, Received};
use gochat_proto::{
    events::{Downstream, downstream::Frame},
    prost::Message as _,
};

use crate::{
    Gateway,
    frames::{ErrorJson, ReadJson, ServerFrame},
    registry::reason,
};

impl Gateway {
    /// Delivers one downstream message: its frame, then those it carries in `more`.
    pub(crate) fn deliver(&self, message: &Received) -> Result<(), HandlerError> {
        let mut downstream = Downstream::decode(message.value.as_ref())
            .map_err(|e| Permanent(format!("not a Downstream message: {e}").into()))?;
        let more = std::mem::take(&mut downstream.more);
        if downstream.frame.is_none() && more.is_empty() {
            return Err(Permanent("a Downstream message without a frame".into()).into());
        }
        for one in std::iter::once(downstream).chain(more) {
            self.push(one);
        }
        Ok(())
    }

    /// Pushes one delivery's frame to the connections it names.
    fn push(&self, downstream: Downstream) {
        let registry = &self.inner.registry;
        let text = |frame: ServerFrame| Utf8Bytes::from(frame.text());
        match downstream.frame {
            Some(Frame::Message(m)) => {
                let frame = text(ServerFrame::Message(m.into()));
                for conn in registry.of_users(&downstream.user_ids) {
                    conn.push(frame.clone());
                }
            }
            Some(Frame::Ack(ack)) => {
                if let (Some(conn), Some(a)) = (registry.get(&ack.connection_id), ack.ack) {
                    conn.push(text(ServerFrame::Ack(a.into())));
                }
            }
            Some(Frame::Error(e)) => {
                if let Some(conn) = registry.get(&e.connection_id) {
                    conn.push(text(ServerFrame::Error(ErrorJson {
                        code: e.code,
                        message: e.message,
                        client_msg_id: e.client_msg_id,
                    })));
                }
            }
            Some(Frame::Read(r)) => {
                let except = r.except_connection_id;
                let frame = text(ServerFrame::Read(ReadJson {
                    conversation_id: r.conversation_id,
                    user_id: r.user_id,
                    seq: r.seq,
                }));
                for conn in registry.of_users(&downstream.user_ids) {
                    if conn.id != except {
                        conn.push(frame.clone());
                    }
                }
            }
            Some(Frame::Kick(k)) => {
                // An ended session is remembered first, so a socket of it registered after
                // this loop finds it there.
                if k.revoked_until_ms > 0 && !k.token_id.is_empty() {
                    registry.end_session(&k.token_id, k.revoked_until_ms);
                }
                // Only sockets opened with the named session; every socket when it names none.
                for conn in registry.of_users(&downstream.user_ids) {
                    if k.token_id.is_empty() || conn.session_id == k.token_id {
                        let label = match k.reason.as_str() {
                            reason::LOGOUT => reason::LOGOUT,
                            reason::SHUTDOWN => reason::SHUTDOWN,
                            _ => reason::OTHER,
                        };
                        conn.kick_as(label, k.reason.clone());
                    }
                }
            }
            None => {}
        }
    }
}
