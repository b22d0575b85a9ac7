//! How the gateway treats clients.

use std::{path::PathBuf, time::Duration};

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
    /// Partitions of `im-upstream` if this gateway creates it; must match im-logic's
    /// `topic_partitions`. Default: 32.
    pub topic_partitions: u32,
    /// The longest content of a WebSocket `message` frame, in bytes: a longer one is answered
    /// with a 1001 error frame at once and never queued for im-logic. Keep it equal to
    /// im-logic's `max_content_bytes`. Default: 4 KiB.
    pub max_content_bytes: usize,
    /// How long a client has to send a request's headers (and, idle between requests, the
    /// next request's); a connection that takes longer is closed. Default: 10 s.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// How long a new WebSocket has to send its first frame; the gateway pings every socket
    /// as soon as it opens, so a live client's automatic pong counts. Default: 10 s.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// Open TCP connections (HTTP and WebSocket) this process serves at once; beyond it a new
    /// connection gets a 503 (1004) and is closed. Keep it below the process's open-file
    /// limit. Default: 18,000.
    pub max_connections: usize,
    /// Open WebSockets of one user on this gateway; one more is refused at upgrade with a 429
    /// (1006). Default: 16.
    pub max_sockets_per_user: usize,
    /// Open WebSockets from one client address (an IPv6 address counts by its /64) on this
    /// gateway; one more is refused at upgrade with a 429 (1006). Large by default so load
    /// tests from a few loopback addresses and users behind one NAT still fit. Default: 4096.
    pub max_sockets_per_addr: usize,
    /// How long a ticket of `POST /api/v1/ws/ticket` may be used to open a WebSocket (once).
    /// Default: 30 s.
    #[serde(with = "humantime_serde")]
    pub ws_ticket_ttl: Duration,
    /// Public key files (SPKI PEM) of im-logic's Ed25519 signing keys (`logic.jwt_private_key`
    /// and, during a rotation, the previous one). When set, the gateway verifies access
    /// tokens itself — signature, expiry, and the session not ended (the cache's mark and
    /// the ended sessions it was told of) — instead of asking im-logic for each. Default:
    /// none (im-logic validates every token).
    pub jwt_public_keys: Vec<PathBuf>,
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
            topic_partitions: im_logic::TOPIC_PARTITIONS,
            max_content_bytes: 4 * 1024,
            header_read_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            max_connections: 18_000,
            max_sockets_per_user: 16,
            max_sockets_per_addr: 4096,
            ws_ticket_ttl: Duration::from_secs(30),
            jwt_public_keys: Vec::new(),
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
            ("max_content_bytes", self.max_content_bytes),
            ("max_connections", self.max_connections),
            ("max_sockets_per_user", self.max_sockets_per_user),
            ("max_sockets_per_addr", self.max_sockets_per_addr),
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
        if self.topic_partitions == 0 {
            return Err(ConfigError::new("topic_partitions", "must be above zero"));
        }
        if self.max_content_bytes > self.max_frame_bytes {
            return Err(ConfigError::new(
                "max_content_bytes",
                "must not be above max_frame_bytes (a frame carries the content)",
            ));
        }
        let durations = [
            ("header_read_timeout", self.header_read_timeout),
            ("handshake_timeout", self.handshake_timeout),
            ("ws_ticket_ttl", self.ws_ticket_ttl),
        ];
        for (field, value) in durations {
            if value < Duration::from_millis(100) {
                return Err(ConfigError::new(field, "must be at least 100 ms"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_each_limit_is_checked() {
        assert_eq!(Config::default().validate(), Ok(()));
        let bad = [
            Config {
                max_content_bytes: 0,
                ..Config::default()
            },
            Config {
                max_content_bytes: 128 * 1024,
                ..Config::default()
            },
            Config {
                header_read_timeout: Duration::ZERO,
                ..Config::default()
            },
            Config {
                handshake_timeout: Duration::from_millis(1),
                ..Config::default()
            },
            Config {
                ws_ticket_ttl: Duration::ZERO,
                ..Config::default()
            },
            Config {
                max_connections: 0,
                ..Config::default()
            },
            Config {
                max_sockets_per_user: 0,
                ..Config::default()
            },
            Config {
                max_sockets_per_addr: 0,
                ..Config::default()
            },
        ];
        for config in bad {
            assert!(config.validate().is_err(), "{config:?}");
        }
    }
}
