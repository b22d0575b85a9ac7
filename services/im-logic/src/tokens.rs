//! Access and refresh tokens: HS256 JWTs carrying the user, a token id and a session id.
//! A session ends at logout (every token of it stops working at once); a refresh token works
//! once (refreshing rotates it).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::Error;

/// Which kind of token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    Access,
    Refresh,
}

/// What a token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Claims {
    /// The user id.
    pub(crate) sub: String,
    /// This token's id.
    pub(crate) jti: String,
    /// The login session both tokens of a pair belong to.
    pub(crate) sid: String,
    pub(crate) kind: Kind,
    pub(crate) iat: u64,
    pub(crate) exp: u64,
}

/// Signs and checks tokens.
#[derive(Clone)]
pub(crate) struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens { .. }")
    }
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Tokens {
    pub(crate) fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    pub(crate) fn sign(&self, claims: &Claims) -> Result<String, Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| Error::Internal(format!("signing a token: {e}")))
    }

    /// The claims of a well-signed, unexpired token of `kind`.
    pub(crate) fn check(&self, token: &str, kind: Kind) -> Result<Claims, Error> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| Error::Unauthorized(format!("bad token: {e}")))?;
        if data.claims.kind != kind {
            return Err(Error::Unauthorized(format!(
                "not an {} token",
                match kind {
                    Kind::Access => "access",
                    Kind::Refresh => "refresh",
                }
            )));
        }
        Ok(data.claims)
    }

    pub(crate) fn claims(user: &str, jti: String, sid: &str, kind: Kind, ttl: Duration) -> Claims {
        let now = now_secs();
        Claims {
            sub: user.to_owned(),
            jti,
            sid: sid.to_owned(),
            kind,
            iat: now,
            exp: now + ttl.as_secs(),
        }
    }
}
