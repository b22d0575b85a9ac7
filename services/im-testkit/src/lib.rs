//! The IM services assembled for tests, on either backend of a behaviour suite:
//! [`standalone`] (SQLite, in-process cache, mq and coord) or [`engines`] (PostgreSQL with
//! messages in four shards, Redis, the Kafka-protocol broker, etcd), each case with a
//! database, key prefix, topic prefix and coord root of its own.
//!
//! ```no_run
//! use gochat_testkit::{Fixture, behaviour_suite};
//! use im_testkit::{Cluster, engines, standalone};
//!
//! async fn sends(cluster: Cluster, _fx: Fixture) {
//!     let stack = cluster.stack(500).await.unwrap();
//!     # let _ = stack;
//! }
//!
//! behaviour_suite! { backends: [standalone, engines], cases: [sends] }
//! ```

use std::{sync::Arc, time::Duration};

use gochat_core::{Context, Env};
use gochat_testkit::{Engine, Fixture, endpoint};

/// The JWT key of test stacks.
pub const JWT_SECRET: &str = "tK7q9ZpV2mX4bR8nW1cL6yHf3sJd0gAe5uQo";

/// A backend of the stack could not be set up: names which, and why.
#[derive(Debug, thiserror::Error)]
#[error("setting up {what}: {reason}")]
pub struct SetupError {
    /// The backend or service.
    pub what: &'static str,
    /// Why.
    pub reason: String,
}

fn setup(what: &'static str) -> impl FnOnce(&dyn std::fmt::Display) -> SetupError {
    move |e| SetupError {
        what,
        reason: e.to_string(),
    }
}

/// One case's backends.
#[derive(Debug)]
pub struct Cluster {
    db: gochat_db::Config,
    /// The PostgreSQL server and the database to create on it before the first stack.
    create: Option<(String, String)>,
    sharded: bool,
    cache: gochat_cache::Config,
    mq: gochat_mq::Config,
    coord: gochat_coord::Config,
    topic_prefix: String,
    _dir: Option<tempfile::TempDir>,
}

/// The services built on a [`Cluster`].
#[non_exhaustive]
pub struct Stack {
    /// im-logic.
    pub logic: im_logic::Logic,
    /// What im-logic was built on (to build variants of it).
    pub deps: im_logic::Deps,
    /// im-logic's config.
    pub config: im_logic::Config,
    /// im-repo, in process.
    pub repo: im_repo::Repo,
    /// The cache.
    pub cache: gochat_cache::Cache,
    /// The bus.
    pub mq: gochat_mq::Mq,
    /// Coordination.
    pub coord: gochat_coord::Coord,
    /// This case's topics.
    pub topics: im_logic::Topics,
}

/// Consumers retry failed handlers three times, 1 ms apart, so retry cases finish quickly.
fn retry_fast(mut mq: gochat_mq::Config) -> gochat_mq::Config {
    mq.consumer.max_retries = 3;
    mq.consumer.retry_backoff = Duration::from_millis(1);
    mq
}

/// In-process backends: a SQLite file, the in-process cache, mq and coord.
pub async fn standalone(fx: Fixture) -> Option<Cluster> {
    let dir = tempfile::tempdir().ok()?;
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("gochat.db").display()
    );
    let mut cache = gochat_cache::Config::for_env(Env::Development);
    cache.backend = gochat_cache::Backend::Memory(gochat_cache::MemoryConfig::named(fx.prefix()));
    let mut mq = gochat_mq::Config::for_env(Env::Development);
    mq.backend = gochat_mq::Backend::Memory(gochat_mq::MemoryConfig::named(fx.prefix()));
    let mut coord = gochat_coord::Config::for_env(Env::Development);
    coord.backend = gochat_coord::Backend::Memory(gochat_coord::MemoryConfig::named(fx.prefix()));
    Some(Cluster {
        db: gochat_db::Config::with_primary(Env::Development, url),
        create: None,
        sharded: false,
        cache,
        mq: retry_fast(mq),
        coord,
        topic_prefix: String::new(),
        _dir: Some(dir),
    })
}

