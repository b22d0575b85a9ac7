#![doc = include_str!("../README.md")]
// Library code returns typed errors; only proven invariants may panic (with a comment).
#![warn(clippy::unwrap_used)]

mod config;
mod error;
mod metrics;
mod migrate;
mod replicas;
mod shard;
mod stats;

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use gochat_clog::Logger;
use gochat_core::{BoxFuture, Context, Health, Lifecycle, redact_url};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend};

pub use config::{Config, PoolConfig, ShardingConfig};
pub use error::{Error, TxError};
pub use migrate::ShardSchema;
/// The sea-orm this crate is built on, so entities and queries use the same version.
pub use sea_orm;
/// The sea-orm-migration this crate runs, for writing migrations.
pub use sea_orm_migration;
pub use shard::{Shard, ShardKey};
pub use stats::Stats;

use error::Result;
use migrate::Migrations;
use replicas::Replicas;
use stats::Counters;

/// Injected dependencies: the logger, migrations, shard table schemas.
#[derive(Default, Clone)]
#[non_exhaustive]
pub struct Options {
    logger: Option<Logger>,
    metrics: Option<opentelemetry::metrics::Meter>,
    migrations: Migrations,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("logger", &self.logger.is_some())
            .field("metrics", &self.metrics.is_some())
            .field("migrations", &self.migrations)
            .finish()
    }
}

impl Options {
    /// The logger (namespace `db` is added). Default: the global logger.
    #[must_use]
    pub fn logger(mut self, logger: Logger) -> Self {
        self.logger = Some(logger);
        self
    }

    /// The meter this component reports its figures to (docs/metrics.md lists them), e.g.
    /// `gochat_metrics::Metrics::meter("db")`. Default: the global meter provider
    /// (`gochat_metrics::Metrics::install_global`; a no-op until one is installed).
    #[must_use]
    pub fn metrics(mut self, meter: opentelemetry::metrics::Meter) -> Self {
        self.metrics = Some(meter);
        self
    }

    /// The sea-orm-migration migrator [`Db::migrate`] runs on the primary.
    #[must_use]
    pub fn migrator<M: sea_orm_migration::MigratorTrait + 'static>(mut self) -> Self {
        self.migrations.migrator = Some(migrate::runner::<M>());
        self
    }

    /// How each table of a sharded table is created: [`Db::migrate`] creates every shard
    /// (`IF NOT EXISTS`) in its database.
    #[must_use]
    pub fn shard_schema(mut self, schema: ShardSchema) -> Self {
        self.migrations.shards.push(schema);
        self
    }
}

