//! `revoked_sessions`: sessions ended by a logout or a reused refresh token, kept until the
//! last token they could have issued has run out, so a revocation outlives a restart.

use gochat_db::sea_orm;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "revoked_sessions")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) session_id: String,
    pub(crate) user_id: String,
    /// Unix ms after which no token of the session is valid anyway (the row may go).
    pub(crate) expires_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
