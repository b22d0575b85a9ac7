//! gochat-db: messages sharded by conversation into four tables, written in a transaction and
//! read back from the shard.
//!
//! Run with `cargo run -p example-db` (SQLite in memory), or on a server with
//! `GOCHAT_DB__PRIMARY=postgres://gochat:gochat@127.0.0.1:5432/gochat_test cargo run -p example-db`.

use gochat_core::{Context, Loader};
use gochat_db::{
    Config, Options, ShardSchema,
    sea_orm::{
        ActiveValue::Set,
        ColumnTrait, ConnectionTrait, DbErr, QueryFilter, QueryOrder,
        sea_query::{Alias, ColumnDef, Table},
    },
};

mod message {
    // sea-orm's derives name `sea_orm::…`: the kit's re-export serves, no extra dependency.
    use gochat_db::sea_orm;
    use sea_orm::entity::prelude::*;

    /// One chat message; stored in `messages_00` … `messages_03` by conversation.
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

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // SQLite in memory unless `GOCHAT_DB__PRIMARY` says otherwise (the kit's loader).
    let loader = Loader::from_process()?.env_prefix("GOCHAT_DB__");
    let mut config: Config =
        loader.load_from(&Config::with_primary(loader.env(), "sqlite::memory:"))?;
    config.sharding.tables.insert("messages".to_owned(), 4);
    let schema = ShardSchema::new("messages", |name| {
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
    });
    // auto_migrate (on in development) creates every shard table.
    let db = gochat_db::new(
        &Context::new(),
        config,
        Options::default().shard_schema(schema),
    )
    .await?;

    let conversation = 1_042_i64;
    let shard = db.shard("messages", &conversation)?;
    println!("conversation {conversation} lives in {}", shard.name());
    db.transaction(async |tx| {
        // Rerunnable on a server: start the conversation afresh.
        let clear = format!(
            "DELETE FROM {} WHERE conversation = {conversation}",
            shard.name()
        );
        tx.execute_unprepared(&clear).await?;
        for (id, body) in [(1, "hi"), (2, "hello"), (3, "how are you?")] {
            let row = message::ActiveModel {
                id: Set(id),
                conversation: Set(conversation),
                body: Set(body.to_owned()),
            };
            shard.insert(row).exec(tx).await?;
        }
        Ok::<_, DbErr>(())
    })
    .await?;

    let history = shard
        .find::<message::Entity>()
        .filter(message::Column::Conversation.eq(conversation))
        .order_by_asc(message::Column::Id)
        .all(db.reader())
        .await?;
    for message in &history {
        println!("#{} {}", message.id, message.body);
    }
    let stats = db.stats();
    println!(
        "{} statements, {} failed, {:?} in total; backend {:?}",
        stats.queries,
        stats.failed,
        stats.total_time,
        db.backend()
    );
    db.close().await;
    Ok(())
}
