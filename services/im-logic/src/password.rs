//! Password hashes: argon2id with the crate's default cost, on the blocking pool.

use argon2::{
    Argon2,
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng},
};

use crate::Error;

/// The PHC string of `password`'s argon2id hash.
pub(crate) async fn hash(password: String) -> Result<String, Error> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| Error::Internal(format!("hashing a password: {e}")))
    })
    .await
    .map_err(|e| Error::Internal(format!("hashing a password: {e}")))?
}

/// Whether `password` matches `phc`.
pub(crate) async fn verify(password: String, phc: String) -> Result<bool, Error> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&phc)
            .map_err(|e| Error::Internal(format!("a stored hash is malformed: {e}")))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(|e| Error::Internal(format!("checking a password: {e}")))?
}