/// The real engines from `scripts/engines`: a fresh PostgreSQL database (made by
/// [`Cluster::stack`]) with messages in four shards, Redis, the Kafka-protocol broker and
/// etcd, all under this case's prefixes.
pub async fn engines(fx: Fixture) -> Option<Cluster> {
    let pg = endpoint(Engine::Postgres).await?;
    let redis = endpoint(Engine::Redis).await?;
    let kafka = endpoint(Engine::Kafka).await?;
    let etcd = endpoint(Engine::Etcd).await?;
    let name = fx.name("im");
    let base = pg.rsplit_once('/').map_or(pg.as_str(), |(base, _)| base);
    let mut db = gochat_db::Config::with_primary(Env::Development, format!("{base}/{name}"));
    db.sharding.tables.insert("messages".into(), 4);
    let mut cache = gochat_cache::Config::for_env(Env::Development);
    cache.backend = gochat_cache::Backend::Redis(Box::new(gochat_cache::RedisConfig::with_url(
        Env::Development,
        redis,
    )));
    cache.key_prefix = format!("{}:", fx.prefix());
    let mut broker = gochat_mq::KafkaConfig::with_brokers(Env::Development, &kafka);
    // tansu 0.6 holds a resumed partition's fetch for the whole wait (docs/testing.md).
    broker
        .properties
        .insert("fetch.wait.max.ms".into(), "10".into());
    let mut mq = gochat_mq::Config::for_env(Env::Development);
    mq.backend = gochat_mq::Backend::Kafka(Box::new(broker));
    let mut coord = gochat_coord::Config::for_env(Env::Development);
    coord.root = fx.prefix().trim_end_matches('_').to_owned();
    coord.backend = gochat_coord::Backend::Etcd(Box::new(
        gochat_coord::EtcdConfig::with_endpoints(Env::Development, &etcd),
    ));
    Some(Cluster {
        db,
        create: Some((pg, name)),
        sharded: true,
        cache,
        mq: retry_fast(mq),
        coord,
        topic_prefix: fx.prefix().to_owned(),
        _dir: None,
    })
}

impl Cluster {
    /// im-repo and im-logic on this cluster (once per case: on the engines it creates the
    /// case's database); groups above `small_group_limit` members go through im-task.
    ///
    /// # Errors
    /// A [`SetupError`] naming the backend that could not be set up.
    pub async fn stack(&self, small_group_limit: usize) -> Result<Stack, SetupError> {
        if let Some((server, name)) = &self.create {
            use gochat_db::sea_orm::{ConnectionTrait, Database};
            let admin = Database::connect(server.as_str())
                .await
                .map_err(|e| setup("PostgreSQL")(&e))?;
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .map_err(|e| setup("the case's PostgreSQL database")(&e))?;
        }
        let ctx = Context::new();
        let mut options = gochat_db::Options::default().migrator::<im_repo::Migrator>();
        if self.sharded {
            options = options.shard_schema(im_repo::messages_shards());
        }
        let db = gochat_db::new(&ctx, self.db.clone(), options)
            .await
            .map_err(|e| setup("db")(&e))?;
        let cache = gochat_cache::new(&ctx, self.cache.clone(), Default::default())
            .await
            .map_err(|e| setup("cache")(&e))?;
        let ids = gochat_uid::new(
            &ctx,
            gochat_uid::Config::for_env(Env::Development),
            Default::default(),
        )
        .await
        .map_err(|e| setup("uid")(&e))?;
        let repo = im_repo::Repo::new(db, cache.clone(), ids.clone(), im_repo::Config::default())
            .await
            .map_err(|e| setup("im-repo")(&e))?;
        let mq = gochat_mq::new(&ctx, self.mq.clone(), Default::default())
            .await
            .map_err(|e| setup("mq")(&e))?;
        let coord = gochat_coord::new(&ctx, self.coord.clone(), Default::default())
            .await
            .map_err(|e| setup("coord")(&e))?;
        let topics = im_logic::Topics::with_prefix(self.topic_prefix.clone());
        for topic in [topics.task(), topics.upstream()] {
            mq.admin()
                .ensure_topic(&topic, 1)
                .await
                .map_err(|e| setup("topics")(&e))?;
        }
        let mut config = im_logic::Config::default();
        config.jwt_secret = JWT_SECRET.into();
        config.small_group_limit = small_group_limit;
        config.topic_prefix = self.topic_prefix.clone();
        let deps = im_logic::Deps::new(
            Arc::new(repo.clone()),
            cache.clone(),
            ids,
            mq.clone(),
            gochat_clog::Logger::current(),
        );
        let logic = im_logic::Logic::new(&ctx, deps.clone(), config.clone())
            .map_err(|e| setup("im-logic")(&e))?;
        Ok(Stack {
            logic,
            deps,
            config,
            repo,
            cache,
            mq,
            coord,
            topics,
        })
    }
}
