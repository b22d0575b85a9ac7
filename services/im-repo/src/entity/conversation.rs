//! `conversations`: single chats (one per pair, by `pair_key`), groups and the world channel.

use gochat_db::sea_orm;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "conversations")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) id: String,
    /// `ConversationType` as a number: 1 single, 2 group, 3 world.
    pub(crate) kind: i32,
    pub(crate) name: String,
    pub(crate) group_id: Option<String>,
    /// `{smaller user id}:{larger user id}` for a single chat, so a pair has one conversation.
    #[sea_orm(unique)]
    pub(crate) pair_key: Option<String>,
    pub(crate) created_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