/// Builds a db Provider: connects to the primary (and, lazily, to replicas and shard
/// databases), runs migrations when `auto_migrate` is set, and starts the replica checks.
///
/// # Errors
/// [`Error::Config`] naming a bad field; [`Error::Unavailable`] when the primary cannot be
/// reached; [`Error::Migration`].
pub async fn new(ctx: &Context, config: Config, opts: Options) -> Result<Db> {
    config.validate()?;
    let log = opts
        .logger
        .unwrap_or_else(gochat_clog::global)
        .namespace("db");
    let meter = gochat_core::observe::meter_or_global(opts.metrics.as_ref(), "db");
    let counters = Arc::new(Counters::new(Some(metrics::histogram(&meter))));
    let primary = connect(&config.primary, false, &config, &counters, &log).await?;
    let mut shard_databases = Vec::new();
    for dsn in &config.sharding.databases {
        shard_databases.push(connect(dsn, false, &config, &counters, &log).await?);
    }
    let db = Db {
        shared: Arc::new(Shared {
            backend: primary.get_database_backend(),
            primary,
            replicas: Replicas::new(&config.replicas, redact_url),
            shard_databases,
            shard_names: migrate::shard_names(&config.sharding),
            migrations: opts.migrations,
            counters,
            log: log.clone(),
            ctx: ctx.child(),
            closed: AtomicBool::new(false),
            config,
        }),
    };
    metrics::register(&meter, &Arc::downgrade(&db.shared.counters));
    if db.shared.config.auto_migrate {
        db.migrate().await?;
    }
    db.check_replicas().await;
    let shared = &db.shared;
    if !shared.config.replicas.is_empty() {
        let checked = db.clone();
        shared.ctx.spawn(async move {
            let shared = &checked.shared;
            let mut tick = tokio::time::interval(shared.config.replica_check_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while shared.ctx.run_until_cancelled(tick.tick()).await.is_some() {
                checked.check_replicas().await;
            }
        });
    }
    gochat_clog::info!(
        log,
        backend = ?shared.backend,
        primary = redact_url(&shared.config.primary),
        replicas = shared.config.replicas.len(),
        "db ready"
    );
    Ok(db)
}

async fn connect(
    dsn: &str,
    lazy: bool,
    config: &Config,
    counters: &Arc<Counters>,
    log: &Logger,
) -> Result<DatabaseConnection> {
    let pool = &config.pool;
    let mut options = ConnectOptions::new(dsn);
    options
        .max_connections(pool.max_connections)
        .min_connections(pool.min_connections)
        .connect_timeout(pool.connect_timeout)
        .acquire_timeout(pool.acquire_timeout)
        .idle_timeout(pool.idle_timeout)
        .sqlx_logging(false)
        .connect_lazy(lazy);
    if config::is_sqlite_memory(dsn) {
        // An in-memory database lives as long as its connection: keep exactly one, forever.
        options
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None::<Duration>)
            .max_lifetime(None::<Duration>);
    } else if dsn.starts_with("sqlite:") && !dsn.contains("mode=ro") {
        // WAL lets readers work while a writer commits; a read-only file keeps its mode.
        options.map_sqlx_sqlite_opts(|sqlite| {
            sqlite
                .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(5))
        });
    }
    let mut connection = Database::connect(options)
        .await
        .map_err(|e| Error::Unavailable(format!("connecting to {}: {e}", redact_url(dsn))))?;
    let (counters, slow, log) = (counters.clone(), config.slow_query, log.clone());
    connection.set_metric_callback(move |info| counters.record(info, slow, &log));
    Ok(connection)
}

/// The db Provider: a cheap `Clone` handle.
#[derive(Clone)]
pub struct Db {
    shared: Arc<Shared>,
}

struct Shared {
    config: Config,
    backend: DbBackend,
    primary: DatabaseConnection,
    replicas: Replicas,
    shard_databases: Vec<DatabaseConnection>,
    /// Per sharded table: every shard's name, in order.
    shard_names: std::collections::BTreeMap<String, Vec<String>>,
    migrations: Migrations,
    counters: Arc<Counters>,
    log: Logger,
    ctx: Context,
    closed: AtomicBool,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.shared.backend)
            .field("primary", &redact_url(&self.shared.config.primary))
            .finish()
    }
}

