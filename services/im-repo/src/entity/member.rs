//! `members`: who belongs to a conversation, with role, read pointer and per-user settings.

use gochat_db::sea_orm;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "members")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) conversation_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) user_id: String,
    /// `Role` as a number: 1 member, 2 admin, 3 owner.
    pub(crate) role: i32,
    pub(crate) read_seq: i64,
    pub(crate) muted: bool,
    pub(crate) pinned: bool,
    pub(crate) joined_at_ms: i64,
    /// The user's own name for the conversation ("" for none).
    pub(crate) name: String,
    /// The conversation's last seq when the member joined: without visible history, they
    /// read only what comes after it.
    #[serde(default)]
    pub(crate) joined_seq: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
