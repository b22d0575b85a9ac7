//! One service per process: im-repo and im-logic serve gRPC and register in coord, im-logic
//! and im-task reach im-repo (and the gateways im-logic) through coord's balanced channels,
//! gateways take their ids from coord's instance ids. Each runs until `signal` completes.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use gochat_coord::{Coord, Instance, InstanceId, Registration};
use gochat_metrics::ServerLayer;
use gochat_proto::{
    RemoteLogic, RemoteRepo, ServiceToken, logic::logic_service_server::LogicServiceServer,
    repo::repo_service_server::RepoServiceServer, require_token,
};
use im_gateway::Gateway;
use im_logic::{Logic, Router, Topics};
use im_task::TaskWorker;
use tokio::net::TcpListener;
use tonic::{
    service::InterceptorLayer,
    transport::{Channel, Server, server::TcpIncoming},
};

use crate::{Config, StartError, parts::Base, standalone::push};

/// The coord service name of im-repo.
pub const REPO_SERVICE: &str = "im-repo";
/// The coord service name of im-logic.
pub const LOGIC_SERVICE: &str = "im-logic";

/// How long a registration in coord lives without renewal.
const REGISTRATION_TTL: Duration = Duration::from_secs(10);
/// The most instances of one service.
const MAX_INSTANCES: u32 = 1024;

/// The address to register for a listener bound at `bound`: `advertise_host` with the bound
/// port when set.
fn advertised(config: &Config, bound: SocketAddr) -> String {
    match &config.advertise_host {
        Some(host) => format!("{host}:{}", bound.port()),
        None => bound.to_string(),
    }
}

