//! Register, login, refresh (rotating), logout (revoking the session) and token checks.

use std::time::Duration;

use gochat_proto::{
    common::User,
    events::{EndSession, KickFrame, Task, downstream::Frame, task},
    logic::{LoginRequest, RegisterRequest, Session, TokenPair},
    prost::Message as _,
    repo::{
        CreateUserRequest, GetCredentialsRequest, GetUserByNameRequest, GetUserRequest,
        ListRevokedSessionsRequest, RevokeSessionRequest,
    },
};
use tonic::Request;

use crate::{
    Error, Logic, account, password,
    tokens::{Claims, Kind, Tokens},
};

fn refresh_key(jti: &str) -> String {
    format!("auth:refresh:{jti}")
}

/// The cache key that marks session `sid` as ended (logout, refresh-token reuse): whoever
/// verifies tokens itself (a gateway with `jwt_public_keys`) refuses a session marked so.
pub fn revoked_key(sid: &str) -> String {
    format!("auth:revoked:{sid}")
}

/// The kick reason of an ended session's sockets (the gateway's `logout`).
const LOGOUT: &str = "logout";

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Logic {
    /// Creates an account.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`]; the repository's `AlreadyExists` for a taken username.
    pub async fn register(&self, req: RegisterRequest) -> Result<User, Error> {
        if !req.client_addr.is_empty() {
            self.limit(crate::REGISTER_ADDR_RULE, &req.client_addr)
                .await?;
        }
        let username = account::username(&req.username)?;
        if !(8..=128).contains(&req.password.len()) {
            return Err(Error::InvalidArgument(
                "password must be 8 to 128 bytes".to_owned(),
            ));
        }
        let nickname = account::bounded("nickname", &req.nickname, 64)?;
        let email = account::email(&req.email)?;
        let password_hash = password::hash(req.password).await?;
        let user = self
            .deps
            .repo
            .create_user(Request::new(CreateUserRequest {
                // The name as typed stays the default nickname; the account is the normal form.
                nickname: if nickname.is_empty() {
                    req.username.trim().to_owned()
                } else {
                    nickname
                },
                username,
                password_hash,
                email,
            }))
            .await?
            .into_inner();
        Ok(user)
    }

    /// Checks a username and password; a new session with a token pair.
    ///
    /// # Errors
    /// [`Error::Unauthorized`] for an unknown user or a wrong password (the same answer).
    pub async fn login(&self, req: LoginRequest) -> Result<TokenPair, Error> {
        if !req.client_addr.is_empty() {
            self.limit(crate::LOGIN_ADDR_RULE, &req.client_addr).await?;
        }
        let wrong = || Error::Unauthorized("wrong username or password".to_owned());
        // A name that cannot be an account gets the same answer as a wrong password.
        let Ok(username) = account::username(&req.username) else {
            return Err(wrong());
        };
        self.limit(crate::LOGIN_RULE, &username).await?;
        let credentials = match self
            .deps
            .repo
            .get_credentials(Request::new(GetCredentialsRequest { username }))
            .await
        {
            Ok(found) => found.into_inner(),
            Err(status) if status.code() == tonic::Code::NotFound => return Err(wrong()),
            Err(status) => return Err(status.into()),
        };
        if !password::verify(req.password, credentials.password_hash).await? {
            return Err(wrong());
        }
        let user = credentials.user.ok_or_else(wrong)?;
        let session = self.deps.ids.snowflake()?.to_string();
        self.issue(user, &session).await
    }

    /// The user named exactly `username` (a malformed name is a 1001, an unknown one a 1003).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`]; the repository's `NotFound`.
    pub async fn find_user(
        &self,
        req: gochat_proto::logic::FindUserRequest,
    ) -> Result<User, Error> {
        let username = account::username(&req.username)?;
        let found = self
            .deps
            .repo
            .get_user_by_name(Request::new(GetUserByNameRequest { username }));
        Ok(found.await?.into_inner())
    }

    /// A new token pair for a refresh token, which stops working (rotation). A refresh token
    /// presented a second time was stolen or replayed: the whole session ends, so neither
    /// the thief's nor the victim's tokens work any more (OAuth 2.0 Security BCP, refresh
    /// token reuse detection).
    ///
    /// # Errors
    /// [`Error::Unauthorized`] for a bad, expired, already used or logged-out token.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, Error> {
        let claims = self.tokens.check(refresh_token, Kind::Refresh)?;
        self.check_session(&claims).await?;
        let used = self
            .deps
            .cache
            .keys()
            .del(&[&refresh_key(&claims.jti)])
            .await?;
        if used == 0 {
            self.revoke(&claims).await?;
            gochat_clog::warn!(self.deps.log, user = %claims.sub, session = %claims.sid, "a refresh token was used twice: its session is ended");
            return Err(Error::Unauthorized(
                "this refresh token was used already; the session is ended".to_owned(),
            ));
        }
        let user = self
            .deps
            .repo
            .get_user(Request::new(GetUserRequest {
                user_id: claims.sub.clone(),
            }))
            .await?
            .into_inner();
        self.issue(user, &claims.sid).await
    }

    /// Ends the session of `access_token`: its access and refresh tokens stop working.
    ///
    /// # Errors
    /// [`Error::Unauthorized`] for a bad token.
    pub async fn logout(&self, access_token: &str) -> Result<Session, Error> {
        let claims = self
            .validate(access_token)
            .await
            .map(|(claims, _)| claims)?;
        self.revoke(&claims).await?;
        Ok(claims.session())
    }

    /// Ends `claims`' session: every token of it stops working. The end is also recorded in
    /// the repository (a standalone process reads it back at start:
    /// [`Logic::restore_revocations`]), and every gateway the user is connected to is told,
    /// so it kicks the session's sockets and refuses their frames for as long as an access
    /// token of the session could live.
    async fn revoke(&self, claims: &Claims) -> Result<(), Error> {
        let ttl = self.config.refresh_ttl;
        self.deps
            .cache
            .string()
            .set(&revoked_key(&claims.sid), b"1", Some(ttl))
            .await?;
        let now = gochat_proto::now_ms();
        let record = self
            .deps
            .repo
            .revoke_session(Request::new(RevokeSessionRequest {
                session_id: claims.sid.clone(),
                user_id: claims.sub.clone(),
                expires_at_ms: now.saturating_add(millis(ttl)),
            }));
        if let Err(status) = record.await {
            // The cache refuses the session already; only a restart of an in-memory cache
            // would forget it.
            gochat_clog::error!(self.deps.log, session = %claims.sid, error = %status.message(), "an ended session was not recorded in the repository");
        }
        let kick = KickFrame {
            reason: LOGOUT.to_owned(),
            token_id: claims.sid.clone(),
            revoked_until_ms: now.saturating_add(millis(self.config.access_ttl)),
        };
        // The gateways the user is on now hear of it at once; every gateway (one that took a
        // socket of the session after presence was read, too) through im-task.
        let job = Task {
            job: Some(task::Job::EndSession(EndSession {
                user_id: claims.sub.clone(),
                kick: Some(kick.clone()),
            })),
        };
        let told = self
            .router
            .notify(vec![claims.sub.clone()], Frame::Kick(kick), &claims.sub)
            .await;
        let queued = self
            .router
            .publish(
                &self.router.topics().task(),
                &claims.sub,
                job.encode_to_vec(),
            )
            .await;
        if let Err(e) = told.map(drop).and(queued) {
            // New sockets and every call are refused still; open ones last until their token ends.
            gochat_clog::warn!(self.deps.log, session = %claims.sid, error = %e, "the gateways were not told of an ended session");
        }
        Ok(())
    }

    /// Puts the ended sessions the repository recorded back into the cache; how many. A
    /// process whose cache lives in memory (standalone) calls it at start, so a logout
    /// outlives a restart. (A Redis cache keeps them across restarts of the services.)
    ///
    /// # Errors
    /// The repository or the cache failing.
    pub async fn restore_revocations(&self) -> Result<usize, Error> {
        let sessions = self
            .deps
            .repo
            .list_revoked_sessions(Request::new(ListRevokedSessionsRequest {}))
            .await?
            .into_inner()
            .sessions;
        let now = gochat_proto::now_ms();
        let mut restored = 0;
        for session in sessions {
            let Ok(left @ 1..) = u64::try_from(session.expires_at_ms.saturating_sub(now)) else {
                continue;
            };
            self.deps
                .cache
                .string()
                .set(
                    &revoked_key(&session.session_id),
                    b"1",
                    Some(Duration::from_millis(left)),
                )
                .await?;
            restored += 1;
        }
        Ok(restored)
    }

    /// Who a valid access token belongs to.
    ///
    /// # Errors
    /// [`Error::Unauthorized`] for a bad, expired or logged-out token.
    pub async fn validate_token(&self, access_token: &str) -> Result<Session, Error> {
        self.validate(access_token)
            .await
            .map(|(_, session)| session)
    }

    async fn validate(&self, access_token: &str) -> Result<(Claims, Session), Error> {
        let claims = self.tokens.check(access_token, Kind::Access)?;
        self.check_session(&claims).await?;
        let session = claims.session();
        Ok((claims, session))
    }

    async fn check_session(&self, claims: &Claims) -> Result<(), Error> {
        if self
            .deps
            .cache
            .string()
            .get(&revoked_key(&claims.sid))
            .await?
            .is_some()
        {
            return Err(Error::Unauthorized(
                "this session was logged out".to_owned(),
            ));
        }
        Ok(())
    }

    async fn issue(&self, user: User, session: &str) -> Result<TokenPair, Error> {
        let config = &self.config;
        let access = Tokens::claims(
            &user.id,
            self.deps.ids.snowflake()?.to_string(),
            session,
            Kind::Access,
            config.access_ttl,
        );
        let refresh_jti = self.deps.ids.snowflake()?.to_string();
        let refresh = Tokens::claims(
            &user.id,
            refresh_jti.clone(),
            session,
            Kind::Refresh,
            config.refresh_ttl,
        );
        self.deps
            .cache
            .string()
            .set(
                &refresh_key(&refresh_jti),
                session,
                Some(config.refresh_ttl),
            )
            .await?;
        Ok(TokenPair {
            access_token: self.tokens.sign(&access)?,
            refresh_token: self.tokens.sign(&refresh)?,
            expires_in_secs: i64::try_from(config.access_ttl.as_secs()).unwrap_or(i64::MAX),
            user: Some(user),
        })
    }
}
