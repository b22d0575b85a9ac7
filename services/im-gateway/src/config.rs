//! How the gateway treats clients.

use std::time::Duration;

use gochat_core::ConfigError;
use serde::{Deserialize, Serialize};

/// im-gateway's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// The largest HTTP request body, in bytes; a larger one is a 1001. Default: 64 KiB.
    pub max_body_bytes: usize,
    /// The largest WebSocket frame, in bytes; a larger one gets an error frame and a kick.
    /// Default: 64 KiB.
    pub max_frame_bytes: usize,
    /// Frames queued for one connection; a client that lets it fill is kicked as a slow
    /// consumer. Default: 256.
    pub send_queue: usize,
    /// How often the gateway pings each socket. Default: 25 s.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// A socket silent for this long (no frame, no pong) is closed. Default: 60 s.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// The TTL of the gateway's presence entries; refreshed at a third of it. Default: 90 s.
    #[serde(with = "humantime_serde")]
    pub presence_ttl: Duration,
    /// Rate-limited frames in a row after which a socket is kicked. Default: 20.
    pub abuse_limit: u32,
    /// How long a shutdown waits for sockets to take their kick and close. Default: 5 s.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Put before every mq topic name; must match im-logic's. Default: none.
    pub topic_prefix: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            max_frame_bytes: 64 * 1024,
            send_queue: 256,
            heartbeat: Duration::from_secs(25),
            idle_timeout: Duration::from_secs(60),
            presence_ttl: Duration::from_secs(90),
            abuse_limit: 20,
            shutdown_grace: Duration::from_secs(5),
            topic_prefix: String::new(),
        }
    }
}

impl Config {
    /// Checks every field.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("max_body_bytes", self.max_body_bytes),
            ("max_frame_bytes", self.max_frame_bytes),
            ("send_queue", self.send_queue),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(ConfigError::new(field, "must be above zero"));
            }
        }
        if self.heartbeat.is_zero() || self.idle_timeout <= self.heartbeat {
            return Err(ConfigError::new(
                "idle_timeout",
                "heartbeat must be above zero and idle_timeout longer than it",
            ));
        }
        if self.presence_ttl < Duration::from_secs(3) {
            return Err(ConfigError::new("presence_ttl", "must be at least 3 s"));
        }
        if self.abuse_limit == 0 {
            return Err(ConfigError::new("abuse_limit", "must be above zero"));
        }
        Ok(())
    }
}
