//! The schema: one migration creating every table from its entity, plus the indexes the
//! queries need; and the shard tables of `messages` when messages are sharded.

use gochat_db::{
    ShardSchema,
    sea_orm::{
        ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QuerySelect,
        Schema, Statement,
        sea_query::{
            Alias, ColumnDef, Expr, ExprTrait, Func, Index, IndexCreateStatement, Query, Table,
            TableCreateStatement, UpdateStatement,
        },
    },
    sea_orm_migration::{MigrationName, MigrationTrait, MigratorTrait, SchemaManager},
};

use crate::entity::{ban, conversation, group, member, message, revoked, user};

/// The migrator `gochat_db::Options::migrator::<Migrator>()` takes.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateTables),
            Box::new(GroupAccess),
            Box::new(RevokedSessions),
            Box::new(NormalUsernames),
            Box::new(LastSeqCounters),
        ]
    }
}

/// The `messages` shard tables (`messages_00` …), for `gochat_db::Options::shard_schema`.
pub fn messages_shards() -> ShardSchema {
    // The backend only changes column types sea-orm picks; the unique constraints are inline.
    ShardSchema::new("messages", |name| messages_table(DbBackend::Postgres, name))
}

struct CreateTables;

impl MigrationName for CreateTables {
    fn name(&self) -> &str {
        "m0001_create_tables"
    }
}

fn create<E: EntityTrait>(backend: DbBackend, entity: E) -> TableCreateStatement {
    Schema::new(backend)
        .create_table_from_entity(entity)
        .if_not_exists()
        .to_owned()
}

/// `messages` (or one shard of it) with its two unique keys inline, named after the table
/// (PostgreSQL wants constraint names unique per schema).
fn messages_table(backend: DbBackend, name: &str) -> TableCreateStatement {
    let mut table = create(backend, message::Entity);
    table
        .table(Alias::new(name))
        .index(
            Index::create()
                .name(format!("{name}_conversation_seq"))
                .col(message::Column::ConversationId)
                .col(message::Column::Seq)
                .unique(),
        )
        .index(
            Index::create()
                .name(format!("{name}_client_msg"))
                .col(message::Column::ConversationId)
                .col(message::Column::FromUserId)
                .col(message::Column::ClientMsgId)
                .unique(),
        );
    table
}

fn index(name: &str) -> IndexCreateStatement {
    Index::create().name(name).if_not_exists().to_owned()
}

// The trait's own signature elides SchemaManager's lifetime; async_trait needs it matched.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for CreateTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_connection().get_database_backend();
        manager.create_table(create(backend, user::Entity)).await?;
        manager
            .create_table(create(backend, conversation::Entity))
            .await?;
        manager
            .create_table(create(backend, member::Entity))
            .await?;
        manager.create_table(create(backend, group::Entity)).await?;
        manager
            .create_table(messages_table(backend, "messages"))
            .await?;
        manager
            .create_index(
                index("members_by_user")
                    .table(member::Entity)
                    .col(member::Column::UserId)
                    .to_owned(),
            )
            .await
    }
}

/// Who may join a group and read its past: `chat_groups.join_mode` and `.history_visible`,
/// `members.joined_seq`, and `group_bans`. A database made by the first migration since these
/// columns joined the entities has them already; an older one gets them here.
struct GroupAccess;

impl MigrationName for GroupAccess {
    fn name(&self) -> &str {
        "m0002_group_access"
    }
}

// As above: async_trait needs SchemaManager's lifetime matched.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for GroupAccess {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_connection().get_database_backend();
        let columns = [
            (
                "chat_groups",
                "join_mode",
                ColumnDef::new(group::Column::JoinMode)
                    .string_len(16)
                    .not_null()
                    .default(group::JOIN_OPEN)
                    .to_owned(),
            ),
            (
                "chat_groups",
                "history_visible",
                ColumnDef::new(group::Column::HistoryVisible)
                    .boolean()
                    .not_null()
                    .default(false)
                    .to_owned(),
            ),
            (
                "members",
                "joined_seq",
                ColumnDef::new(member::Column::JoinedSeq)
                    .big_integer()
                    .not_null()
                    .default(0)
                    .to_owned(),
            ),
        ];
        // One column per statement: SQLite alters one at a time.
        for (table, column, mut def) in columns {
            if !manager.has_column(table, column).await? {
                manager
                    .alter_table(
                        Table::alter()
                            .table(Alias::new(table))
                            .add_column(&mut def)
                            .to_owned(),
                    )
                    .await?;
            }
        }
        manager.create_table(create(backend, ban::Entity)).await
    }
}

/// `revoked_sessions`, with an index on the expiry the purge deletes by.
struct RevokedSessions;

impl MigrationName for RevokedSessions {
    fn name(&self) -> &str {
        "m0003_revoked_sessions"
    }
}

