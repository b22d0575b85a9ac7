//! Users: created once per username, read through the cache.

use gochat_db::sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter,
};
use gochat_proto::{common, repo as pb};

use crate::{Error, Repo, convert, entity::user, error::is_unique_violation, now_ms, required};

fn user_key(id: &str) -> String {
    format!("user:{id}")
}

impl Repo {
    pub(crate) async fn create_user(
        &self,
        req: pb::CreateUserRequest,
    ) -> Result<common::User, Error> {
        let username = required("username", &req.username)?;
        required("password_hash", &req.password_hash)?;
        let now = now_ms();
        let row = user::ActiveModel {
            id: Set(self.next_id()?),
            username: Set(username.to_owned()),
            password_hash: Set(req.password_hash),
            nickname: Set(if req.nickname.trim().is_empty() {
                username.to_owned()
            } else {
                req.nickname.trim().to_owned()
            }),
            email: Set(req.email.trim().to_owned()),
            avatar: Set(String::new()),
            created_at_ms: Set(now),
            updated_at_ms: Set(now),
        };
        match row.insert(self.db.connection()).await {
            Ok(row) => Ok(convert::user(row)),
            Err(e) if is_unique_violation(&e) => {
                Err(Error::AlreadyExists(format!("username {username}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn user_row(&self, id: &str) -> Result<user::Model, Error> {
        let db = self.db.reader().clone();
        let owned = id.to_owned();
        self.cache
            .get_or_load_json(&user_key(id), self.config.cache_ttl, || async move {
                user::Entity::find_by_id(owned).one(&db).await
            })
            .await?
            .ok_or_else(|| Error::NotFound(format!("user {id}")))
    }

    pub(crate) async fn get_user(&self, req: pb::GetUserRequest) -> Result<common::User, Error> {
        Ok(convert::user(
            self.user_row(required("user_id", &req.user_id)?).await?,
        ))
    }

    pub(crate) async fn get_users(&self, req: pb::GetUsersRequest) -> Result<pb::Users, Error> {
        let rows = user::Entity::find()
            .filter(user::Column::Id.is_in(req.user_ids))
            .all(self.db.reader())
            .await?;
        Ok(pb::Users {
            users: rows.into_iter().map(convert::user).collect(),
        })
    }

    pub(crate) async fn get_credentials(
        &self,
        req: pb::GetCredentialsRequest,
    ) -> Result<pb::Credentials, Error> {
        let username = required("username", &req.username)?;
        // Not cached: the hash is read once per login and never kept in the cache.
        let row = user::Entity::find()
            .filter(user::Column::Username.eq(username))
            .one(self.db.connection())
            .await?
            .ok_or_else(|| Error::NotFound(format!("user {username}")))?;
        let password_hash = row.password_hash.clone();
        Ok(pb::Credentials {
            user: Some(convert::user(row)),
            password_hash,
        })
    }

    pub(crate) async fn get_user_by_name(
        &self,
        req: pb::GetUserByNameRequest,
    ) -> Result<common::User, Error> {
        let username = required("username", &req.username)?;
        let row = user::Entity::find()
            .filter(user::Column::Username.eq(username))
            .one(self.db.reader())
            .await?
            .ok_or_else(|| Error::NotFound(format!("user {username}")))?;
        Ok(convert::user(row))
    }

    pub(crate) async fn update_user(
        &self,
        req: pb::UpdateUserRequest,
    ) -> Result<common::User, Error> {
        let id = required("user_id", &req.user_id)?;
        let row = user::Entity::find_by_id(id)
            .one(self.db.connection())
            .await?
            .ok_or_else(|| Error::NotFound(format!("user {id}")))?;
        let mut row: user::ActiveModel = row.into();
        if let Some(nickname) = req.nickname {
            row.nickname = Set(required("nickname", &nickname)?.to_owned());
        }
        if let Some(avatar) = req.avatar {
            row.avatar = Set(avatar.trim().to_owned());
        }
        row.updated_at_ms = Set(now_ms());
        let row = row.update(self.db.connection()).await?;
        self.forget(&[&user_key(id)]).await?;
        Ok(convert::user(row))
    }
}
