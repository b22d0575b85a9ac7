//! Sending: await the broker's confirmation, or enqueue and hold a [`Pending`] handle.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, atomic::Ordering},
    task::{Context as TaskContext, Poll},
};

use crate::{
    Error, Shared,
    backend::{kafka::DeliveryWait, redis::RedisWait},
    error::Result,
    message::{Delivery, Message},
    stats::Counters,
    trace,
};

/// Sends messages; a cheap `Clone` handle from [`Mq::producer`](crate::Mq::producer).
///
/// ```
/// # use gochat_core::{Context, Env};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), gochat_mq::Error> {
/// use gochat_mq::{Config, Message, Options};
///
/// let mq = gochat_mq::new(&Context::new(), Config::for_env(Env::Development), Options::default()).await?;
/// let producer = mq.producer();
/// let first = producer.send(Message::new("orders", "1").key("customer-7")).await?;
/// let second = producer.send_nowait(Message::new("orders", "2").key("customer-7"))?.await?;
/// assert_eq!(first.partition, second.partition, "one key, one partition");
/// assert_eq!(second.offset, first.offset + 1, "in order");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Producer {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("backend", &self.shared.client.name())
            .finish()
    }
}

impl Producer {
    fn prepare(&self, mut message: Message) -> Result<Message> {
        if self.shared.closed.load(Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        if message.topic.is_empty() {
            return Err(Error::InvalidArgument("the topic name is empty".to_owned()));
        }
        trace::stamp(&mut message);
        Ok(message)
    }

    /// Sends `message` and waits until the broker has it (as `acks` asks).
    ///
    /// # Errors
    /// [`Error::Closed`] after `close`; [`Error::Timeout`] when the broker did not confirm
    /// within `delivery_timeout`; [`Error::Unavailable`], [`Error::UnknownTopic`], …
    pub async fn send(&self, message: Message) -> Result<Delivery> {
        let message = self.prepare(message)?;
        let shared = &self.shared;
        let sent = shared
            .client
            .send(message, &shared.counters, &shared.log)
            .await;
        count(&self.shared.counters, &sent);
        sent
    }

    /// Enqueues `message` without waiting for the broker; await the handle for the result.
    /// A handle dropped unawaited does not cancel the send.
    ///
    /// # Errors
    /// [`Error::QueueFull`] when the local queue is full (the broker is slower than the
    /// sender: back off, or use [`Producer::send`], which waits for room).
    pub fn send_nowait(&self, message: Message) -> Result<Pending> {
        let message = self.prepare(message)?;
        let shared = &self.shared;
        let mut pending = shared
            .client
            .send_nowait(message, &shared.counters, &shared.log)?;
        pending.counters = Some(self.shared.counters.clone());
        Ok(pending)
    }

    /// Waits until every enqueued message was confirmed or failed.
    ///
    /// # Errors
    /// [`Error::Timeout`] when that takes longer than `delivery_timeout`.
    pub async fn flush(&self) -> Result<()> {
        self.shared.client.flush().await
    }
}

fn count(counters: &Counters, sent: &Result<Delivery>) {
    Counters::add(match sent {
        Ok(_) => &counters.produced,
        Err(_) => &counters.produce_failed,
    });
}

/// A message on its way to the broker; resolves to where it was stored.
#[must_use = "a send's outcome is only known by awaiting it"]
pub struct Pending {
    state: State,
    counters: Option<Arc<Counters>>,
}

enum State {
    Ready(Option<Result<Delivery>>),
    Kafka { future: DeliveryWait, topic: String },
    Redis(RedisWait),
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").finish_non_exhaustive()
    }
}

impl Pending {
    pub(crate) fn ready(result: Result<Delivery>) -> Self {
        Self {
            state: State::Ready(Some(result)),
            counters: None,
        }
    }

    pub(crate) fn redis(wait: RedisWait) -> Self {
        Self {
            state: State::Redis(wait),
            counters: None,
        }
    }

    pub(crate) fn kafka(future: DeliveryWait, topic: String) -> Self {
        Self {
            state: State::Kafka { future, topic },
            counters: None,
        }
    }
}

impl Future for Pending {
    type Output = Result<Delivery>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let result = match &mut this.state {
            State::Ready(result) => result.take().unwrap_or(Err(Error::Closed)),
            State::Kafka { future, topic } => match Pin::new(future).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(Ok(delivery))) => Ok(Delivery {
                    topic: std::mem::take(topic),
                    partition: delivery.partition,
                    offset: delivery.offset,
                }),
                Poll::Ready(Ok(Err((e, _)))) => Err(crate::backend::kafka::map_error(
                    e,
                    &format!("sending to {topic}"),
                )),
                Poll::Ready(Err(_)) => Err(Error::Closed),
            },
            State::Redis(wait) => match Pin::new(wait).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(result) => result.unwrap_or(Err(Error::Closed)),
            },
        };
        if let Some(counters) = this.counters.take() {
            count(&counters, &result);
        }
        Poll::Ready(result)
    }
}
