//! The db behaviour suite: every case on SQLite, PostgreSQL and MariaDB (the real servers from
//! `scripts/engines`). Each case gets a database of its own.

use std::{sync::Arc, time::Duration};

use gochat_core::{Context, Env};
use gochat_db::{
    Config, Db, Error, Options, ShardSchema, TxError,
    sea_orm::{
        ActiveModelTrait, ColumnTrait, ConnectionTrait, Database, DbErr, EntityTrait, QueryFilter,
        Set, Statement,
        sea_query::{Alias, ColumnDef, Table},
    },
    sea_orm_migration::prelude::*,
};
use gochat_testkit::{Engine, Fixture, TcpProxy, behaviour_suite, endpoint};

mod user {
    use gochat_db::sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub(crate) struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub(crate) id: i64,
        pub(crate) name: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub(crate) enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

mod message {
    use gochat_db::sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "messages")]
    pub(crate) struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub(crate) id: i64,
        pub(crate) conversation: i64,
        pub(crate) body: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub(crate) enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The application's migrations: one table.
struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateUsers)]
    }
}

#[derive(DeriveMigrationName)]
struct CreateUsers;

// The trait's own signature elides SchemaManager's lifetime; async_trait needs it matched.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for CreateUsers {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("users"))
                    .col(
                        ColumnDef::new(Alias::new("id"))
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Alias::new("name")).string_len(64).not_null())
                    .to_owned(),
            )
            .await
    }
}

fn messages_schema() -> ShardSchema {
    ShardSchema::new("messages", |name| {
        Table::create()
            .table(Alias::new(name))
            .col(
                ColumnDef::new(Alias::new("id"))
                    .big_integer()
                    .not_null()
                    .primary_key(),
            )
            .col(
                ColumnDef::new(Alias::new("conversation"))
                    .big_integer()
                    .not_null(),
            )
            .col(ColumnDef::new(Alias::new("body")).text().not_null())
            .to_owned()
    })
}

/// One case's databases, and a way to take its replica down.
struct Cluster {
    config: Config,
    replica: Replica,
    /// Two more databases, for shards spread over databases.
    shard_databases: Vec<String>,
    /// The server and the databases made for the case, dropped at its end (PostgreSQL and
    /// MariaDB).
    created: Option<(String, Vec<String>)>,
    _dir: Option<tempfile::TempDir>,
}

enum Replica {
    /// The same server through a proxy that can be cut.
    Proxy(TcpProxy),
    /// A read-only SQLite file that exists only once copied from the primary.
    File(std::path::PathBuf),
}

impl Cluster {
    async fn db(&self) -> Db {
        self.db_with(Options::default()).await
    }

    async fn db_with(&self, options: Options) -> Db {
        let options = options
            .migrator::<Migrator>()
            .shard_schema(messages_schema());
        gochat_db::new(&Context::new(), self.config.clone(), options)
            .await
            .unwrap()
    }

    /// Makes the replica unreachable (SQLite: it does not exist until healed).
    fn fail_replica(&self) {
        if let Replica::Proxy(proxy) = &self.replica {
            proxy.cut();
        }
    }

    /// Makes the replica answer again, with the primary's current data.
    async fn heal_replica(&self, db: &Db) {
        match &self.replica {
            Replica::Proxy(proxy) => proxy.restore(),
            Replica::File(path) => {
                let _ = std::fs::remove_file(path);
                let copy = format!("VACUUM INTO '{}'", path.display());
                db.connection().execute_unprepared(&copy).await.unwrap();
            }
        }
    }

    async fn finish(self, db: Db) {
        db.close().await;
        if let Some((server, names)) = &self.created {
            let admin = Database::connect(server.as_str()).await.unwrap();
            for name in names {
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
                    .await
                    .unwrap();
            }
        }
    }
}

fn config(primary: String, replica: String) -> Config {
    let mut config = Config::with_primary(Env::Development, primary);
    config.replicas = vec![replica];
    config.pool.connect_timeout = Duration::from_secs(2);
    config.pool.acquire_timeout = Duration::from_secs(5);
    config.replica_check_interval = Duration::from_secs(3600);
    config.sharding.tables.insert("messages".into(), 4);
    config
}

async fn sqlite(_fx: Fixture) -> Option<Cluster> {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| format!("sqlite://{}?mode=rwc", dir.path().join(name).display());
    let path = dir.path().join("replica.db");
    let replica = format!("sqlite://{}?mode=ro", path.display());
    Some(Cluster {
        config: config(file("primary.db"), replica),
        replica: Replica::File(path),
        shard_databases: vec![file("shards_a.db"), file("shards_b.db")],
        created: None,
        _dir: Some(dir),
    })
}

