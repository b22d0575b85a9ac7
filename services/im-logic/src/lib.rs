#![doc = include_str!("../README.md")]
// Library code returns typed errors; only proven invariants may panic (with a comment).
#![warn(clippy::unwrap_used)]

mod account;
mod auth;
mod batch;
mod breaker;
mod calls;
mod config;
mod error;
mod password;
mod route;
mod send;
mod service;
mod tokens;
mod upstream;

use std::sync::Arc;

use gochat_cache::Cache;
use gochat_clog::Logger;
use gochat_core::Context;
use gochat_mq::Mq;
use gochat_proto::repo::repo_service_server::RepoService;
use gochat_uid::Uid;

pub use auth::revoked_key;
pub use breaker::guarded;
pub use calls::{GROUP_ADD_RULE, MAX_HISTORY, MAX_LIST};
pub use config::Config;
pub use error::{Error, RETRY_AFTER_MS};
pub use route::{DOWNSTREAM_PREFIX, Router, TASK_TOPIC, Topics, presence_key};
pub use tokens::{KeyError, Verifier, generate_ed25519_key, public_pem};
pub use upstream::{TOPIC_PARTITIONS, UPSTREAM_GROUP, UPSTREAM_TOPIC};

/// The repository im-logic calls: an `im_repo::Repo` in process, or a gRPC client adapter.
pub type RepoHandle = Arc<dyn RepoService>;

/// What im-logic is built on.
#[derive(Clone)]
#[non_exhaustive]
pub struct Deps {
    /// The repository.
    pub repo: RepoHandle,
    /// Tokens and presence.
    pub cache: Cache,
    /// Message ids.
    pub ids: Uid,
    /// Downstream deliveries and im-task jobs.
    pub mq: Mq,
    /// Where it logs.
    pub log: Logger,
    /// Limits on logins (rule `login`, per username) and sends (rule `send_message`, per
    /// user); none when `None`.
    pub limiter: Option<gochat_ratelimit::RateLimiter>,
}

impl Deps {
    /// Everything im-logic needs.
    pub fn new(repo: RepoHandle, cache: Cache, ids: Uid, mq: Mq, log: Logger) -> Self {
        Self {
            repo,
            cache,
            ids,
            mq,
            log,
            limiter: None,
        }
    }

    /// Limits logins and sends with `limiter`'s `login` and `send_message` rules.
    #[must_use]
    pub fn limiter(mut self, limiter: gochat_ratelimit::RateLimiter) -> Self {
        self.limiter = Some(limiter);
        self
    }
}

/// im-logic: auth, users, conversations, groups and the message pipeline.
#[derive(Clone)]
pub struct Logic {
    deps: Deps,
    config: Arc<Config>,
    tokens: tokens::Tokens,
    batcher: batch::Batcher,
    router: Router,
}

impl std::fmt::Debug for Logic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logic").finish_non_exhaustive()
    }
}

/// The rate-limit rule for logins, keyed by the normalised username.
pub const LOGIN_RULE: &str = "login";

/// The rate-limit rule for logins, keyed by the client's address.
pub const LOGIN_ADDR_RULE: &str = "login_addr";

/// The rate-limit rule for registrations, keyed by the client's address.
pub const REGISTER_ADDR_RULE: &str = "register_addr";

/// The rate-limit rule for writing the world channel, per user (much lower than sends).
pub const WORLD_RULE: &str = "world_send";

/// The rate-limit rule for writing a group above `small_group_limit` members, per user.
pub const LARGE_GROUP_RULE: &str = "large_group_send";

/// The rate-limit rule for sends, keyed by user id.
pub const SEND_RULE: &str = "send_message";

impl Logic {
    /// Takes a token of `rule` for `key`, or says when to try again.
    pub(crate) async fn limit(&self, rule: &str, key: &str) -> Result<(), Error> {
        let Some(limiter) = &self.deps.limiter else {
            return Ok(());
        };
        let decision = limiter.allow(key, rule).await?;
        if decision.allowed {
            Ok(())
        } else {
            Err(Error::RateLimited {
                what: rule.to_owned(),
                retry_after: decision.retry_after,
            })
        }
    }

    /// The status a caller gets for `error`: a backend's own text is logged here and replaced
    /// by a generic one ([`Error::public_message`]); the gRPC code stays.
    pub(crate) fn public(&self, error: Error) -> tonic::Status {
        if error.code() != 1004 {
            return error.into();
        }
        gochat_clog::error!(self.deps.log, error = %error, "a call failed");
        let message = error.public_message();
        let status: tonic::Status = error.into();
        tonic::Status::new(status.code(), message)
    }

    /// im-logic on `deps`; its background work (the persistence batcher) stops with `ctx`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming a bad config field.
    pub fn new(ctx: &Context, deps: Deps, config: Config) -> Result<Self, Error> {
        config
            .validate()
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let tokens = if config.jwt_private_key.is_empty() {
            tokens::Tokens::hmac(config.jwt_secret.expose())
        } else {
            tokens::Tokens::ed25519(config.jwt_private_key.expose(), &config.jwt_previous_keys)
                .map_err(|e| Error::InvalidArgument(format!("jwt_private_key: {e}")))?
        };
        let batcher = batch::Batcher::start(ctx, deps.repo.clone(), deps.log.clone());
        let router = Router::new(
            deps.cache.clone(),
            deps.mq.clone(),
            Topics::with_prefix(config.topic_prefix.clone()),
        );
        Ok(Self {
            router,
            deps,
            config: Arc::new(config),
            tokens,
            batcher,
        })
    }
}
