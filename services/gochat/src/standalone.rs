//! All four services in one process: im-repo on SQLite under `data_dir`, im-logic, im-task
//! and one gateway, on the in-process cache, mq and coord (unless the config names others).

use std::{future::Future, net::SocketAddr, path::Path, sync::Arc, time::Duration};

use gochat_coord::Instance;
use im_gateway::Gateway;
use im_logic::{Logic, Router, Topics};
use im_task::{LogPush, PushProvider, TaskWorker, WebhookPush};
use tokio::net::TcpListener;

use crate::{Config, StartError, parts::Base};

/// The standalone gateway's id.
pub const GATEWAY_ID: &str = "gw-1";

/// How long the gateway's registration in coord lives without renewal.
const REGISTRATION_TTL: Duration = Duration::from_secs(10);

/// The signing key under `data_dir`, made on the first start so tokens outlive restarts.
fn jwt_secret(data_dir: &Path) -> Result<String, StartError> {
    let path = data_dir.join("jwt_secret");
    match std::fs::read_to_string(&path) {
        Ok(secret) if secret.trim().len() >= 32 => Ok(secret.trim().to_owned()),
        Ok(_) => Err(Base::fail(
            "jwt secret",
            &format!("{} holds fewer than 32 bytes", path.display()),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            );
            private_file(&path)
                .and_then(|mut file| std::io::Write::write_all(&mut file, secret.as_bytes()))
                .map_err(|e| Base::fail("jwt secret", &e))?;
            Ok(secret)
        }
        Err(e) => Err(Base::fail("jwt secret", &e)),
    }
}

/// Creates `path` readable and writable by its owner only (0600): a signing key or a
/// database of password hashes is nobody else's business.
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Creates the data directory, owner-only (0700), when it does not exist yet (an existing
/// directory keeps its mode: it may be shared on purpose).
fn data_dir(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// The push provider the config names.
pub(crate) fn push(
    config: &Config,
    log: &gochat_clog::Logger,
) -> Result<Arc<dyn PushProvider>, StartError> {
    Ok(match &config.push.webhook {
        Some(url) => Arc::new(
            WebhookPush::new(url.clone(), config.push.timeout)
                .map_err(|e| Base::fail("push webhook", &e))?,
        ),
        None => Arc::new(LogPush::new(log.clone())),
    })
}

/// Runs gochat until `signal` completes, then shuts down in order: the gateway (kicks and
/// drains sockets), the consumers, the providers. `on_listen` is told the bound address.
///
/// # Errors
/// A [`StartError`] naming the component that could not start.
pub async fn run(
    mut config: Config,
    signal: impl Future<Output = ()> + Send + 'static,
    on_listen: impl FnOnce(SocketAddr),
) -> Result<(), StartError> {
    data_dir(&config.data_dir).map_err(|e| Base::fail("data dir", &e))?;
    if config.db.primary == gochat_db::Config::default().primary {
        let file = config.data_dir.join("gochat.db");
        // SQLite gives its -wal and -shm files the database file's mode.
        match private_file(&file) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Base::fail("database file", &e)),
        }
        config.db.primary = format!("sqlite://{}?mode=rwc", file.display());
    }
    if !config.logic.has_signing_key() {
        config.logic.jwt_secret = jwt_secret(&config.data_dir)?.into();
    }
    let gateway_id = if config.gateway_id.is_empty() {
        GATEWAY_ID.to_owned()
    } else {
        config.gateway_id.clone()
    };
    let base = Base::new(&config, "gochat")?;
    let db = base.db(config.db.clone()).await?;
    let cache = base.cache(config.cache.clone()).await?;
    let mq = base.mq(config.mq.clone()).await?;
    let coord = base.coord(config.coord.clone()).await?;
    let ids = base.uid(config.uid.clone(), &coord).await?;
    let limiter = base
        .limiter(config.ratelimit.clone(), &cache, &coord)
        .await?;
    let repo = im_repo::Repo::new(db.clone(), cache.clone(), ids.clone(), config.repo.clone())
        .await
        .map_err(|e| Base::fail("im-repo", &e))?;
    let topics = Topics::with_prefix(config.logic.topic_prefix.clone());
    for topic in [topics.upstream(), topics.task()] {
        mq.admin()
            .ensure_topic(&topic, config.logic.topic_partitions)
            .await
            .map_err(|e| Base::fail("mq topics", &e))?;
    }
    let deps = im_logic::Deps::new(
        Arc::new(repo.clone()),
        cache.clone(),
        ids.clone(),
        mq.clone(),
        base.log.clone(),
    )
    .limiter(limiter.clone());
    let logic = Logic::new(&base.ctx, deps, config.logic.clone())
        .map_err(|e| Base::fail("im-logic", &e))?;
    // The cache may live in memory: the sessions ended before a restart stay ended.
    logic
        .restore_revocations()
        .await
        .map_err(|e| Base::fail("revoked sessions", &e))?;
    let upstream = logic
        .consume_upstream()
        .await
        .map_err(|e| Base::fail("im-logic upstream consumer", &e))?;
    let worker = TaskWorker::new(
        Arc::new(repo.clone()),
        Router::new(cache.clone(), mq.clone(), topics),
        mq.clone(),
        coord.clone(),
        push(&config, &base.log)?,
        config.task.clone(),
        base.log.clone(),
    );
    let tasks = worker
        .run()
        .await
        .map_err(|e| Base::fail("im-task consumer", &e))?;

    let listener = TcpListener::bind(&config.http_addr)
        .await
        .map_err(|e| Base::fail("http listener", &e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Base::fail("http listener", &e))?;
    let registration = coord
        .registry()
        .register(
            Instance::new(
                im_task::GATEWAY_SERVICE,
                gateway_id.clone(),
                addr.to_string(),
            ),
            REGISTRATION_TTL,
        )
        .await
        .map_err(|e| Base::fail("gateway registration", &e))?;
    let gateway_deps =
        im_gateway::Deps::new(Arc::new(logic), cache.clone(), mq.clone(), base.log.clone())
            .limiter(limiter)
            .metrics(base.metrics.clone())
            .ready(Arc::new(db.clone()));
    let gateway = Gateway::new(&base.ctx, gateway_id, gateway_deps, config.gateway.clone())
        .await
        .map_err(|e| Base::fail("im-gateway", &e))?;
    base.log.info(format!("gochat: listening on {addr}"));
    on_listen(addr);
    let served = gateway.serve_until(listener, signal).await;

    registration.deregister().await;
    upstream.shutdown().await;
    tasks.shutdown().await;
    repo.close().await;
    db.close().await;
    base.close().await;
    served.map_err(|e| Base::fail("im-gateway", &e))
}
