//! Migrations: the application's sea-orm-migration migrator, then every shard table.

use std::{collections::BTreeMap, fmt, sync::Arc};

use gochat_core::BoxFuture;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, sea_query::TableCreateStatement};

use crate::{Db, Error, ShardingConfig, error::Result, shard::shard_table};

type Runner =
    Arc<dyn Fn(DatabaseConnection) -> BoxFuture<'static, Result<(), DbErr>> + Send + Sync>;

#[derive(Clone, Default)]
pub(crate) struct Migrations {
    pub(crate) migrator: Option<Runner>,
    pub(crate) shards: Vec<ShardSchema>,
}

impl fmt::Debug for Migrations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Migrations")
            .field("migrator", &self.migrator.is_some())
            .field("shards", &self.shards)
            .finish()
    }
}

pub(crate) fn runner<M: sea_orm_migration::MigratorTrait + 'static>() -> Runner {
    Arc::new(|db| Box::pin(async move { M::up(&db, None).await }))
}

/// How each table of a sharded table is created: a function from the shard's name
/// (`messages_07`) to its `CREATE TABLE`. Given to [`Options::shard_schema`](crate::Options::shard_schema).
///
/// ```
/// use gochat_db::{ShardSchema, sea_orm::sea_query::{Alias, ColumnDef, Table}};
///
/// let messages = ShardSchema::new("messages", |name| {
///     Table::create()
///         .table(Alias::new(name))
///         .col(ColumnDef::new(Alias::new("id")).big_integer().not_null().primary_key())
///         .col(ColumnDef::new(Alias::new("body")).text().not_null())
///         .to_owned()
/// });
/// assert_eq!(messages.table(), "messages");
/// ```
#[derive(Clone)]
pub struct ShardSchema {
    table: String,
    create: Arc<dyn Fn(&str) -> TableCreateStatement + Send + Sync>,
}

impl ShardSchema {
    /// The schema of sharded table `table`.
    pub fn new(
        table: impl Into<String>,
        create: impl Fn(&str) -> TableCreateStatement + Send + Sync + 'static,
    ) -> Self {
        Self {
            table: table.into(),
            create: Arc::new(create),
        }
    }

    /// The sharded table.
    pub fn table(&self) -> &str {
        &self.table
    }
}

impl fmt::Debug for ShardSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardSchema")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

pub(crate) fn shard_names(config: &ShardingConfig) -> BTreeMap<String, Vec<String>> {
    config
        .tables
        .iter()
        .map(|(table, count)| {
            let names = (0..*count).map(|i| shard_table(table, i, *count)).collect();
            (table.clone(), names)
        })
        .collect()
}

pub(crate) async fn run(db: &Db) -> Result<()> {
    let shared = &db.shared;
    let migrations = &shared.migrations;
    if let Some(migrator) = &migrations.migrator {
        migrator(shared.primary.clone())
            .await
            .map_err(|e| Error::Migration(e.to_string()))?;
    }
    for schema in &migrations.shards {
        let names = shared.shard_names.get(&schema.table).ok_or_else(|| {
            Error::Migration(format!(
                "a shard schema is given for {}, which sharding.tables does not list",
                schema.table
            ))
        })?;
        for (index, name) in (0u32..).zip(names) {
            let mut create = (schema.create)(name);
            create.if_not_exists();
            db.shard_database(index)
                .execute(&create)
                .await
                .map_err(|e| Error::Migration(format!("creating {name}: {e}")))?;
        }
    }
    gochat_clog::info!(
        shared.log,
        migrator = migrations.migrator.is_some(),
        sharded_tables = migrations.shards.len(),
        "migrations applied"
    );
    Ok(())
}
