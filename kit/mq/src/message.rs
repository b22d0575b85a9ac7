//! What is sent ([`Message`]), what a handler receives ([`Received`]), and what the broker
//! confirms ([`Delivery`]).
//!
//! ```
//! use gochat_mq::{Headers, Message};
//!
//! let message = Message::new("im-upstream", "hello").key("user-42").header("kind", "text");
//! assert_eq!(message.topic, "im-upstream");
//! assert_eq!(message.key.as_deref(), Some(&b"user-42"[..]));
//! assert_eq!(message.headers.get_str("kind"), Some("text"));
//!
//! let mut headers = Headers::default();
//! headers.insert("a", "1");
//! headers.insert("a", "2");
//! assert_eq!(headers.get_str("a"), Some("2"), "the last value of a repeated name wins");
//! assert_eq!(headers.len(), 2, "Kafka headers may repeat; all are kept");
//! ```

use std::time::SystemTime;

use bytes::Bytes;
use serde::{Serialize, de::DeserializeOwned};

use crate::{Error, trace::TRACE_HEADER};

/// Ordered message headers; a name may repeat (as in Kafka), the last value wins on lookup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, Bytes)>);

impl Headers {
    /// Appends a header.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<Bytes>) {
        self.0.push((name.into(), value.into()));
    }

    /// The last value of `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
    }

    /// The last value of `name`, if it is UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    /// Every header, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_ref()))
    }

    /// The number of headers.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Trace context is read from headers ([`gochat_clog::request_span_from`]).
impl gochat_clog::Extractor for Headers {
    fn get(&self, key: &str) -> Option<&str> {
        self.get_str(key)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(n, _)| n.as_str()).collect()
    }
}

/// Trace context is written into headers ([`gochat_clog::inject_trace`]).
impl gochat_clog::Injector for Headers {
    fn set(&mut self, key: &str, value: String) {
        self.insert(key, value);
    }
}

/// A message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Message {
    /// The topic.
    pub topic: String,
    /// Messages with the same key land on the same partition, in order. `None`: any partition.
    pub key: Option<Bytes>,
    /// The payload.
    pub value: Bytes,
    /// Headers. The producer adds `traceparent` from the current span unless it is set.
    pub headers: Headers,
}

impl Message {
    /// A message with a payload and no key.
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Self {
            topic: topic.into(),
            key: None,
            value: value.into(),
            headers: Headers::default(),
        }
    }

    /// A message whose payload is `value` as JSON.
    ///
    /// # Errors
    /// [`Error::Serde`] when `value` cannot be serialised.
    pub fn json<T: Serialize + ?Sized>(topic: impl Into<String>, value: &T) -> Result<Self, Error> {
        let topic = topic.into();
        let value = serde_json::to_vec(value).map_err(|e| Error::Serde {
            topic: topic.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self::new(topic, value))
    }

    /// Sets the key.
    #[must_use]
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Sets the W3C `traceparent` explicitly (otherwise the current span's is used).
    #[must_use]
    pub fn traceparent(self, traceparent: impl Into<String>) -> Self {
        self.header(TRACE_HEADER, traceparent.into())
    }
}

/// A message handed to a consumer's handler.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Received {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset within the partition.
    pub offset: i64,
    /// The key, if it had one.
    pub key: Option<Bytes>,
    /// The payload.
    pub value: Bytes,
    /// The headers.
    pub headers: Headers,
    /// When it was produced, if the broker says.
    pub timestamp: Option<SystemTime>,
    /// 1 on the first delivery to the handler, 2 on the first retry, …
    pub attempt: u32,
}

impl Received {
    /// The sender's trace id: the trace-id part of the `traceparent` header.
    pub fn trace_id(&self) -> Option<&str> {
        let mut parts = self.headers.get_str(TRACE_HEADER)?.split('-');
        let _version = parts.next()?;
        parts
            .next()
            .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
    }

    /// The payload parsed as JSON.
    ///
    /// # Errors
    /// [`Error::Serde`] when it is not valid JSON for `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.value).map_err(|e| Error::Serde {
            topic: self.topic.clone(),
            reason: e.to_string(),
        })
    }

    /// The key as UTF-8, if it is.
    pub fn key_str(&self) -> Option<&str> {
        self.key
            .as_deref()
            .and_then(|k| std::str::from_utf8(k).ok())
    }

    /// The payload as UTF-8, if it is.
    pub fn value_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }
}

/// Where the broker stored a sent message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Delivery {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset within the partition.
    pub offset: i64,
}

/// A partition of a topic.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub struct TopicPartition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`'s partition `partition`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}
