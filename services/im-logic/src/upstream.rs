//! The WebSocket path: gateways publish client message frames on `im-upstream`; im-logic
//! handles each like a send and answers the sender's connection through its gateway's topic
//! with an ack (once stored) or an error frame.

use std::collections::BTreeMap;

use gochat_mq::{HandlerError, Permanent, Received, Subscription};
use gochat_proto::{
    events::{AckFrame, Downstream, ErrorFrame, Upstream, downstream},
    prost::Message as _,
};

use crate::{Error, Logic, route::bundle};

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
    /// Consumes the upstream topic ([`UPSTREAM_TOPIC`] under the configured prefix) until the
    /// subscription is shut down, a partition's waiting frames at a time: their sends checked
    /// together, stored in one pass in their order, their answers published together. A
    /// backend outage is retried by the consumer (then dead-lettered); a refused message is
    /// answered with an error frame.
    ///
    /// # Errors
    /// The bus failing to subscribe.
    pub async fn consume_upstream(&self) -> Result<Subscription, Error> {
        let logic = self.clone();
        let handler = move |batch: Vec<Received>| {
            let logic = logic.clone();
            async move { logic.handle_upstream(batch).await }
        };
        Ok(self
            .deps
            .mq
            .consumer(&self.router.topics().group(UPSTREAM_GROUP))
            .subscribe_batch(&[self.router.topics().upstream().as_str()], handler)
            .await?)
    }

    async fn handle_upstream(&self, batch: Vec<Received>) -> Result<(), HandlerError> {
        let mut sends = Vec::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        for message in &batch {
            let upstream = Upstream::decode(message.value.as_ref())
                .map_err(|e| Permanent(format!("not an Upstream frame: {e}").into()))?;
            let send = upstream
                .send
                .ok_or_else(|| Permanent("an Upstream frame without a message".into()))?;
            replies.push((
                upstream.connection_id,
                send.gateway_id.clone(),
                send.user_id.clone(),
                send.client_msg_id.clone(),
            ));
            sends.push(send);
        }
        // Records of the batch go out under its first upstream key: one downstream partition
        // of each gateway, the one its conversations' other deliveries take.
        let key = batch
            .first()
            .and_then(Received::key_str)
            .unwrap_or_default()
            .to_owned();
        let results = self
            .send_batch(sends, &key)
            .await
            .map_err(|e| HandlerError::from(e.to_string()))?;
        let mut temporary = None;
        let mut answers: BTreeMap<String, Vec<Downstream>> = BTreeMap::new();
        for ((connection_id, gateway, sender, client_msg_id), result) in
            replies.into_iter().zip(results)
        {
            let frame = match result {
                Ok(ack) => downstream::Frame::Ack(AckFrame {
                    connection_id,
                    ack: Some(ack),
                }),
                // Not stored: the batch is tried again (what was stored comes back as resent).
                Err(e) if e.is_temporary() => {
                    temporary = Some(e);
                    continue;
                }
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
                continue;
            }
            answers.entry(gateway).or_default().push(Downstream {
                user_ids: vec![sender],
                frame: Some(frame),
                more: Vec::new(),
            });
        }
        // One record per gateway carrying all its answers.
        let records = answers
            .into_iter()
            .map(|(gateway, downs)| {
                let record = bundle(downs).encode_to_vec();
                (
                    self.router.topics().downstream(&gateway),
                    key.clone(),
                    record,
                )
            })
            .collect();
        self.router
            .publish_many(records)
            .await
            .map_err(|e| HandlerError::from(e.to_string()))?;
        match temporary {
            Some(e) => Err(e.to_string().into()),
            None => Ok(()),
        }
    }
}
