//! `users`: accounts, with argon2 password hashes (made by im-logic).

use gochat_db::sea_orm;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "users")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) id: String,
    #[sea_orm(unique)]
    pub(crate) username: String,
    pub(crate) password_hash: String,
    pub(crate) nickname: String,
    pub(crate) email: String,
    pub(crate) avatar: String,
    pub(crate) created_at_ms: i64,
    pub(crate) updated_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
