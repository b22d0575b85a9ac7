//! Access and refresh tokens: JWTs carrying the user, a token id and a session id, signed
//! with an HMAC key (HS256) or an Ed25519 key (EdDSA). With EdDSA, whoever holds the public
//! key checks tokens itself ([`Verifier`]): gateways verify without the signing key and
//! without a call. A session ends at logout (every token of it stops working at once); a
//! refresh token works once (refreshing rotates it).

use std::{
    collections::HashMap,
    fmt::Write as _,
    path::Path,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use ed25519_dalek::{
    SigningKey, VerifyingKey,
    pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey},
};
use gochat_proto::logic::Session;
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

impl Claims {
    /// The session the claims name, as the services pass it on.
    pub(crate) fn session(&self) -> Session {
        Session {
            user_id: self.sub.clone(),
            token_id: self.sid.clone(),
            expires_at_ms: i64::try_from(self.exp.saturating_mul(1000)).unwrap_or(i64::MAX),
        }
    }
}

/// A key that could not be used, and why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A key file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not an Ed25519 key in the PEM form expected.
    #[error("{what} is not an Ed25519 {form} PEM key: {reason}")]
    Malformed {
        /// Which key.
        what: String,
        /// `PKCS#8 private` or `SPKI public`.
        form: &'static str,
        /// The parser's reason.
        reason: String,
    },
    /// A new key could not be written out as PEM.
    #[error("encoding a new Ed25519 key as PKCS#8 PEM: {reason}")]
    Encode {
        /// The encoder's reason.
        reason: String,
    },
}

/// Checks tokens: the keys it accepts, each under its key id (`kid`), and one algorithm.
/// A gateway builds one from the Ed25519 public keys of im-logic's signing keys
/// ([`Verifier::ed25519_files`]) and checks access tokens without a call to im-logic; a
/// token signed with any other key or algorithm (an HS256 token made with a public key as
/// its secret, say) is refused.
///
/// ```
/// let private = im_logic::generate_ed25519_key()?;
/// let public = im_logic::public_pem(&private)?;
/// let verifier = im_logic::Verifier::ed25519(&[public.as_str()])?;
/// assert!(verifier.access("not.a.token").is_err());
/// # Ok::<(), im_logic::KeyError>(())
/// ```
#[derive(Clone)]
pub struct Verifier {
    keys: Arc<HashMap<String, DecodingKey>>,
    validation: Validation,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut kids: Vec<_> = self.keys.keys().collect();
        kids.sort();
        f.debug_struct("Verifier").field("kids", &kids).finish()
    }
}

impl Verifier {
    fn new(algorithm: Algorithm, keys: HashMap<String, DecodingKey>) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            keys: Arc::new(keys),
            validation,
        }
    }

    /// Accepts EdDSA tokens signed by the private half of any of `public_pems` (SPKI PEM,
    /// `openssl pkey -pubout`).
    ///
    /// # Errors
    /// [`KeyError::Malformed`] for a text that is not such a key.
    pub fn ed25519(public_pems: &[&str]) -> Result<Self, KeyError> {
        let mut keys = HashMap::new();
        for (i, pem) in public_pems.iter().enumerate() {
            let key = VerifyingKey::from_public_key_pem(pem).map_err(|e| KeyError::Malformed {
                what: format!("public key {}", i + 1),
                form: "SPKI public",
                reason: e.to_string(),
            })?;
            keys.insert(key_id(&key), DecodingKey::from_ed_der(key.as_bytes()));
        }
        Ok(Self::new(Algorithm::EdDSA, keys))
    }

    /// [`Verifier::ed25519`] with the keys read from PEM files.
    ///
    /// # Errors
    /// [`KeyError::Read`] for a file that cannot be read, [`KeyError::Malformed`] for one
    /// that holds no such key.
    pub fn ed25519_files(paths: &[impl AsRef<Path>]) -> Result<Self, KeyError> {
        let pems = read_all(paths)?;
        let pems: Vec<&str> = pems.iter().map(String::as_str).collect();
        Self::ed25519(&pems)
    }

    /// The session of a well-signed, unexpired access token. It does not know of logouts:
    /// the caller checks the session against the ended ones ([`crate::revoked_key`]).
    ///
    /// # Errors
    /// [`Error::Unauthorized`] for any other token.
    pub fn access(&self, token: &str) -> Result<Session, Error> {
        self.check(token, Kind::Access)
            .map(|claims| claims.session())
    }

    /// The claims of a well-signed, unexpired token of `kind`.
    pub(crate) fn check(&self, token: &str, kind: Kind) -> Result<Claims, Error> {
        let bad = |reason: String| Error::Unauthorized(format!("bad token: {reason}"));
        let header = jsonwebtoken::decode_header(token).map_err(|e| bad(e.to_string()))?;
        let kid = header.kid.unwrap_or_default();
        let key = self
            .keys
            .get(&kid)
            .ok_or_else(|| bad("signed with a key this service does not accept".to_owned()))?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map_err(|e| bad(e.to_string()))?;
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
}

