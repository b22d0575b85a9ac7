//! `chat_groups` (`groups` is a reserved word in MySQL 8): a group and its conversation.

use gochat_db::sea_orm;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "chat_groups")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) id: String,
    pub(crate) conversation_id: String,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) owner_id: String,
    pub(crate) max_members: i32,
    pub(crate) created_at_ms: i64,
    /// `open` (anyone may join) or `invite` (only an admin adds members).
    #[serde(default = "open")]
    pub(crate) join_mode: String,
    /// Whether a member reads the history from before they joined.
    #[serde(default)]
    pub(crate) history_visible: bool,
}

fn open() -> String {
    JOIN_OPEN.to_owned()
}

/// Anyone may join.
pub(crate) const JOIN_OPEN: &str = "open";

/// Only an admin adds members.
pub(crate) const JOIN_INVITE: &str = "invite";

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