// As above: async_trait needs SchemaManager's lifetime matched.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for RevokedSessions {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_connection().get_database_backend();
        manager
            .create_table(create(backend, revoked::Entity))
            .await?;
        manager
            .create_index(
                index("revoked_sessions_by_expiry")
                    .table(revoked::Entity)
                    .col(revoked::Column::ExpiresAtMs)
                    .to_owned(),
            )
            .await
    }
}

/// Usernames are stored in their normal form (trimmed, lower case) since im-logic normalises
/// them; accounts made before are brought to it, so they can still log in on every database.
/// A name whose normal form another account holds already stays as it is (its owner cannot log
/// in by name until an operator renames one of the two): nothing is merged or lost.
struct NormalUsernames;

impl MigrationName for NormalUsernames {
    fn name(&self) -> &str {
        "m0004_normal_usernames"
    }
}

// As above: async_trait needs SchemaManager's lifetime matched.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for NormalUsernames {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let column = || Expr::col(user::Column::Username);
        // Only the rows to change: old names were ASCII, so lower case and trimming suffice.
        let legacy: Vec<(String, String)> = user::Entity::find()
            .select_only()
            .columns([user::Column::Id, user::Column::Username])
            .filter(
                column()
                    .ne(Func::lower(column()))
                    .or(column().ne(Func::cust("TRIM").arg(column()))),
            )
            .into_tuple()
            .all(db)
            .await?;
        for (id, name) in legacy {
            let normal = name.trim().to_lowercase();
            // Checked first rather than caught: a failed statement would end the whole
            // migration's transaction on PostgreSQL.
            let taken = user::Entity::find()
                .filter(user::Column::Username.eq(normal.as_str()))
                .one(db)
                .await?
                .is_some();
            if !taken {
                user::Entity::update_many()
                    .col_expr(user::Column::Username, Expr::value(normal))
                    .filter(user::Column::Id.eq(id))
                    .exec(db)
                    .await?;
            }
        }
        Ok(())
    }
}

/// `conversations.last_seq`: the highest seq handed out in each conversation, advanced inside
/// the transaction that stores its messages. Kept out of the conversation entity, which is
/// cached: the counter is only read under its row lock while storing.
pub(crate) const LAST_SEQ: &str = "last_seq";

/// `conversations.last_seq`, set from the highest seq stored in each conversation — in
/// `messages` and in every shard table of it (`messages_00` …) present in the database.
struct LastSeqCounters;

impl MigrationName for LastSeqCounters {
    fn name(&self) -> &str {
        "m0005_conversation_last_seq"
    }
}

// As above: async_trait needs SchemaManager's lifetime matched.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for LastSeqCounters {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if !manager.has_column("conversations", LAST_SEQ).await? {
            manager
                .alter_table(
                    Table::alter()
                        .table(conversation::Entity)
                        .add_column(
                            ColumnDef::new(Alias::new(LAST_SEQ))
                                .big_integer()
                                .not_null()
                                .default(0),
                        )
                        .to_owned(),
                )
                .await?;
        }
        let db = manager.get_connection();
        for table in message_tables(db).await? {
            db.execute(&raise_last_seq(&table, None)).await?;
        }
        Ok(())
    }
}

/// `UPDATE conversations SET last_seq = (highest seq in table)` where the counter is below it:
/// every conversation's, or only `only`'s.
pub(crate) fn raise_last_seq(table: &str, only: Option<&str>) -> UpdateStatement {
    let stored = Alias::new("stored");
    let highest = Query::select()
        .expr(Func::max(Expr::col((stored.clone(), message::Column::Seq))))
        .from_as(Alias::new(table), stored.clone())
        .and_where(
            Expr::col((stored, message::Column::ConversationId))
                .equals((conversation::Entity, conversation::Column::Id)),
        )
        .to_owned();
    let mut update = Query::update();
    update
        .table(conversation::Entity)
        .value(Alias::new(LAST_SEQ), Expr::from(highest.clone()))
        // Below a conversation's highest seq; one with none (NULL) is left alone.
        .and_where(Expr::col(Alias::new(LAST_SEQ)).lt(Expr::from(highest)));
    if let Some(id) = only {
        update.and_where(Expr::col(conversation::Column::Id).eq(id));
    }
    update
}

/// `messages` and its shard tables (`messages_` and two or more digits) in this database.
async fn message_tables(db: &impl ConnectionTrait) -> Result<Vec<String>, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table'",
        DbBackend::Postgres => {
            "SELECT CAST(table_name AS TEXT) AS name FROM information_schema.tables \
             WHERE table_schema = current_schema()"
        }
        _ => {
            "SELECT CAST(table_name AS CHAR) AS name FROM information_schema.tables \
             WHERE table_schema = DATABASE()"
        }
    };
    let rows = db
        .query_all_raw(Statement::from_string(backend, sql))
        .await?;
    let mut tables = Vec::new();
    for row in rows {
        let name: String = row.try_get("", "name")?;
        let shard = name
            .strip_prefix("messages_")
            .is_some_and(|digits| digits.len() >= 2 && digits.bytes().all(|b| b.is_ascii_digit()));
        if name == "messages" || shard {
            tables.push(name);
        }
    }
    Ok(tables)
}
