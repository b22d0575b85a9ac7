//! Password hashes: argon2id with the crate's default cost, on the blocking pool, in two
//! bounded pools so that a flood of registrations can neither exhaust memory nor delay logins.
//!
//! Each hash fills 19 MiB. Without a bound, a burst of logins ran one per blocking thread,
//! and the allocator kept every thread's 19 MiB: 64 concurrent registrations left the process
//! at 6 GiB resident (docs/benchmarks.md). More hashes at once than cores only queue on the
//! CPU anyway. Logins (verifying) get a turn per core; registrations (hashing) half as many,
//! in a pool of their own, so logins never wait behind registers. Each pool admits a bounded
//! queue; a call finding it full is refused at once as rate limited (1006, Retry-After).

use argon2::{
    Argon2,
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng},
};

use std::{sync::OnceLock, time::Duration};

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::Error;

/// Calls a pool lets wait for a turn, per running turn.
const QUEUE_PER_TURN: usize = 8;

/// When a refused call is told to try again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Hashing turns of one kind: `running` at once, `admitted` running or waiting.
pub(crate) struct Pool {
    what: &'static str,
    admitted: Semaphore,
    running: Semaphore,
}

/// A turn: held while hashing.
pub(crate) struct Turn<'a> {
    _admitted: SemaphorePermit<'a>,
    _running: SemaphorePermit<'a>,
}

impl Pool {
    pub(crate) fn new(what: &'static str, running: usize) -> Self {
        let running = running.max(1);
        Self {
            what,
            admitted: Semaphore::new(running * (1 + QUEUE_PER_TURN)),
            running: Semaphore::new(running),
        }
    }

    /// A turn, after waiting behind the calls already admitted; refused at once when the
    /// queue is full.
    pub(crate) async fn turn(&self) -> Result<Turn<'_>, Error> {
        let admitted = self
            .admitted
            .try_acquire()
            .map_err(|_| Error::RateLimited {
                what: self.what.to_owned(),
                retry_after: Some(RETRY_AFTER),
            })?;
        let running = self
            .running
            .acquire()
            .await
            .map_err(|e| Error::Internal(format!("password hashing stopped: {e}")))?;
        Ok(Turn {
            _admitted: admitted,
            _running: running,
        })
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
}

/// Logins: a turn per core.
fn logins() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool::new("login (password checks busy)", cores()))
}

/// Registrations: half the cores, apart from logins.
fn registers() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool::new("register (password hashing busy)", cores() / 2))
}

/// The PHC string of `password`'s argon2id hash.
pub(crate) async fn hash(password: String) -> Result<String, Error> {
    let _turn = registers().turn().await?;
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
    let _turn = logins().turn().await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_pool_refuses_at_once_and_another_pool_is_not_delayed() {
        let registers = Pool::new("register", 1);
        let logins = Pool::new("login", 1);
        // One running and eight waiting fill the register pool.
        let held: Vec<_> = (0..=QUEUE_PER_TURN)
            .map(|_| registers.admitted.try_acquire().unwrap())
            .collect();
        assert!(matches!(
            registers.turn().await,
            Err(Error::RateLimited {
                retry_after: Some(_),
                ..
            })
        ));
        // Logins have turns of their own.
        assert!(logins.turn().await.is_ok());
        drop(held);
        assert!(registers.turn().await.is_ok());
    }
}
