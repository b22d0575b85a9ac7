//! `messages` (or its shards `messages_00` …, by conversation id): unique per
//! (conversation, seq) and per (conversation, sender, client_msg_id).

use gochat_db::sea_orm;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "messages")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) id: String,
    pub(crate) conversation_id: String,
    pub(crate) seq: i64,
    pub(crate) from_user_id: String,
    pub(crate) content: String,
    pub(crate) message_type: String,
    pub(crate) client_msg_id: String,
    pub(crate) created_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
