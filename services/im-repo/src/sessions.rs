//! Ended sessions: written when a session is revoked, read back when a standalone process
//! starts (its cache is in memory), purged once their tokens have run out.

use gochat_db::sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, sea_query::OnConflict,
};
use gochat_proto::repo as pb;

use crate::{Error, Repo, entity::revoked, now_ms, required};

impl Repo {
    /// Records an ended session (again: the new expiry replaces the old), and purges expired
    /// ones.
    pub(crate) async fn revoke_session(
        &self,
        req: pb::RevokeSessionRequest,
    ) -> Result<pb::Empty, Error> {
        let session = required("session_id", &req.session_id)?;
        let user = required("user_id", &req.user_id)?;
        self.purge_revoked().await?;
        if req.expires_at_ms <= now_ms() {
            return Ok(pb::Empty {});
        }
        let row = revoked::ActiveModel {
            session_id: Set(session.to_owned()),
            user_id: Set(user.to_owned()),
            expires_at_ms: Set(req.expires_at_ms),
        };
        revoked::Entity::insert(row)
            .on_conflict(
                OnConflict::column(revoked::Column::SessionId)
                    .update_column(revoked::Column::ExpiresAtMs)
                    .to_owned(),
            )
            .exec(self.db.connection())
            .await?;
        Ok(pb::Empty {})
    }

    /// Every ended session whose tokens may still be alive.
    pub(crate) async fn list_revoked_sessions(
        &self,
        _req: pb::ListRevokedSessionsRequest,
    ) -> Result<pb::RevokedSessions, Error> {
        self.purge_revoked().await?;
        let rows = revoked::Entity::find()
            .filter(revoked::Column::ExpiresAtMs.gt(now_ms()))
            .all(self.db.connection())
            .await?;
        let sessions = rows
            .into_iter()
            .map(|row| pb::RevokeSessionRequest {
                session_id: row.session_id,
                user_id: row.user_id,
                expires_at_ms: row.expires_at_ms,
            })
            .collect();
        Ok(pb::RevokedSessions { sessions })
    }

    async fn purge_revoked(&self) -> Result<(), Error> {
        revoked::Entity::delete_many()
            .filter(revoked::Column::ExpiresAtMs.lte(now_ms()))
            .exec(self.db.connection())
            .await?;
        Ok(())
    }
}