impl Db {
    /// The primary: for writes, and reads that must see them.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.shared.primary
    }

    /// A healthy replica (round robin), or the primary when none is healthy (or none is
    /// configured). Replicas lag the primary: read your own writes from
    /// [`Db::connection`].
    pub fn reader(&self) -> &DatabaseConnection {
        self.shared.replicas.pick().unwrap_or(&self.shared.primary)
    }

    /// Whether each configured replica answered its last check, in config order.
    pub fn replica_health(&self) -> Vec<bool> {
        self.shared.replicas.health()
    }

    /// Checks the replicas now instead of waiting for the next background check.
    pub async fn check_replicas(&self) {
        let shared = &self.shared;
        let connect = |dsn: String| async move {
            connect(&dsn, true, &shared.config, &shared.counters, &shared.log).await
        };
        shared
            .replicas
            .check(connect, shared.config.pool.connect_timeout, &shared.log)
            .await;
    }

    /// Runs `body` in a transaction on the primary: committed when it returns `Ok`, rolled
    /// back when it returns `Err` or panics. Inside, `tx.transaction_async(…)` nests a
    /// transaction as a savepoint.
    ///
    /// ```
    /// # use gochat_core::{Context, Env};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use gochat_db::{Config, Options, TxError, sea_orm::ConnectionTrait};
    ///
    /// let db = gochat_db::new(&Context::new(), Config::with_primary(Env::Development, "sqlite::memory:"), Options::default()).await?;
    /// db.connection().execute_unprepared("CREATE TABLE t (n INTEGER)").await?;
    /// let failed = db
    ///     .transaction(async |tx| {
    ///         tx.execute_unprepared("INSERT INTO t VALUES (1)").await?;
    ///         Err::<(), _>(gochat_db::sea_orm::DbErr::Custom("changed my mind".into()))
    ///     })
    ///     .await;
    /// assert!(matches!(failed, Err(TxError::Rollback(_))));
    /// let rows = db.connection().query_all_raw(gochat_db::sea_orm::Statement::from_string(
    ///     db.backend(), "SELECT n FROM t")).await?;
    /// assert!(rows.is_empty(), "rolled back");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`TxError::Rollback`] with `body`'s error; [`TxError::Db`] when beginning or
    /// committing failed.
    pub async fn transaction<F, T, E>(&self, body: F) -> Result<T, TxError<E>>
    where
        F: for<'c> AsyncFnOnce(&'c DatabaseTransaction) -> Result<T, E> + Send,
        T: Send,
        E: std::error::Error + Send,
    {
        self.shared
            .primary
            .transaction_async(body)
            .await
            .map_err(TxError::from)
    }

    /// The shard of `table` that `key` belongs to.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `table` is not in `sharding.tables`.
    pub fn shard<K: ShardKey + ?Sized>(&self, table: &str, key: &K) -> Result<Shard<'_>> {
        let shared = &self.shared;
        let (table, names) = shared
            .shard_names
            .get_key_value(table)
            .ok_or_else(|| Error::InvalidArgument(format!("{table} is not a sharded table")))?;
        let count = u32::try_from(names.len()).unwrap_or(u32::MAX);
        let index = key.shard_of(count);
        Ok(Shard {
            table,
            name: &names[index as usize],
            index,
            connection: self.shard_database(index),
        })
    }

    pub(crate) fn shard_database(&self, index: u32) -> &DatabaseConnection {
        let databases = &self.shared.shard_databases;
        if databases.is_empty() {
            &self.shared.primary
        } else {
            &databases[index as usize % databases.len()]
        }
    }

    /// Runs the migrator on the primary, then creates missing shard tables. Idempotent.
    ///
    /// # Errors
    /// [`Error::Migration`] naming what failed.
    pub async fn migrate(&self) -> Result<()> {
        migrate::run(self).await
    }

    /// The engine: MySQL, PostgreSQL or SQLite.
    pub fn backend(&self) -> DbBackend {
        self.shared.backend
    }

    /// Query counters since `new`.
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// Whether the primary answers.
    pub async fn health(&self) -> Health {
        if self.shared.closed.load(Ordering::SeqCst) {
            return Health::down(Error::Closed.to_string());
        }
        match self.shared.primary.ping().await {
            Ok(()) => Health::up(),
            Err(e) => Health::down(Error::from_db(e).to_string()),
        }
    }

    /// Stops the replica checks and closes every pool. Idempotent.
    pub async fn close(&self) {
        let shared = &self.shared;
        if shared.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = shared.ctx.shutdown(Duration::from_secs(5)).await;
        let pools = std::iter::once(&shared.primary)
            .chain(shared.replicas.connections())
            .chain(&shared.shard_databases);
        for pool in pools {
            if let Err(e) = pool.close_by_ref().await {
                gochat_clog::warn!(shared.log, error = %e, "closing a pool failed");
            }
        }
    }
}

impl Lifecycle for Db {
    fn name(&self) -> &str {
        "db"
    }

    fn health(&self) -> BoxFuture<'_, Health> {
        Box::pin(Db::health(self))
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(Db::close(self))
    }
}
