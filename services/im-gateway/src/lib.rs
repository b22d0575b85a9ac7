#![doc = include_str!("../README.md")]
// Library code returns typed errors; only proven invariants may panic (with a comment).
#![warn(clippy::unwrap_used)]

mod api;
mod config;
mod downstream;
mod error;
mod extract;
mod frames;
pub mod fuzzing;
mod headers;
mod health;
mod limits;
mod metrics;
mod presence;
mod registry;
mod serve;
mod ticket;
mod views;
mod web;
mod ws;

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering::SeqCst},
    },
    time::Duration,
};

use axum::{Router, extract::DefaultBodyLimit, middleware, routing::get};
use gochat_cache::Cache;
use gochat_clog::Logger;
use gochat_core::{Context, Lifecycle};
use gochat_metrics::{Metrics, ServerLayer};
use gochat_mq::{Mq, Producer, Received, Subscription};
use gochat_proto::logic::{Session, ValidateTokenRequest, logic_service_server::LogicService};
use gochat_ratelimit::RateLimiter;
use im_logic::Topics;
use tokio::net::TcpListener;
use tonic::{Request, Status};

pub use config::Config;
pub use error::{ApiError, Error, code};

use crate::{
    limits::Sockets,
    presence::Presence,
    registry::{Counters, Registry, reason},
};

/// The rate-limit rule of HTTP calls, per user.
pub const API_RULE: &str = "api";

/// The rate-limit rule of WebSocket frames, per user.
pub const WS_FRAME_RULE: &str = "ws_frame";

/// The consumer group of gateway `gateway_id` on its downstream topic: `im-gateway-{id}`,
/// under the topic prefix.
pub fn downstream_group(topics: &Topics, gateway_id: &str) -> String {
    topics.group(&format!("im-gateway-{gateway_id}"))
}

/// im-logic as the gateway calls it: a `Logic` in process, or `RemoteLogic` over gRPC.
pub type LogicHandle = Arc<dyn LogicService>;

/// What the gateway is built on.
#[derive(Clone)]
#[non_exhaustive]
pub struct Deps {
    /// im-logic.
    pub logic: LogicHandle,
    /// Presence.
    pub cache: Cache,
    /// Upstream frames out, downstream deliveries in.
    pub mq: Mq,
    /// Where it logs.
    pub log: Logger,
    /// Per-user limits ([`API_RULE`], [`WS_FRAME_RULE`]); none when `None`.
    pub limiter: Option<RateLimiter>,
    /// `/metrics` and the HTTP layer's figures; none when `None`.
    pub metrics: Option<Metrics>,
    /// What `/readyz` checks (the cache and mq are always checked).
    pub ready: Vec<Arc<dyn Lifecycle>>,
}

impl Deps {
    /// The gateway's dependencies; readiness checks the cache and mq.
    pub fn new(logic: LogicHandle, cache: Cache, mq: Mq, log: Logger) -> Self {
        let ready: Vec<Arc<dyn Lifecycle>> = vec![Arc::new(cache.clone()), Arc::new(mq.clone())];
        Self {
            logic,
            cache,
            mq,
            log,
            limiter: None,
            metrics: None,
            ready,
        }
    }

    /// Limits callers per user with `limiter`'s [`API_RULE`] and [`WS_FRAME_RULE`] rules.
    #[must_use]
    pub fn limiter(mut self, limiter: RateLimiter) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Serves `/metrics` from `metrics` and measures every request.
    #[must_use]
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Adds a component to `/readyz`.
    #[must_use]
    pub fn ready(mut self, component: Arc<dyn Lifecycle>) -> Self {
        self.ready.push(component);
        self
    }
}

