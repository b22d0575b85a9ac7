//! The kit's "unified initialisation": every component from one config, in dependency order,
//! a small axum service using them all, and a graceful stop on Ctrl-C or SIGTERM.
//!
//! ```sh
//! cargo run -p example-whole-stack                       # standalone: nothing to install
//! scripts/engines up                                     # then, on the real engines:
//! cargo run -p example-whole-stack -- --config examples/whole-stack/distributed.toml
//! curl -s localhost:3000/
//! curl -s -XPOST localhost:3000/notes -H 'content-type: application/json' \
//!      -H 'idempotency-key: k1' -d '{"text":"hello"}'
//! ```

mod config;
mod notes;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    routing::{get, post},
};
use gochat_kit::{
    db::sea_orm::{ConnectionTrait, Schema},
    prelude::*,
};

use crate::{config::AppConfig, notes::App};

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Names the step that failed.
fn step<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> Failure {
    move |e| format!("{what}: {e}").into()
}

/// `--config FILE` (or `GOCHAT_CONFIG`), over the defaults for `GOCHAT_ENV`.
fn loader() -> Result<Loader, Failure> {
    let mut loader = Loader::from_process()?;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--config", Some(file)) => loader = loader.file(file),
            _ => return Err(format!("unknown argument {arg:?}; usage: [--config FILE]").into()),
        }
    }
    Ok(loader)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("whole-stack: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Failure> {
    let loader = loader()?;
    let mut config: AppConfig = loader.load()?;
    // The providers' background tasks live in `ctx`; Ctrl-C and SIGTERM only end `stop`, so
    // everything keeps working while the service winds down in order.
    let (ctx, stop) = (Context::new(), Context::new());
    stop.cancel_on_shutdown_signal();

    // 1. The log and metrics: everything after reports through them.
    let log = clog::init(
        config.log.clone(),
        clog::Options::default().namespace(&config.service),
    )?;
    let metrics = metrics::new(
        &ctx,
        config.metrics.clone(),
        metrics::Options::default().logger(log.clone()),
    )?;
    if config.metrics.listen.is_some() {
        let at = metrics.serve().await?;
        log.info(format!("metrics on http://{at}/metrics"));
    }
    let meter = |name| metrics.meter(name);

    // 2. coord, and the settings kept in it: the loader's last layer.
    let coord = coord::new(
        &ctx,
        config.coord.clone(),
        coord::Options::default()
            .logger(log.clone())
            .metrics(meter("coord")),
    )
    .await
    .map_err(step("coord"))?;
    let scope = coord.config().scope(&config.service, "settings")?;
    let from_coord = scope.tree().await?;
    if from_coord.as_object().is_some_and(|o| !o.is_empty()) {
        config = loader
            .layer(format!("coord ({}/settings)", config.service), from_coord)
            .load()?;
        log.info("settings from coord applied");
    }

    // 3. Everything that needs coord, the cache or both.
    let uid = uid::new(
        &ctx,
        config.uid.clone(),
        uid::Options::default()
            .coord(coord.clone())
            .logger(log.clone()),
    )
    .await
    .map_err(step("uid"))?;
    let cache = cache::new(
        &ctx,
        config.cache.clone(),
        cache::Options::default()
            .logger(log.clone())
            .metrics(meter("cache")),
    )
    .await
    .map_err(step("cache"))?;
    let db = db::new(
        &ctx,
        config.db.clone(),
        db::Options::default()
            .logger(log.clone())
            .metrics(meter("db")),
    )
    .await
    .map_err(step("db"))?;
    let backend = db.connection().get_database_backend();
    let table = Schema::new(backend)
        .create_table_from_entity(notes::entity::Entity)
        .if_not_exists()
        .to_owned();
    db.connection()
        .execute(&table)
        .await
        .map_err(step("db schema"))?;
    let mq = mq::new(
        &ctx,
        config.mq.clone(),
        mq::Options::default()
            .logger(log.clone())
            .metrics(meter("mq")),
    )
    .await
    .map_err(step("mq"))?;
    mq.admin()
        .ensure_topic(notes::TOPIC, 4)
        .await
        .map_err(step("mq topic"))?;
    let limiter = ratelimit::new(
        &ctx,
        config.ratelimit.clone(),
        ratelimit::Options::default()
            .cache(cache.clone())
            .logger(log.clone())
            .metrics(meter("ratelimit")),
    )
    .await
    .map_err(step("ratelimit"))?;
    let once = once::new(
        &ctx,
        config.once.clone(),
        once::Options::default().cache(cache.clone()),
    )
    .await
    .map_err(step("once"))?;
    let breakers = breaker::new(
        &ctx,
        config.breaker.clone(),
        breaker::Options::default()
            .coord(coord.clone())
            .logger(log.clone())
            .metrics(meter("breaker")),
    )
    .await
    .map_err(step("breaker"))?;

    // 4. A consumer of what the service announces.
    let announced = Arc::new(AtomicU64::new(0));
    let counter = announced.clone();
    let subscription = mq
        .consumer(&config.service)
        .subscribe(&[notes::TOPIC], move |_message: mq::Received| {
            counter.fetch_add(1, Ordering::Relaxed);
            std::future::ready(Ok::<_, mq::HandlerError>(()))
        })
        .await
        .map_err(step("mq consumer"))?;

    // 5. Serve, registered in coord while serving.
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(step("listen"))?;
    let addr: SocketAddr = listener.local_addr()?;
    let instance = coord::Instance::new(
        &config.service,
        format!("{}-{}", config.service, std::process::id()),
        addr.to_string(),
    );
    let registration = coord
        .registry()
        .register(instance, Duration::from_secs(10))
        .await?;
    let health: Vec<Arc<dyn Lifecycle>> = vec![
        Arc::new(coord.clone()),
        Arc::new(uid.clone()),
        Arc::new(cache.clone()),
        Arc::new(db.clone()),
        Arc::new(mq.clone()),
    ];
    let backends = serde_json::json!({
        "coord": matches!(config.coord.backend, coord::Backend::Memory(_)).then_some("memory").unwrap_or("etcd"),
        "cache": matches!(config.cache.backend, cache::Backend::Memory(_)).then_some("memory").unwrap_or("redis"),
        "mq": matches!(config.mq.backend, mq::Backend::Memory(_)).then_some("memory").unwrap_or("kafka"),
        "db": backend_name(&config.db.primary),
    });
    let app = Arc::new(App {
        service: config.service.clone(),
        greeting: config.greeting.clone(),
        backends,
        uid: uid.clone(),
        cache: cache.clone(),
        db: db.clone(),
        mq: mq.clone(),
        limiter: limiter.clone(),
        once,
        breakers: breakers.clone(),
        coord: coord.clone(),
        announced,
        health,
    });
    let router = Router::new()
        .route("/", get(notes::index))
        .route("/notes", post(notes::create))
        .route("/notes/{id}", get(notes::read))
        .route("/stats", get(notes::stats))
        .route("/healthz", get(notes::health))
        .with_state(app);
    log.info(format!("listening on http://{addr}"));
    println!("whole-stack: listening on http://{addr}");
    axum::serve(listener, router)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
        .map_err(step("serve"))?;

    // 6. Stop in reverse order: leave the registry, finish consuming, close each provider.
    log.info("stopping");
    registration.deregister().await;
    subscription.shutdown().await;
    breakers.close().await;
    limiter.close().await;
    mq.close().await;
    db.close().await;
    cache.close().await;
    uid.close().await;
    coord.close().await;
    if ctx.shutdown(Duration::from_secs(10)).await.is_err() {
        log.warn("background tasks still running after 10 s");
    }
    metrics.close().await;
    log.flush_and_close();
    println!("whole-stack: stopped");
    Ok(())
}

fn backend_name(dsn: &str) -> &'static str {
    match dsn.split(':').next() {
        Some("postgres" | "postgresql") => "postgres",
        Some("mysql" | "mariadb") => "mysql",
        _ => "sqlite",
    }
}
