//! Where a stored message goes: small conversations straight to the gateways their members
//! are connected to (one mq message per gateway); large groups and the world channel to
//! im-task; members with no connection to the push provider (through im-task).

use std::collections::{BTreeMap, HashMap};

use futures_util::future::try_join_all;

use gochat_mq::Message as MqMessage;
use gochat_proto::{
    common::{Conversation, ConversationType, Message},
    events::{Downstream, Fanout, Push, Task, downstream, task},
    prost::Message as _,
    repo::ListMembersRequest,
};
use tonic::Request;

use gochat_cache::{Cache, Reply};
use gochat_mq::Mq;

use crate::{Error, Logic};

/// The topic of im-task's jobs.
pub const TASK_TOPIC: &str = "im-task";

/// The prefix of a gateway's own topic: `im-downstream-{gateway_id}`.
pub const DOWNSTREAM_PREFIX: &str = "im-downstream-";

/// The mq topics the services use, all under one prefix (empty by default; a deployment's or
/// a test's own otherwise).
///
/// ```
/// let topics = im_logic::Topics::with_prefix("staging.");
/// assert_eq!(topics.task(), "staging.im-task");
/// assert_eq!(topics.downstream("gw-1"), "staging.im-downstream-gw-1");
/// assert_eq!(topics.group("im-logic"), "staging.im-logic");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
}