/// Fresh databases on the server at `url`; the primary also through a proxy, as the replica.
async fn server(fx: &Fixture, url: String) -> Cluster {
    let names = [fx.name("db"), fx.name("shards_a"), fx.name("shards_b")];
    let admin = Database::connect(url.as_str()).await.unwrap();
    for name in &names {
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
    }
    admin.close().await.unwrap();
    let (base, _) = url.rsplit_once('/').unwrap();
    let host_port = base.rsplit('@').next().unwrap();
    let proxy = TcpProxy::start(host_port).await.unwrap();
    let [primary, shards_a, shards_b] = names.clone().map(|name| format!("{base}/{name}"));
    let replica = format!(
        "{}/{}",
        base.replace(host_port, &proxy.addr().to_string()),
        names[0]
    );
    Cluster {
        config: config(primary, replica),
        replica: Replica::Proxy(proxy),
        shard_databases: vec![shards_a, shards_b],
        created: Some((url, names.to_vec())),
        _dir: None,
    }
}

async fn postgres(fx: Fixture) -> Option<Cluster> {
    let url = endpoint(Engine::Postgres).await?;
    Some(server(&fx, url).await)
}

async fn mysql(fx: Fixture) -> Option<Cluster> {
    let url = endpoint(Engine::Mysql).await?;
    Some(server(&fx, url).await)
}

async fn add_user(db: &impl ConnectionTrait, id: i64, name: &str) {
    user::ActiveModel {
        id: Set(id),
        name: Set(name.to_owned()),
    }
    .insert(db)
    .await
    .unwrap();
}

async fn names(db: &impl ConnectionTrait) -> Vec<String> {
    let mut users = user::Entity::find().all(db).await.unwrap();
    users.sort_by_key(|u| u.id);
    users.into_iter().map(|u| u.name).collect()
}

async fn crud(cluster: Cluster, _fx: Fixture) {
    let db = cluster.db().await;
    let conn = db.connection();
    add_user(conn, 1, "ann").await;
    add_user(conn, 2, "bob").await;
    let ann = user::Entity::find_by_id(1)
        .one(conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ann.name, "ann");
    let mut renamed: user::ActiveModel = ann.into();
    renamed.name = Set("anna".to_owned());
    renamed.update(conn).await.unwrap();
    user::Entity::delete_by_id(2).exec(conn).await.unwrap();
    assert_eq!(names(conn).await, ["anna"]);
    let duplicate = user::ActiveModel {
        id: Set(1),
        name: Set("again".to_owned()),
    }
    .insert(conn)
    .await
    .map_err(Error::from)
    .unwrap_err();
    assert!(matches!(duplicate, Error::Query(_)), "{duplicate}");
    assert!(db.stats().queries >= 5);
    assert!(db.stats().failed >= 1);
    cluster.finish(db).await;
}

async fn a_failed_or_panicking_transaction_rolls_back(cluster: Cluster, _fx: Fixture) {
    let db = cluster.db().await;
    let committed = db
        .transaction(async |tx| {
            add_user(tx, 1, "kept").await;
            Ok::<_, DbErr>(7)
        })
        .await
        .unwrap();
    assert_eq!(committed, 7);
    let failed = db
        .transaction(async |tx| {
            add_user(tx, 2, "gone").await;
            Err::<(), _>(DbErr::Custom("business rule".into()))
        })
        .await;
    assert!(matches!(failed, Err(TxError::Rollback(DbErr::Custom(_)))));

    let panicking = db.clone();
    let panicked = tokio::spawn(async move {
        panicking
            .transaction(async |tx| {
                add_user(tx, 3, "gone too").await;
                if tx.get_database_backend() == tx.get_database_backend() {
                    panic!("handler bug");
                }
                Ok::<_, DbErr>(())
            })
            .await
    })
    .await;
    assert!(panicked.unwrap_err().is_panic());
    assert_eq!(names(db.connection()).await, ["kept"]);
    cluster.finish(db).await;
}

async fn nested_transactions_are_savepoints(cluster: Cluster, _fx: Fixture) {
    let db = cluster.db().await;
    db.transaction(async |tx| {
        add_user(tx, 1, "outer").await;
        let inner = tx
            .transaction_async(async |inner| {
                add_user(inner, 2, "inner").await;
                Err::<(), _>(DbErr::Custom("undo the inner part".into()))
            })
            .await;
        assert!(inner.is_err());
        add_user(tx, 3, "after").await;
        Ok::<_, DbErr>(())
    })
    .await
    .unwrap();
    assert_eq!(names(db.connection()).await, ["outer", "after"]);
    cluster.finish(db).await;
}

async fn reads_go_to_a_healthy_replica_else_the_primary(cluster: Cluster, _fx: Fixture) {
    let db = cluster.db().await;
    add_user(db.connection(), 1, "ann").await;

    cluster.fail_replica();
    db.check_replicas().await;
    assert_eq!(db.replica_health(), [false]);
    assert!(
        std::ptr::eq(db.reader(), db.connection()),
        "fell back to the primary"
    );
    assert_eq!(names(db.reader()).await, ["ann"]);

    cluster.heal_replica(&db).await;
    db.check_replicas().await;
    assert_eq!(db.replica_health(), [true]);
    assert!(
        !std::ptr::eq(db.reader(), db.connection()),
        "reads go to the replica"
    );
    assert_eq!(names(db.reader()).await, ["ann"]);

    cluster.fail_replica();
    if matches!(cluster.replica, Replica::Proxy(_)) {
        db.check_replicas().await;
        assert_eq!(
            db.replica_health(),
            [false],
            "a replica that goes away is noticed"
        );
        assert!(std::ptr::eq(db.reader(), db.connection()));
    }
    cluster.finish(db).await;
}

