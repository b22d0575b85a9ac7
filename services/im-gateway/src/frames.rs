//! WebSocket frames (CONTRACT.md): one JSON object per text frame, `{"type", "data"}`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::views::{AckJson, MessageJson};

/// A client frame as received; `data` is read by type.
#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Value,
}

/// What a client may send.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ClientFrame {
    /// A message to send.
    Message(SendData),
    /// A read pointer to move.
    Read(ReadData),
    /// A heartbeat.
    Ping,
}

/// A `message` frame's data: `conversation_id`, or `to_user_id` for a single chat.
#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendData {
    #[serde(default)]
    pub(crate) conversation_id: String,
    #[serde(default)]
    pub(crate) to_user_id: String,
    pub(crate) content: String,
    #[serde(default = "text")]
    pub(crate) message_type: String,
    pub(crate) client_msg_id: String,
}

fn text() -> String {
    "text".to_owned()
}

/// A `read` frame's data.
#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReadData {
    pub(crate) conversation_id: String,
    pub(crate) seq: i64,
}

impl ClientFrame {
    /// Parses a text frame, naming what is wrong with a bad one.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let raw: Raw =
            serde_json::from_str(text).map_err(|e| format!("not a JSON frame object: {e}"))?;
        let data = |what| move |e: serde_json::Error| format!("bad {what} frame data: {e}");
        match raw.kind.as_str() {
            "message" => {
                let send: SendData = serde_json::from_value(raw.data).map_err(data("message"))?;
                if send.conversation_id.is_empty() == send.to_user_id.is_empty() {
                    return Err(
                        "a message frame needs conversation_id or to_user_id (one of them)"
                            .to_owned(),
                    );
                }
                if send.client_msg_id.is_empty() {
                    return Err("a message frame needs a client_msg_id".to_owned());
                }
                Ok(Self::Message(send))
            }
            "read" => Ok(Self::Read(
                serde_json::from_value(raw.data).map_err(data("read"))?,
            )),
            "ping" => Ok(Self::Ping),
            other => Err(format!(
                "unknown frame type {other:?} (message, read or ping)"
            )),
        }
    }
}

/// What the server sends.
#[derive(Serialize)]
#[serde(tag = "type", content = "data", rename_all = "lowercase")]
pub(crate) enum ServerFrame {
    /// A message is stored.
    Ack(AckJson),
    /// A message for the user.
    Message(MessageJson),
    /// Someone read up to a seq.
    Read(ReadJson),
    /// A frame was refused.
    Error(ErrorJson),
    /// The answer to a ping.
    Pong,
    /// The socket is about to close.
    Kick(KickJson),
}

/// A read receipt.
#[derive(Serialize)]
pub(crate) struct ReadJson {
    pub(crate) conversation_id: String,
    pub(crate) user_id: String,
    pub(crate) seq: i64,
}

/// An error frame's data.
#[derive(Serialize)]
pub(crate) struct ErrorJson {
    pub(crate) code: i32,
    pub(crate) message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) client_msg_id: String,
}

/// Why the socket closes.
#[derive(Serialize)]
pub(crate) struct KickJson {
    pub(crate) reason: String,
}

impl ServerFrame {
    /// The frame as JSON text.
    pub(crate) fn text(&self) -> String {
        // Serialising these plain structs cannot fail (string keys, no maps of other keys).
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_parse_and_bad_ones_are_named() {
        let send = ClientFrame::parse(
            r#"{"type":"message","data":{"conversation_id":"7","content":"hi","message_type":"text","client_msg_id":"c1"}}"#,
        );
        assert!(matches!(send, Ok(ClientFrame::Message(ref s)) if s.conversation_id == "7"));
        let to = ClientFrame::parse(
            r#"{"type":"message","data":{"to_user_id":"9","content":"hi","client_msg_id":"c1"}}"#,
        );
        assert!(matches!(to, Ok(ClientFrame::Message(ref s)) if s.message_type == "text"));
        assert_eq!(
            ClientFrame::parse(r#"{"type":"ping"}"#),
            Ok(ClientFrame::Ping)
        );
        assert_eq!(
            ClientFrame::parse(r#"{"type":"read","data":{"conversation_id":"7","seq":3}}"#),
            Ok(ClientFrame::Read(ReadData {
                conversation_id: "7".into(),
                seq: 3
            }))
        );
        for (bad, says) in [
            ("nope", "not a JSON frame object"),
            (r#"{"type":"dance"}"#, "unknown frame type"),
            (
                r#"{"type":"read","data":{"seq":"x"}}"#,
                "bad read frame data",
            ),
            (
                r#"{"type":"message","data":{"content":"hi","client_msg_id":"c"}}"#,
                "conversation_id or to_user_id",
            ),
            (
                r#"{"type":"message","data":{"conversation_id":"1","content":"hi","client_msg_id":""}}"#,
                "client_msg_id",
            ),
        ] {
            let error = ClientFrame::parse(bad).expect_err(bad);
            assert!(error.contains(says), "{bad}: {error}");
        }
    }

    #[test]
    fn server_frames_have_the_contract_shape() {
        assert_eq!(ServerFrame::Pong.text(), r#"{"type":"pong"}"#);
        let kick = ServerFrame::Kick(KickJson {
            reason: "logout".into(),
        });
        assert_eq!(kick.text(), r#"{"type":"kick","data":{"reason":"logout"}}"#);
    }
}