impl Topics {
    /// Topics named `{prefix}im-upstream`, `{prefix}im-task`, `{prefix}im-downstream-{gateway}`.
    pub fn with_prefix(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// Where gateways publish client message frames.
    pub fn upstream(&self) -> String {
        format!("{}{}", self.prefix, crate::UPSTREAM_TOPIC)
    }

    /// im-task's jobs.
    pub fn task(&self) -> String {
        format!("{}{TASK_TOPIC}", self.prefix)
    }

    /// The topic gateway `gateway_id` consumes.
    pub fn downstream(&self, gateway_id: &str) -> String {
        format!("{}{DOWNSTREAM_PREFIX}{gateway_id}", self.prefix)
    }

    /// The consumer group `name` under the prefix: deployments sharing a broker share no
    /// groups either (a group's members must all read the same topics).
    pub fn group(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

/// The cache set of gateway ids a user is connected to (gateways add and refresh it).
pub fn presence_key(user_id: &str) -> String {
    format!("presence:{user_id}")
}

impl Logic {
    /// Routes a stored message by the size and kind of its conversation.
    pub(crate) async fn route(
        &self,
        conversation: &Conversation,
        message: &Message,
    ) -> Result<(), Error> {
        if conversation.r#type == i32::from(ConversationType::World) {
            return self.fan_out_later(message).await;
        }
        let members = self
            .deps
            .repo
            .list_members(Request::new(ListMembersRequest {
                conversation_id: conversation.id.clone(),
            }))
            .await?
            .into_inner()
            .members;
        if members.len() > self.config.small_group_limit {
            return self.fan_out_later(message).await;
        }
        let users = members.into_iter().map(|m| m.user_id).collect();
        self.router.deliver(users, message).await
    }

    /// Routes a batch's stored messages: large groups and the world channel to im-task as
    /// [`Logic::route`] does; the others' deliveries in one record per gateway, keyed by `key`
    /// (the batch's upstream key, so the record shares its conversations' downstream
    /// partition), after one member list per conversation and one presence read for all.
    pub(crate) async fn route_batch(
        &self,
        stored: &[(&Conversation, &Message)],
        key: &str,
    ) -> Result<(), Error> {
        let mut wanted: Vec<&str> = stored
            .iter()
            .filter(|(c, _)| c.r#type != i32::from(ConversationType::World))
            .map(|(c, _)| c.id.as_str())
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let lists = try_join_all(wanted.iter().map(|id| {
            self.deps
                .repo
                .list_members(Request::new(ListMembersRequest {
                    conversation_id: (*id).to_owned(),
                }))
        }))
        .await?;
        let members: HashMap<&str, Vec<String>> = wanted
            .into_iter()
            .zip(lists)
            .map(|(id, list)| {
                let users = list.into_inner().members.into_iter().map(|m| m.user_id);
                (id, users.collect())
            })
            .collect();
        let mut direct = Vec::with_capacity(stored.len());
        for (conversation, message) in stored {
            match members.get(conversation.id.as_str()) {
                Some(users) if users.len() <= self.config.small_group_limit => {
                    direct.push((users.clone(), (*message).clone()));
                }
                _ => self.fan_out_later(message).await?,
            }
        }
        self.router.deliver_many(direct, key).await
    }

    async fn fan_out_later(&self, message: &Message) -> Result<(), Error> {
        let job = Task {
            job: Some(task::Job::Fanout(Fanout {
                message: Some(message.clone()),
            })),
        };
        self.router
            .publish(
                &self.router.topics().task(),
                &message.conversation_id,
                job.encode_to_vec(),
            )
            .await
    }
}

/// Delivery: presence lookups (cache) and publishing (mq). im-logic routes through it, and
/// im-task delivers large groups' messages in batches through it.
#[derive(Clone, Debug)]
pub struct Router {
    cache: Cache,
    mq: Mq,
    topics: Topics,
}

impl Router {
    /// Looks presence up in `cache`, publishes on `mq`'s `topics`.
    pub fn new(cache: Cache, mq: Mq, topics: Topics) -> Self {
        Self { cache, mq, topics }
    }

    /// The topics it publishes on.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// Sends `message` to every gateway `users` are connected to, one mq message per gateway;
    /// users connected nowhere are handed to the push provider through im-task.
    ///
    /// # Errors
    /// The cache or the bus failing.
    pub async fn deliver(&self, users: Vec<String>, message: &Message) -> Result<(), Error> {
        let frame = downstream::Frame::Message(message.clone());
        let offline = self.notify(users, frame, &message.conversation_id).await?;
        if !offline.is_empty() {
            let job = Task {
                job: Some(task::Job::Push(Push {
                    user_ids: offline,
                    message: Some(message.clone()),
                })),
            };
            self.publish(
                &self.topics.task(),
                &message.conversation_id,
                job.encode_to_vec(),
            )
            .await?;
        }
        Ok(())
    }

    /// Sends each message to every gateway its users are connected to: one mq message per
    /// gateway for all of them (keyed by `key`), the users of each found in one presence read;
    /// users connected nowhere are handed to the push provider through im-task.
    ///
    /// # Errors
    /// The cache or the bus failing.
    pub async fn deliver_many(
        &self,
        deliveries: Vec<(Vec<String>, Message)>,
        key: &str,
    ) -> Result<(), Error> {
        let mut everyone: Vec<String> = deliveries.iter().flat_map(|(u, _)| u.clone()).collect();
        everyone.sort_unstable();
        everyone.dedup();
        let online = self.presence(&everyone).await?;
        let mut by_gateway: BTreeMap<String, Vec<Downstream>> = BTreeMap::new();
        let mut sends = Vec::new();
        for (users, message) in deliveries {
            let (here, offline) = spread(users, &online);
            for (gateway, user_ids) in here {
                by_gateway.entry(gateway).or_default().push(Downstream {
                    user_ids,
                    frame: Some(downstream::Frame::Message(message.clone())),
                    more: Vec::new(),
                });
            }
            if !offline.is_empty() {
                let conversation = message.conversation_id.clone();
                let job = Task {
                    job: Some(task::Job::Push(Push {
                        user_ids: offline,
                        message: Some(message),
                    })),
                };
                sends.push((self.topics.task(), conversation, job.encode_to_vec()));
            }
        }
        for (gateway, downs) in by_gateway {
            let record = bundle(downs).encode_to_vec();
            sends.push((self.topics.downstream(&gateway), key.to_owned(), record));
        }
        self.publish_many(sends).await
    }

    /// Sends `frame` to the gateways `users` are connected to (one mq message per gateway,
    /// keyed by `key`); the users connected nowhere.
    ///
    /// # Errors
    /// The cache or the bus failing.
    pub async fn notify(
        &self,
        users: Vec<String>,
        frame: downstream::Frame,
        key: &str,
    ) -> Result<Vec<String>, Error> {
        let online = self.presence(&users).await?;
        let (by_gateway, offline) = spread(users, &online);
        let sends = by_gateway
            .into_iter()
            .map(|(gateway, user_ids)| {
                let down = Downstream {
                    user_ids,
                    frame: Some(frame.clone()),
                    more: Vec::new(),
                };
                (self.topics.downstream(&gateway), down.encode_to_vec())
            })
            .collect();
        self.publish_all(sends, key).await?;
        Ok(offline)
    }

    /// The gateways each of `users` is connected to, read in one cache round trip; users
    /// connected nowhere are left out.
    ///
    /// # Errors
    /// The cache failing.
    pub async fn presence(&self, users: &[String]) -> Result<BTreeMap<String, Vec<String>>, Error> {
        let mut pipeline = self.cache.pipeline();
        for user in users {
            pipeline = pipeline.smembers(&presence_key(user));
        }
        let replies = if pipeline.is_empty() {
            Vec::new()
        } else {
            pipeline.exec().await?
        };
        let mut online = BTreeMap::new();
        for (user, reply) in users.iter().zip(replies) {
            let gateways: Vec<String> = match reply? {
                Reply::Array(members) => members
                    .into_iter()
                    .filter_map(|member| match member {
                        Reply::Bytes(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            if !gateways.is_empty() {
                online.insert(user.clone(), gateways);
            }
        }
        Ok(online)
    }

    /// Sends `message` to every connection of each of `gateways` (the world channel): a
    /// delivery with no user ids means everyone connected to that gateway.
    ///
    /// # Errors
    /// The bus failing.
    pub async fn broadcast(&self, gateways: &[String], message: &Message) -> Result<(), Error> {
        let down = Downstream {
            user_ids: Vec::new(),
            frame: Some(downstream::Frame::Message(message.clone())),
            more: Vec::new(),
        };
        self.to_gateways(gateways, &down, &message.conversation_id)
            .await
    }

    /// Sends `down` to each of `gateways`, keyed (ordered) by `key`: every send is enqueued
    /// before the first is awaited.
    ///
    /// # Errors
    /// The bus failing.
    pub async fn to_gateways(
        &self,
        gateways: &[String],
        down: &Downstream,
        key: &str,
    ) -> Result<(), Error> {
        let payload = down.encode_to_vec();
        let sends = gateways
            .iter()
            .map(|gateway| (self.topics.downstream(gateway), payload.clone()))
            .collect();
        self.publish_all(sends, key).await
    }

    /// Publishes each `(topic, payload)`, keyed by `key`: all are enqueued before the first
    /// is awaited, so they travel together.
    async fn publish_all(&self, sends: Vec<(String, Vec<u8>)>, key: &str) -> Result<(), Error> {
        let keyed = sends
            .into_iter()
            .map(|(topic, payload)| (topic, key.to_owned(), payload))
            .collect();
        self.publish_many(keyed).await
    }

    /// Publishes each `(topic, key, payload)`: all are enqueued before the first is awaited,
    /// so they travel together; sends of one key keep their order.
    ///
    /// # Errors
    /// The bus failing.
    pub async fn publish_many(&self, sends: Vec<(String, String, Vec<u8>)>) -> Result<(), Error> {
        let producer = self.mq.producer();
        let pending = sends
            .into_iter()
            .map(|(topic, key, payload)| {
                producer.send_nowait(MqMessage::new(topic, payload).key(key))
            })
            .collect::<Result<Vec<_>, _>>()?;
        for sent in pending {
            sent.await?;
        }
        Ok(())
    }

    /// Publishes `payload` on `topic`, keyed (ordered) by `key`.
    ///
    /// # Errors
    /// The bus failing.
    pub async fn publish(&self, topic: &str, key: &str, payload: Vec<u8>) -> Result<(), Error> {
        self.mq
            .producer()
            .send(MqMessage::new(topic, payload).key(key.to_owned()))
            .await?;
        Ok(())
    }
}

/// `users` by the gateways they are connected to (per `online`), and those connected nowhere.
fn spread(
    users: Vec<String>,
    online: &BTreeMap<String, Vec<String>>,
) -> (BTreeMap<String, Vec<String>>, Vec<String>) {
    let mut by_gateway: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut offline = Vec::new();
    for user in users {
        match online.get(&user) {
            Some(gateways) => {
                for gateway in gateways {
                    by_gateway
                        .entry(gateway.clone())
                        .or_default()
                        .push(user.clone());
                }
            }
            None => offline.push(user),
        }
    }
    (by_gateway, offline)
}

/// One record carrying `downs` in order: the first, the others in its `more`.
pub(crate) fn bundle(mut downs: Vec<Downstream>) -> Downstream {
    let rest = if downs.len() > 1 {
        downs.split_off(1)
    } else {
        Vec::new()
    };
    let mut first = downs.pop().unwrap_or_default();
    first.more = rest;
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(user: &str) -> Downstream {
        Downstream {
            user_ids: vec![user.to_owned()],
            ..Downstream::default()
        }
    }

    #[test]
    fn a_bundle_carries_every_delivery_in_order() {
        let one = bundle(vec![to("a"), to("b"), to("c")]);
        let users: Vec<String> = std::iter::once(one.clone())
            .chain(one.more)
            .flat_map(|d| d.user_ids)
            .collect();
        assert_eq!(users, ["a", "b", "c"]);
        assert_eq!(
            bundle(vec![to("a")]),
            to("a"),
            "one delivery: the record itself"
        );
    }
}