async fn sharded_rows_land_in_their_table_and_are_found(cluster: Cluster, _fx: Fixture) {
    let db = cluster.db().await;
    for id in 0..20i64 {
        let conversation = id * 7;
        let shard = db.shard("messages", &conversation).unwrap();
        assert_eq!(shard.name(), format!("messages_{:02}", conversation % 4));
        shard
            .insert(message::ActiveModel {
                id: Set(id),
                conversation: Set(conversation),
                body: Set(format!("hello {id}")),
            })
            .exec(shard.connection())
            .await
            .unwrap();
    }
    for table in 0..4 {
        let sql = format!("SELECT conversation FROM messages_{table:02}");
        let rows = db
            .connection()
            .query_all_raw(Statement::from_string(db.backend(), sql))
            .await
            .unwrap();
        assert_eq!(rows.len(), 5, "messages_{table:02}");
        for row in rows {
            let conversation: i64 = row.try_get("", "conversation").unwrap();
            assert_eq!(conversation % 4, table, "a row in the wrong table");
        }
    }
    let conversation = 13 * 7;
    let shard = db.shard("messages", &conversation).unwrap();
    let found = shard
        .find::<message::Entity>()
        .filter(message::Column::Conversation.eq(conversation))
        .one(shard.connection())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.body, "hello 13");
    assert!(matches!(
        db.shard("nope", &1i64),
        Err(Error::InvalidArgument(_))
    ));
    cluster.finish(db).await;
}

async fn shards_spread_over_databases(cluster: Cluster, _fx: Fixture) {
    let mut cluster = cluster;
    cluster.config.sharding.databases = cluster.shard_databases.clone();
    let db = cluster.db().await;
    for conversation in 0..8i64 {
        let shard = db.shard("messages", &conversation).unwrap();
        shard
            .insert(message::ActiveModel {
                id: Set(conversation),
                conversation: Set(conversation),
                body: Set("hi".to_owned()),
            })
            .exec(shard.connection())
            .await
            .unwrap();
    }
    // Tables 0 and 2 live in the first extra database, 1 and 3 in the second; none in the
    // primary.
    for (index, dsn) in cluster.shard_databases.iter().enumerate() {
        let database = Database::connect(dsn.as_str()).await.unwrap();
        for table in 0..4 {
            let sql = format!("SELECT conversation FROM messages_{table:02}");
            let rows = database
                .query_all_raw(Statement::from_string(db.backend(), sql))
                .await;
            if table % 2 == index {
                let rows = rows.unwrap();
                assert_eq!(rows.len(), 2, "messages_{table:02} in database {index}");
            } else {
                assert!(
                    rows.is_err(),
                    "messages_{table:02} must not be in database {index}"
                );
            }
        }
        database.close().await.unwrap();
    }
    let sql = "SELECT conversation FROM messages_00";
    let on_primary = db
        .connection()
        .query_all_raw(Statement::from_string(db.backend(), sql))
        .await;
    assert!(on_primary.is_err(), "no shard table on the primary");
    cluster.finish(db).await;
}

async fn migrations_twice_are_harmless(cluster: Cluster, _fx: Fixture) {
    let db = cluster.db().await;
    add_user(db.connection(), 1, "ann").await;
    db.migrate().await.unwrap();
    let again = cluster.db().await;
    again.migrate().await.unwrap();
    assert_eq!(names(again.connection()).await, ["ann"], "data survives");
    again.close().await;
    cluster.finish(db).await;
}

async fn slow_queries_are_counted_and_logged(cluster: Cluster, _fx: Fixture) {
    let out = gochat_clog::MemoryWriter::new();
    let log = gochat_clog::new(
        &Context::new(),
        gochat_clog::Config::for_env(Env::Production),
        gochat_clog::Options::default().writer(out.clone()),
    )
    .unwrap();
    let mut cluster = cluster;
    cluster.config.slow_query = Duration::ZERO;
    let db = cluster.db_with(Options::default().logger(log)).await;
    add_user(db.connection(), 1, "ann").await;
    let stats = db.stats();
    assert!(stats.slow >= 1 && stats.slow <= stats.queries, "{stats:?}");
    let lines = out.json_lines().unwrap();
    assert!(
        lines.iter().any(|l| l["message"] == "slow query"
            && l["sql"].as_str().is_some_and(|s| s.contains("users"))),
        "{lines:?}"
    );
    let shared = Arc::new(db);
    cluster.finish(Arc::try_unwrap(shared).unwrap()).await;
}

behaviour_suite! {
    backends: [sqlite, postgres, mysql],
    cases: [
        crud,
        a_failed_or_panicking_transaction_rolls_back,
        nested_transactions_are_savepoints,
        reads_go_to_a_healthy_replica_else_the_primary,
        sharded_rows_land_in_their_table_and_are_found,
        shards_spread_over_databases,
        migrations_twice_are_harmless,
        slow_queries_are_counted_and_logged,
    ],
}