/// What an instance is called.
enum Name<'a> {
    /// `{prefix}{n}`, `n` the lowest of coord's free instance ids of the service.
    Numbered(&'a str),
    /// This id, held exclusively while the process runs.
    Fixed(&'a str),
}

/// Holds an instance id of `service` and registers the instance at `addr` under it.
async fn register(
    coord: &Coord,
    service: &str,
    name: Name<'_>,
    addr: String,
) -> Result<(String, InstanceId, Registration), StartError> {
    let (held, id) = match name {
        Name::Numbered(prefix) => {
            let held = coord.instance_ids(service, MAX_INSTANCES).await;
            let held = held.map_err(|e| Base::fail("instance id", &e))?;
            let id = format!("{prefix}{}", held.id());
            (held, id)
        }
        Name::Fixed(id) => {
            let held = coord.instance_ids(&format!("{service}-{id}"), 1).await;
            (
                held.map_err(|e| Base::fail("instance id", &e))?,
                id.to_owned(),
            )
        }
    };
    let registration = coord
        .registry()
        .register(Instance::new(service, id.clone(), addr), REGISTRATION_TTL)
        .await
        .map_err(|e| Base::fail("registration", &e))?;
    Ok((id, held, registration))
}

/// The token internal gRPC calls carry and require; none when unset (development).
fn service_token(config: &Config) -> Result<Option<ServiceToken>, StartError> {
    let token = config.service_token.expose();
    if token.is_empty() {
        return Ok(None);
    }
    ServiceToken::new(token)
        .map(Some)
        .map_err(|e| Base::fail("service_token", &e))
}

/// A gRPC server builder, over mutual TLS when `grpc_tls` is set.
fn grpc_server(config: &Config) -> Result<Server, StartError> {
    let builder = Server::builder();
    match config
        .grpc_tls
        .server()
        .map_err(|e| Base::fail("grpc_tls", &e))?
    {
        Some(tls) => builder
            .tls_config(tls)
            .map_err(|e| Base::fail("grpc_tls", &e)),
        None => Ok(builder),
    }
}

/// A channel balanced over the instances of `service`, over mutual TLS when `grpc_tls` is set.
fn channel(config: &Config, coord: &Coord, service: &'static str) -> Result<Channel, StartError> {
    let tls = config
        .grpc_tls
        .client()
        .map_err(|e| Base::fail("grpc_tls", &e))?;
    coord
        .registry()
        .balanced_channel_with(service, tls)
        .map_err(|e| Base::fail(service, &e))
}

/// Binds the gRPC listener of `config.grpc_addr`.
fn grpc_listener(config: &Config) -> Result<(TcpIncoming, SocketAddr), StartError> {
    let addr: SocketAddr = config
        .grpc_addr
        .parse()
        .map_err(|e| Base::fail("grpc_addr", &e))?;
    let incoming = TcpIncoming::bind(addr).map_err(|e| Base::fail("grpc listener", &e))?;
    let bound = incoming
        .local_addr()
        .map_err(|e| Base::fail("grpc listener", &e))?;
    Ok((incoming, bound))
}

/// im-repo: RepoService over gRPC on the database and cache.
///
/// # Errors
/// A [`StartError`] naming the component that could not start.
pub async fn repo(
    config: Config,
    signal: impl Future<Output = ()> + Send + 'static,
    on_listen: impl FnOnce(SocketAddr),
) -> Result<(), StartError> {
    let base = Base::new(&config, "im-repo")?;
    base.serve_metrics().await?;
    let coord = base.coord(config.coord.clone()).await?;
    let db = base.db(config.db.clone()).await?;
    let cache = base.cache(config.cache.clone()).await?;
    let ids = base.uid(config.uid.clone(), &coord).await?;
    let repo = im_repo::Repo::new(db.clone(), cache.clone(), ids, config.repo.clone())
        .await
        .map_err(|e| Base::fail("im-repo", &e))?;
    let (incoming, addr) = grpc_listener(&config)?;
    let (_, held, registration) = register(
        &coord,
        REPO_SERVICE,
        Name::Numbered("repo-"),
        advertised(&config, addr),
    )
    .await?;
    on_listen(addr);
    let served = grpc_server(&config)?
        .layer(ServerLayer::grpc(&base.metrics.meter("im-repo")).logger(base.log.clone()))
        .layer(InterceptorLayer::new(require_token(service_token(
            &config,
        )?)))
        .add_service(RepoServiceServer::new(repo.clone()))
        .serve_with_incoming_shutdown(incoming, signal)
        .await;
    registration.deregister().await;
    held.release().await;
    repo.close().await;
    db.close().await;
    base.close().await;
    served.map_err(|e| Base::fail("grpc server", &e))
}

/// im-logic: LogicService over gRPC, and the `im-upstream` consumer.
///
/// # Errors
/// A [`StartError`] naming the component that could not start.
pub async fn logic(
    config: Config,
    signal: impl Future<Output = ()> + Send + 'static,
    on_listen: impl FnOnce(SocketAddr),
) -> Result<(), StartError> {
    let base = Base::new(&config, "im-logic")?;
    base.serve_metrics().await?;
    let coord = base.coord(config.coord.clone()).await?;
    let cache = base.cache(config.cache.clone()).await?;
    let mq = base.mq(config.mq.clone()).await?;
    let ids = base.uid(config.uid.clone(), &coord).await?;
    let limiter = base
        .limiter(config.ratelimit.clone(), &cache, &coord)
        .await?;
    let breakers = base.breakers(config.breaker.clone(), &coord).await?;
    let channel = channel(&config, &coord, REPO_SERVICE)?;
    let repo = im_logic::guarded(
        Arc::new(
            RemoteRepo::new(channel)
                .with_token(service_token(&config)?)
                .with_deadline(config.grpc_deadline),
        ),
        breakers.get(REPO_SERVICE),
    );
    let topics = Topics::with_prefix(config.logic.topic_prefix.clone());
    for topic in [topics.upstream(), topics.task()] {
        mq.admin()
            .ensure_topic(&topic, config.logic.topic_partitions)
            .await
            .map_err(|e| Base::fail("mq topics", &e))?;
    }
    let deps = im_logic::Deps::new(repo, cache, ids, mq, base.log.clone()).limiter(limiter);
    let logic = Logic::new(&base.ctx, deps, config.logic.clone())
        .map_err(|e| Base::fail("im-logic", &e))?;
    let upstream = logic
        .consume_upstream()
        .await
        .map_err(|e| Base::fail("im-upstream consumer", &e))?;
    let (incoming, addr) = grpc_listener(&config)?;
    let (_, held, registration) = register(
        &coord,
        LOGIC_SERVICE,
        Name::Numbered("logic-"),
        advertised(&config, addr),
    )
    .await?;
    on_listen(addr);
    let served = grpc_server(&config)?
        .layer(ServerLayer::grpc(&base.metrics.meter("im-logic")).logger(base.log.clone()))
        .layer(InterceptorLayer::new(require_token(service_token(
            &config,
        )?)))
        .add_service(LogicServiceServer::new(logic))
        .serve_with_incoming_shutdown(incoming, signal)
        .await;
    registration.deregister().await;
    upstream.shutdown().await;
    held.release().await;
    base.close().await;
    served.map_err(|e| Base::fail("grpc server", &e))
}

/// im-task: large-group fanout, world broadcasts, offline pushes.
///
/// # Errors
/// A [`StartError`] naming the component that could not start.
pub async fn task(
    config: Config,
    signal: impl Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(),
) -> Result<(), StartError> {
    let base = Base::new(&config, "im-task")?;
    base.serve_metrics().await?;
    let coord = base.coord(config.coord.clone()).await?;
    let cache = base.cache(config.cache.clone()).await?;
    let mq = base.mq(config.mq.clone()).await?;
    let channel = channel(&config, &coord, REPO_SERVICE)?;
    let topics = Topics::with_prefix(config.logic.topic_prefix.clone());
    mq.admin()
        .ensure_topic(&topics.task(), config.logic.topic_partitions)
        .await
        .map_err(|e| Base::fail("mq topics", &e))?;
    let worker = TaskWorker::new(
        Arc::new(
            RemoteRepo::new(channel)
                .with_token(service_token(&config)?)
                .with_deadline(config.grpc_deadline),
        ),
        Router::new(cache, mq.clone(), topics),
        mq,
        coord,
        push(&config, &base.log)?,
        config.task.clone(),
        base.log.clone(),
    );
    let tasks = worker
        .run()
        .await
        .map_err(|e| Base::fail("im-task consumer", &e))?;
    on_ready();
    signal.await;
    tasks.shutdown().await;
    base.close().await;
    Ok(())
}

/// im-gateway: the HTTP API and WebSockets, calling im-logic over gRPC.
///
/// # Errors
/// A [`StartError`] naming the component that could not start.
pub async fn gateway(
    config: Config,
    signal: impl Future<Output = ()> + Send + 'static,
    on_listen: impl FnOnce(SocketAddr),
) -> Result<(), StartError> {
    let base = Base::new(&config, "im-gateway")?;
    let coord = base.coord(config.coord.clone()).await?;
    let cache = base.cache(config.cache.clone()).await?;
    let mq = base.mq(config.mq.clone()).await?;
    let limiter = base
        .limiter(config.ratelimit.clone(), &cache, &coord)
        .await?;
    let channel = channel(&config, &coord, LOGIC_SERVICE)?;
    let listener = TcpListener::bind(&config.http_addr)
        .await
        .map_err(|e| Base::fail("http listener", &e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Base::fail("http listener", &e))?;
    let name = if config.gateway_id.is_empty() {
        Name::Numbered("gw-")
    } else {
        Name::Fixed(&config.gateway_id)
    };
    let advertised = advertised(&config, addr);
    let (id, held, registration) =
        register(&coord, im_task::GATEWAY_SERVICE, name, advertised).await?;
    let deps = im_gateway::Deps::new(
        Arc::new(
            RemoteLogic::new(channel)
                .with_token(service_token(&config)?)
                .with_deadline(config.grpc_deadline),
        ),
        cache,
        mq,
        base.log.clone(),
    )
    .limiter(limiter)
    .metrics(base.metrics.clone())
    .ready(Arc::new(coord.clone()));
    let gateway = Gateway::new(&base.ctx, id, deps, config.gateway.clone())
        .await
        .map_err(|e| Base::fail("im-gateway", &e))?;
    on_listen(addr);
    let served = gateway.serve_until(listener, signal).await;
    registration.deregister().await;
    held.release().await;
    base.close().await;
    served.map_err(|e| Base::fail("im-gateway", &e))
}