/// An im-gateway instance: its HTTP API, its WebSocket connections, its downstream consumer.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    id: String,
    deps: Deps,
    config: Config,
    topics: Topics,
    upstream: String,
    producer: Producer,
    registry: Registry,
    sockets: Arc<Sockets>,
    presence: Presence,
    counters: Arc<Counters>,
    ctx: Context,
    stopping: AtomicBool,
    subscription: tokio::sync::Mutex<Option<Subscription>>,
    next_conn: AtomicU64,
    /// Checks access tokens here when `jwt_public_keys` is set; im-logic does otherwise.
    verifier: Option<im_logic::Verifier>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("id", &self.inner.id)
            .field("connections", &self.inner.registry.len())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// A gateway with id `id` (unique among running gateways: im-logic routes to
    /// `im-downstream-{id}`), consuming its downstream topic and keeping its presence entries
    /// fresh until `ctx` is cancelled.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad field; [`Error::Mq`] when the downstream topic cannot be
    /// created or subscribed to.
    pub async fn new(
        ctx: &Context,
        id: impl Into<String>,
        deps: Deps,
        config: Config,
    ) -> Result<Self, Error> {
        config.validate()?;
        let id = id.into();
        let topics = Topics::with_prefix(config.topic_prefix.clone());
        let downstream = topics.downstream(&id);
        deps.mq.admin().ensure_topic(&downstream, 1).await?;
        deps.mq
            .admin()
            .ensure_topic(&topics.upstream(), config.topic_partitions)
            .await?;
        let presence = Presence::new(deps.cache.clone(), id.clone(), config.presence_ttl);
        let verifier = if config.jwt_public_keys.is_empty() {
            None
        } else {
            Some(im_logic::Verifier::ed25519_files(&config.jwt_public_keys)?)
        };
        let inner = Arc::new(Inner {
            verifier,
            upstream: topics.upstream(),
            producer: deps.mq.producer(),
            registry: Registry::default(),
            sockets: Arc::default(),
            presence,
            counters: Arc::default(),
            ctx: ctx.child(),
            stopping: AtomicBool::new(false),
            subscription: tokio::sync::Mutex::new(None),
            next_conn: AtomicU64::new(1),
            id,
            deps,
            config,
            topics,
        });
        if let Some(metrics) = &inner.deps.metrics {
            metrics::register(&metrics.meter("im-gateway"), &Arc::downgrade(&inner));
        }
        let weak = Arc::downgrade(&inner);
        let handler = move |message: Received| {
            let gateway = weak.upgrade().map(|inner| Gateway { inner });
            async move {
                match gateway {
                    Some(gateway) => gateway.deliver(&message),
                    // The gateway is gone; its sockets with it.
                    None => Ok(()),
                }
            }
        };
        let subscription = inner
            .deps
            .mq
            .consumer(&downstream_group(&inner.topics, &inner.id))
            .subscribe(&[downstream.as_str()], handler)
            .await?;
        *inner.subscription.lock().await = Some(subscription);
        let gateway = Self { inner };
        gateway.keep_presence();
        Ok(gateway)
    }

    /// The gateway's id.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// Open WebSocket connections.
    pub fn connections(&self) -> usize {
        self.inner.registry.len()
    }

    /// The HTTP routes: the web page at `/`, `/api/v1/…`, `/ws`, `/healthz`, `/readyz`,
    /// `/metrics`.
    pub fn router(&self) -> Router {
        let inner = &self.inner;
        let api = api::routes().fallback(health::not_found);
        let router = Router::new()
            .nest("/api/v1", api)
            .route("/", get(web::index))
            .route("/app.js", get(web::script))
            .route("/style.css", get(web::style))
            .route("/ws", get(ws::upgrade))
            .route("/healthz", get(health::live))
            .route("/readyz", get(health::ready))
            .route("/metrics", get(health::metrics))
            .fallback(health::not_found)
            .layer(DefaultBodyLimit::max(inner.config.max_body_bytes))
            .layer(middleware::map_response(headers::secure))
            .with_state(self.clone());
        match &inner.deps.metrics {
            Some(metrics) => router.layer(
                ServerLayer::http(&metrics.meter("im-gateway")).logger(inner.deps.log.clone()),
            ),
            None => router,
        }
    }

    /// Serves on `listener` until the gateway's context is cancelled, then shuts down
    /// gracefully ([`Gateway::shutdown`]).
    ///
    /// # Errors
    /// The listener failing.
    pub async fn serve(&self, listener: TcpListener) -> Result<(), Error> {
        let ctx = self.inner.ctx.clone();
        self.serve_until(listener, async move { ctx.cancelled().await })
            .await
    }

    /// Serves on `listener` until `signal` completes, then shuts down gracefully: stops
    /// accepting, lets HTTP requests under way finish, then [`Gateway::shutdown`].
    ///
    /// Each connection must send its request headers within `header_read_timeout`; at most
    /// `max_connections` are open at once (one more gets a 503 and is closed). Handlers see
    /// the client's address as `ConnectInfo<SocketAddr>`.
    ///
    /// # Errors
    /// None at present: accept failures are logged and retried.
    pub async fn serve_until(
        &self,
        listener: TcpListener,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let stopping = self.clone();
        let signal = async move {
            signal.await;
            // Readiness drops at once, so load balancers stop sending.
            stopping.inner.stopping.store(true, SeqCst);
        };
        let config = &self.inner.config;
        let limits = serve::Limits {
            max_connections: config.max_connections,
            header_read_timeout: config.header_read_timeout,
        };
        let (log, counters) = (&self.inner.deps.log, &self.inner.counters);
        serve::run(listener, self.router(), limits, log, counters, signal).await;
        self.shutdown().await;
        Ok(())
    }

    /// Stops: refuses new sockets, kicks every socket (`shutdown`), waits up to
    /// `shutdown_grace` for them to close (each takes its presence entry with it), and shuts
    /// the downstream consumer down, committing what it handled. Idempotent.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner.stopping.store(true, SeqCst);
        for conn in inner.registry.of_users(&[]) {
            conn.kick(reason::SHUTDOWN);
        }
        let deadline = tokio::time::Instant::now() + inner.config.shutdown_grace;
        while inner.registry.len() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if inner.registry.len() > 0 {
            inner.deps.log.warn(format!(
                "im-gateway {}: {} sockets still open after the shutdown grace",
                inner.id,
                inner.registry.len()
            ));
        }
        if let Some(subscription) = inner.subscription.lock().await.take() {
            subscription.shutdown().await;
        }
        inner.ctx.cancel();
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.inner.stopping.load(SeqCst)
    }

    pub(crate) fn logic(&self) -> &LogicHandle {
        &self.inner.deps.logic
    }

    /// The session of a valid access token: checked here when the gateway holds im-logic's
    /// public keys (the signature, then the session against the ended ones), else by im-logic.
    pub(crate) async fn session(&self, access_token: &str) -> Result<Session, ApiError> {
        if let Some(verifier) = &self.inner.verifier {
            let session = verifier
                .access(access_token)
                .map_err(|e| ApiError::from(Status::from(e)))?;
            let ended = self.inner.registry.has_ended(&session.token_id)
                || Box::pin(
                    self.inner
                        .deps
                        .cache
                        .string()
                        .get(&im_logic::revoked_key(&session.token_id)),
                )
                .await
                .map_err(|e| ApiError::from(Status::from(im_logic::Error::from(e))))?
                .is_some();
            if ended {
                return Err(ApiError::unauthorized("this session was logged out"));
            }
            return Ok(session);
        }
        let session = self
            .logic()
            .validate_token(Request::new(ValidateTokenRequest {
                access_token: access_token.to_owned(),
            }));
        Ok(session.await?.into_inner())
    }

    /// Takes a token of `rule` for the user; a limiter outage lets the call through.
    pub(crate) async fn limit(&self, user_id: &str, rule: &str) -> Result<(), ApiError> {
        let Some(limiter) = &self.inner.deps.limiter else {
            return Ok(());
        };
        match Box::pin(limiter.allow(user_id, rule)).await {
            Ok(decision) if decision.allowed => Ok(()),
            Ok(decision) => Err(ApiError::rate_limited(rule, decision.retry_after)),
            Err(e) => {
                self.inner
                    .deps
                    .log
                    .warn(format!("im-gateway: rate limiter unavailable: {e}"));
                Ok(())
            }
        }
    }

    async fn mark_online(&self, user_id: &str) {
        // Boxed here and below: a connection's future lives as long as the socket, so it keeps
        // only small states inline (docs/benchmarks.md, memory per connection).
        let users = [user_id.to_owned()];
        if let Err(e) = Box::pin(self.inner.presence.online(&users)).await {
            self.inner.deps.log.warn(format!(
                "im-gateway: presence of {user_id} not written: {e}"
            ));
        }
    }

    /// Takes the user's presence here away, and puts it back if a new connection of theirs
    /// arrived meanwhile (so the two writes can never leave a connected user offline).
    async fn mark_offline(&self, user_id: &str) {
        if let Err(e) = Box::pin(self.inner.presence.offline(user_id)).await {
            self.inner.deps.log.warn(format!(
                "im-gateway: presence of {user_id} not removed: {e}"
            ));
        }
        if self.inner.registry.has_user(user_id) {
            self.mark_online(user_id).await;
        }
    }

    /// Refreshes every online user's presence at a third of its TTL until the context ends.
    fn keep_presence(&self) {
        let weak = Arc::downgrade(&self.inner);
        let every = self.inner.presence.refresh_every();
        let ctx = self.inner.ctx.clone();
        self.inner.ctx.spawn(async move {
            let refresh = async {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let Some(inner) = weak.upgrade() else { return };
                    let users = inner.registry.users();
                    if let Err(e) = inner.presence.online(&users).await {
                        inner
                            .deps
                            .log
                            .warn(format!("im-gateway: presence not refreshed: {e}"));
                    }
                }
            };
            Box::pin(ctx.run_until_cancelled(refresh)).await;
        });
    }
}
