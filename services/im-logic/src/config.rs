//! How im-logic issues tokens and routes messages.

use std::{path::PathBuf, time::Duration};

use gochat_core::{ConfigError, Secret};
use serde::{Deserialize, Serialize};

/// im-logic's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// The HMAC key access and refresh tokens are signed with (HS256): at least 32 bytes of
    /// real randomness (`openssl rand -base64 48`); placeholders and low-entropy keys are
    /// refused. In production it must come from outside the image (`GOCHAT_LOGIC__JWT_SECRET`,
    /// from a secret store), never from a config file. No default. Leave it empty when
    /// `jwt_private_key` is set.
    pub jwt_secret: Secret,
    /// An Ed25519 private key, PKCS#8 PEM (`openssl genpkey -algorithm ed25519`): tokens are
    /// then signed with EdDSA, and gateways given the public key (`openssl pkey -pubout`, in
    /// `gateway.jwt_public_keys`) verify them without calling im-logic. The same rules as
    /// `jwt_secret`: in production from outside the image. Either this or `jwt_secret`.
    pub jwt_private_key: Secret,
    /// Public key files (SPKI PEM) of earlier `jwt_private_key`s whose tokens are still
    /// accepted: during a key rotation, until the longest token of the old key has expired
    /// (`refresh_ttl`). Default: none.
    pub jwt_previous_keys: Vec<PathBuf>,
    /// How long an access token is valid. Default: 15 minutes.
    #[serde(with = "humantime_serde")]
    pub access_ttl: Duration,
    /// How long a refresh token is valid. Default: 30 days.
    #[serde(with = "humantime_serde")]
    pub refresh_ttl: Duration,
    /// The longest message content, in bytes. Default: 4 KiB.
    pub max_content_bytes: usize,
    /// Groups up to this size fan out at once; larger ones go to im-task. Default: 500.
    pub small_group_limit: usize,
    /// Put before every mq topic name (`{prefix}im-upstream`, …). Default: none.
    pub topic_prefix: String,
    /// Partitions of `im-upstream` and `im-task` when a service creates them (an existing
    /// topic keeps its own). Each partition's sends of one conversation are handled in order;
    /// a broker that polls every partition (the local test broker) idles cheaper on fewer.
    /// Default: 32.
    pub topic_partitions: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            jwt_secret: Secret::default(),
            jwt_private_key: Secret::default(),
            jwt_previous_keys: Vec::new(),
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            max_content_bytes: 4 * 1024,
            small_group_limit: 500,
            topic_prefix: String::new(),
            topic_partitions: crate::TOPIC_PARTITIONS,
        }
    }
}

impl Config {
    /// Whether a signing key is set (either kind).
    pub fn has_signing_key(&self) -> bool {
        !self.jwt_secret.is_empty() || !self.jwt_private_key.is_empty()
    }

    /// Checks every field.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match (self.jwt_secret.is_empty(), self.jwt_private_key.is_empty()) {
            (false, false) => {
                return Err(ConfigError::new(
                    "jwt_private_key",
                    "set either jwt_secret (HS256) or jwt_private_key (EdDSA), not both",
                ));
            }
            (true, false) => {
                crate::tokens::public_pem(self.jwt_private_key.expose())
                    .map_err(|e| ConfigError::new("jwt_private_key", e.to_string()))?;
            }
            _ => self
                .jwt_secret
                .check_key(32)
                .map_err(|reason| ConfigError::new("jwt_secret", reason))?,
        }
        if !self.jwt_previous_keys.is_empty() && self.jwt_private_key.is_empty() {
            return Err(ConfigError::new(
                "jwt_previous_keys",
                "earlier public keys only apply with jwt_private_key (EdDSA)",
            ));
        }
        if self.access_ttl.is_zero() || self.refresh_ttl < self.access_ttl {
            return Err(ConfigError::new(
                "refresh_ttl",
                "access_ttl must be above zero and refresh_ttl at least as long",
            ));
        }
        if self.max_content_bytes == 0 {
            return Err(ConfigError::new("max_content_bytes", "must be above zero"));
        }
        if self.topic_partitions == 0 {
            return Err(ConfigError::new("topic_partitions", "must be above zero"));
        }
        Ok(())
    }
}
