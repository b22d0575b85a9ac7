//! Entry points for the fuzz targets under `fuzz/` (docs/testing.md, "Fuzzing"): the parsers
//! that outside bytes reach, callable from outside the crate. Not part of the API.
//!
//! Each one is a thin wrapper that returns what it found instead of acting on it; none panics
//! on its own account, so a panic under the fuzzer is a bug in the code it wraps.
//!
//! ```
//! use im_gateway::fuzzing::parse_client_frame;
//!
//! assert!(parse_client_frame(br#"{"type":"ping"}"#).is_ok());
//! assert!(parse_client_frame(b"\xff").is_err());
//! ```

use gochat_proto::{
    events::{Downstream, downstream::Frame},
    prost::Message as _,
};

use crate::frames::{ClientFrame, ErrorJson, KickJson, ReadJson, ServerFrame};

/// Parses a client's WebSocket text frame as a connection does; `Err` says what is wrong.
/// Bytes that are not UTF-8 are refused first, as the socket refuses such a text frame.
#[doc(hidden)]
pub fn parse_client_frame(bytes: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    ClientFrame::parse(text).map(drop)
}

/// Decodes a payload of the gateway's downstream topic and renders the frame it would push, as
/// `Gateway::deliver` does; `None` when the bytes are no `Downstream` with a frame.
#[doc(hidden)]
pub fn render_downstream(bytes: &[u8]) -> Option<String> {
    let downstream = Downstream::decode(bytes).ok()?;
    let frame = match downstream.frame? {
        Frame::Message(m) => ServerFrame::Message(m.into()),
        Frame::Ack(a) => ServerFrame::Ack(a.ack?.into()),
        Frame::Read(r) => ServerFrame::Read(ReadJson {
            conversation_id: r.conversation_id,
            user_id: r.user_id,
            seq: r.seq,
        }),
        Frame::Error(e) => ServerFrame::Error(ErrorJson {
            code: e.code,
            message: e.message,
            client_msg_id: e.client_msg_id,
        }),
        Frame::Kick(k) => ServerFrame::Kick(KickJson { reason: k.reason }),
    };
    Some(frame.text())
}
