//! The WebSocket path: gateways publish client message frames on `im-upstream`; im-logic
//! handles each like a send and answers the sender's connection through its gateway's topic
//! with an ack (once stored) or an error frame.

use gochat_mq::{HandlerError, Permanent, Received, Subscription};
use gochat_proto::{
    events::{AckFrame, Downstream, ErrorFrame, Upstream, downstream},
    prost::Message as _,
};

use crate::{Error, Logic};

/// The topic gateways publish client message frames on.
pub const UPSTREAM_TOPIC: &str = "im-upstream";

/// Partitions of `im-upstream` and `im-task` when a service creates them. Each partition is
/// handled in order, so this bounds the sends im-logic has in flight (they are stored in
/// group commits: more in flight, bigger batches); messages of one conversation share a
/// partition.
pub const TOPIC_PARTITIONS: u32 = 32;

/// The consumer group of im-logic instances on [`UPSTREAM_TOPIC`] (under the topic prefix).
pub const UPSTREAM_GROUP: &str = "im-logic";

impl Logic {
    /// Consumes the upstream topic ([`UPSTREAM_TOPIC`] under the configured prefix) until the subscription is shut down. A backend outage is
    /// retried by the consumer (then dead-lettered); a refused message is answered with an
    /// error frame.
    ///
    /// # Errors
    /// The bus failing to subscribe.
    pub async fn consume_upstream(&self) -> Result<Subscription, Error> {
        let logic = self.clone();
        let handler = move |message: Received| {
            let logic = logic.clone();
            async move { logic.handle_upstream(&message).await }
        };
        Ok(self
            .deps
            .mq
            .consumer(&self.router.topics().group(UPSTREAM_GROUP))
            .subscribe(&[self.router.topics().upstream().as_str()], handler)
            .await?)
    }

    async fn handle_upstream(&self, message: &Received) -> Result<(), HandlerError> {
        let upstream = Upstream::decode(message.value.as_ref())
            .map_err(|e| Permanent(format!("not an Upstream frame: {e}").into()))?;
        let send = upstream
            .send
            .ok_or_else(|| Permanent("an Upstream frame without a message".into()))?;
        let (gateway, sender, client_msg_id) = (
            send.gateway_id.clone(),
            send.user_id.clone(),
            send.client_msg_id.clone(),
        );
        let connection_id = upstream.connection_id;
        let frame = match self.send(send).await {
            Ok(ack) => downstream::Frame::Ack(AckFrame {
                connection_id,
                ack: Some(ack),
            }),
            Err(e) if e.is_temporary() => return Err(e.to_string().into()),
            Err(e) => {
                if e.code() == 1004 {
                    gochat_clog::error!(self.deps.log, error = %e, "a send failed");
                }
                downstream::Frame::Error(ErrorFrame {
                    connection_id,
                    code: e.code(),
                    message: e.public_message(),
                    client_msg_id,
                })
            }
        };
        if gateway.is_empty() {
            return Ok(());
        }
        let answer = Downstream {
            user_ids: vec![sender.clone()],
            frame: Some(frame),
        };
        self.router
            .publish(
                &self.router.topics().downstream(&gateway),
                &sender,
                answer.encode_to_vec(),
            )
            .await
            .map_err(|e| HandlerError::from(e.to_string()))
    }
}
