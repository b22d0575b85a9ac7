//! `group_bans`: who was removed from a group's conversation and may not join it again
//! until an admin adds them.

use gochat_db::sea_orm;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "group_bans")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) conversation_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) user_id: String,
    pub(crate) banned_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