/// The key id of an Ed25519 public key: `ed25519-` and its first 8 bytes in hex. Tokens carry
/// it in their header, so a verifier holding an old and a new key (a rotation) picks the one
/// that signed.
fn key_id(key: &VerifyingKey) -> String {
    let mut id = String::from("ed25519-");
    for byte in &key.as_bytes()[..8] {
        let _ = write!(id, "{byte:02x}");
    }
    id
}

fn read_all(paths: &[impl AsRef<Path>]) -> Result<Vec<String>, KeyError> {
    paths
        .iter()
        .map(|path| {
            let path = path.as_ref();
            std::fs::read_to_string(path).map_err(|source| KeyError::Read {
                path: path.display().to_string(),
                source,
            })
        })
        .collect()
}

fn signing_key(private_pem: &str) -> Result<SigningKey, KeyError> {
    SigningKey::from_pkcs8_pem(private_pem).map_err(|e| KeyError::Malformed {
        what: "jwt_private_key".to_owned(),
        form: "PKCS#8 private",
        reason: e.to_string(),
    })
}

/// A new Ed25519 private key, PKCS#8 PEM (what `openssl genpkey -algorithm ed25519` writes),
/// from the operating system's random source.
///
/// # Errors
/// [`KeyError::Encode`] if the key cannot be written as PEM.
pub fn generate_ed25519_key() -> Result<String, KeyError> {
    use argon2::password_hash::rand_core::OsRng;
    use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
    SigningKey::generate(&mut OsRng)
        .to_pkcs8_pem(LineEnding::LF)
        .map(|pem| pem.to_string())
        .map_err(|e| KeyError::Encode {
            reason: e.to_string(),
        })
}

/// The public half (SPKI PEM) of an Ed25519 private key in PKCS#8 PEM: what gateways are
/// given to verify the tokens the private key signs.
///
/// # Errors
/// [`KeyError::Malformed`] for a text that is not such a key.
pub fn public_pem(private_pem: &str) -> Result<String, KeyError> {
    use ed25519_dalek::pkcs8::{EncodePublicKey, spki::der::pem::LineEnding};
    signing_key(private_pem)?
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| KeyError::Malformed {
            what: "jwt_private_key".to_owned(),
            form: "PKCS#8 private",
            reason: e.to_string(),
        })
}

