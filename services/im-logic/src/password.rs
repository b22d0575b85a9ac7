//! Password hashes: argon2id with the crate's default cost, on the blocking pool, as many at
//! once as there are cores.
//!
//! Each hash fills 19 MiB. Without a bound, a burst of logins ran one per blocking thread,
//! and the allocator kept every thread's 19 MiB: 64 concurrent registrations left the process
//! at 6 GiB resident (docs/benchmarks.md). More hashes at once than cores only queue on the
//! CPU anyway.

use argon2::{
    Argon2,
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng},
};

use std::sync::OnceLock;

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::Error;

/// A turn to hash: one per core.
async fn turn() -> Result<SemaphorePermit<'static>, Error> {
    static TURNS: OnceLock<Semaphore> = OnceLock::new();
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    TURNS
        .get_or_init(|| Semaphore::new(cores))
        .acquire()
        .await
        .map_err(|e| Error::Internal(format!("password hashing stopped: {e}")))
}

/// The PHC string of `password`'s argon2id hash.
pub(crate) async fn hash(password: String) -> Result<String, Error> {
    let _turn = turn().await?;
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
    let _turn = turn().await?;
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