/// Signs and checks tokens.
#[derive(Clone)]
pub(crate) struct Tokens {
    encoding: EncodingKey,
    header: Header,
    verifier: Verifier,
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
    /// HS256 with `secret`.
    pub(crate) fn hmac(secret: &str) -> Self {
        let keys = HashMap::from([(String::new(), DecodingKey::from_secret(secret.as_bytes()))]);
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            header: Header::new(Algorithm::HS256),
            verifier: Verifier::new(Algorithm::HS256, keys),
        }
    }

    /// EdDSA with `private_pem`; tokens of the keys of `previous` (public key files of the
    /// keys it replaced) are still accepted until they expire.
    pub(crate) fn ed25519(
        private_pem: &str,
        previous: &[impl AsRef<Path>],
    ) -> Result<Self, KeyError> {
        let signing = signing_key(private_pem)?;
        let der = signing.to_pkcs8_der().map_err(|e| KeyError::Malformed {
            what: "jwt_private_key".to_owned(),
            form: "PKCS#8 private",
            reason: e.to_string(),
        })?;
        let mut pems = read_all(previous)?;
        pems.push(public_pem(private_pem)?);
        let pems: Vec<&str> = pems.iter().map(String::as_str).collect();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key_id(&signing.verifying_key()));
        Ok(Self {
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            header,
            verifier: Verifier::ed25519(&pems)?,
        })
    }

    pub(crate) fn sign(&self, claims: &Claims) -> Result<String, Error> {
        jsonwebtoken::encode(&self.header, claims, &self.encoding)
            .map_err(|e| Error::Internal(format!("signing a token: {e}")))
    }

    /// The claims of a well-signed, unexpired token of `kind`.
    pub(crate) fn check(&self, token: &str, kind: Kind) -> Result<Claims, Error> {
        self.verifier.check(token, kind)
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

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: &[&str] = &[];

    fn token(tokens: &Tokens, kind: Kind) -> String {
        let claims = Tokens::claims("42", "1".into(), "7", kind, Duration::from_secs(60));
        tokens.sign(&claims).unwrap()
    }

    #[test]
    fn a_gateway_verifies_eddsa_tokens_with_the_public_key_alone() {
        let key = generate_ed25519_key().unwrap();
        let tokens = Tokens::ed25519(&key, NONE).unwrap();
        let access = token(&tokens, Kind::Access);
        let public = public_pem(&key).unwrap();
        let verifier = Verifier::ed25519(&[public.as_str()]).unwrap();
        let session = verifier.access(&access).unwrap();
        assert_eq!(
            (session.user_id.as_str(), session.token_id.as_str()),
            ("42", "7")
        );
        // A refresh token is not an access token.
        assert!(verifier.access(&token(&tokens, Kind::Refresh)).is_err());
    }

    #[test]
    fn a_token_of_another_key_or_algorithm_is_refused() {
        let (a, b) = (
            generate_ed25519_key().unwrap(),
            generate_ed25519_key().unwrap(),
        );
        let public_a = public_pem(&a).unwrap();
        let verifier = Verifier::ed25519(&[public_a.as_str()]).unwrap();
        let other = Tokens::ed25519(&b, NONE).unwrap();
        assert!(verifier.access(&token(&other, Kind::Access)).is_err());
        // The public key used as an HMAC secret (algorithm confusion), with no kid or A's.
        let forged = Tokens::hmac(&public_a);
        assert!(verifier.access(&token(&forged, Kind::Access)).is_err());
        let mut with_kid = Tokens::hmac(&public_a);
        with_kid.header.kid = Tokens::ed25519(&a, NONE).unwrap().header.kid;
        assert!(verifier.access(&token(&with_kid, Kind::Access)).is_err());
        // And an HS256 service refuses EdDSA tokens.
        let hmac = Tokens::hmac("a-secret-of-enough-length-0123456789");
        let signed = Tokens::ed25519(&a, NONE).unwrap();
        assert!(
            hmac.check(&token(&signed, Kind::Access), Kind::Access)
                .is_err()
        );
    }

    #[test]
    fn after_a_rotation_tokens_of_the_previous_key_still_verify() {
        let (a, b) = (
            generate_ed25519_key().unwrap(),
            generate_ed25519_key().unwrap(),
        );
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.pub.pem");
        std::fs::write(&old, public_pem(&a).unwrap()).unwrap();
        let before = Tokens::ed25519(&a, NONE).unwrap();
        let after = Tokens::ed25519(&b, &[&old]).unwrap();
        let access = token(&before, Kind::Access);
        assert_eq!(after.check(&access, Kind::Access).unwrap().sub, "42");
        assert_ne!(before.header.kid, after.header.kid);
        // Without the old key, the old token is refused.
        let fresh = Tokens::ed25519(&b, NONE).unwrap();
        assert!(fresh.check(&access, Kind::Access).is_err());
    }

    #[test]
    fn malformed_keys_are_named() {
        let err = Tokens::ed25519("not a key", NONE).unwrap_err();
        assert!(err.to_string().contains("jwt_private_key"), "{err}");
        let err = Verifier::ed25519_files(&["/nonexistent/key.pem"]).unwrap_err();
        assert!(matches!(err, KeyError::Read { .. }), "{err}");
        let private = generate_ed25519_key().unwrap();
        let err = Verifier::ed25519(&[private.as_str()]).unwrap_err();
        assert!(err.to_string().contains("public key 1"), "{err}");
    }
}
