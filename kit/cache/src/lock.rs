//! Locks on the cache, kept by a watchdog.
//!
//! A lock is a key holding a random token, set only if absent, with a TTL. While the guard
//! lives a watchdog renews the TTL every third of it — but only if the key still holds this
//! guard's token, so a lock that expired and was taken by someone else is never renewed or
//! released by its former holder. (The Go original had no renewal.)
//!
//! ```
//! use std::time::Duration;
//! use gochat_cache::{Config, Options};
//! use gochat_core::{Context, Env};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), gochat_cache::Error> {
//! let cache = gochat_cache::new(&Context::new(), Config::for_env(Env::Development), Options::default()).await?;
//! let guard = cache.lock().acquire("order:42", Duration::from_secs(5)).await?;
//! assert!(cache.lock().try_acquire("order:42", Duration::from_secs(5)).await?.is_none());
//! assert!(guard.is_held());
//! guard.release().await;
//! assert!(cache.lock().try_acquire("order:42", Duration::from_secs(5)).await?.is_some());
//! # Ok(()) }
//! ```

use std::time::Duration;

use gochat_core::{Held, HeldStatus};
use tokio::{
    sync::watch,
    time::{Instant, sleep, sleep_until, timeout},
};

use crate::{
    Cache, Error, Reply,
    command::{Command, SetWhen},
};

/// How often `acquire` retries a taken lock.
const RETRY: Duration = Duration::from_millis(50);

/// Locks: `cache.lock()`.
#[derive(Debug, Clone, Copy)]
pub struct Locks<'a> {
    pub(crate) cache: &'a Cache,
}

impl Locks<'_> {
    /// Waits until the lock is free, then takes it for `ttl`, renewed while the guard lives.
    /// Cancel the wait by dropping the future.
    ///
    /// # Errors
    /// A zero TTL; backend errors.
    pub async fn acquire(&self, name: &str, ttl: Duration) -> Result<LockGuard, Error> {
        loop {
            if let Some(guard) = self.try_acquire(name, ttl).await? {
                return Ok(guard);
            }
            // Spread retries so waiters do not move in lockstep.
            let jitter = Duration::from_millis(u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % 25);
            sleep(RETRY + jitter).await;
        }
    }

    /// Takes the lock if it is free now.
    ///
    /// # Errors
    /// A zero TTL; backend errors.
    pub async fn try_acquire(&self, name: &str, ttl: Duration) -> Result<Option<LockGuard>, Error> {
        if ttl.is_zero() {
            return Err(Error::InvalidArgument(
                "a lock TTL must be above zero".to_owned(),
            ));
        }
        let key = self.cache.key(&format!("lock:{name}"));
        let token = uuid::Uuid::new_v4().simple().to_string().into_bytes();
        let taken_at = Instant::now();
        let set = Command::Set {
            key: key.clone(),
            value: token.clone(),
            ttl: Some(ttl),
            when: SetWhen::IfAbsent,
        };
        if self.cache.one(set).await? != Reply::Ok {
            return Ok(None);
        }
        let (tx, status) = watch::channel(HeldStatus::Held {
            valid_until: taken_at + ttl,
        });
        let ctx = self.cache.shared.ctx.child();
        let watchdog = Watchdog {
            cache: self.cache.clone(),
            key,
            token,
            ttl,
            ctx: ctx.clone(),
        };
        let task = ctx.spawn(watchdog.run(taken_at, tx));
        Ok(Some(LockGuard {
            name: name.to_owned(),
            held: Held::new(ctx, status, task),
        }))
    }
}

struct Watchdog {
    cache: Cache,
    key: String,
    token: Vec<u8>,
    ttl: Duration,
    ctx: gochat_core::Context,
}

impl Watchdog {
    async fn run(self, taken_at: Instant, status: watch::Sender<HeldStatus>) {
        let period = (self.ttl / 3).max(Duration::from_millis(10));
        let mut valid_until = taken_at + self.ttl;
        let mut next = taken_at + period;
        loop {
            tokio::select! {
                () = self.ctx.cancelled() => {
                    let release = Command::DelIfEq { key: self.key.clone(), value: self.token.clone() };
                    // Best effort: if the server is unreachable the key expires by itself.
                    let _ = timeout(self.ttl, self.cache.backend_one(release)).await;
                    status.send_replace(HeldStatus::Released);
                    return;
                }
                () = sleep_until(next) => {}
            }
            let sent = Instant::now();
            let renew = Command::PExpireIfEq {
                key: self.key.clone(),
                value: self.token.clone(),
                ttl: self.ttl,
            };
            match timeout(period, self.cache.backend_one(renew)).await {
                Ok(Ok(reply)) if reply.as_int() == 1 => {
                    valid_until = sent + self.ttl;
                    status.send_replace(HeldStatus::Held { valid_until });
                    next = sent + period;
                }
                Ok(Ok(_)) => {
                    // The key is gone or holds another token: someone else may hold the lock.
                    status.send_replace(HeldStatus::Lost);
                    return;
                }
                Ok(Err(_)) | Err(_) => {
                    if Instant::now() >= valid_until {
                        status.send_replace(HeldStatus::Lost);
                        return;
                    }
                    next = Instant::now() + Duration::from_millis(100).min(period);
                }
            }
        }
    }
}

/// A held lock. Dropping it releases the lock (in the background); [`LockGuard::release`]
/// releases it and waits.
#[derive(Debug)]
pub struct LockGuard {
    name: String,
    held: Held,
}

impl LockGuard {
    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the lock is still held: false once the watchdog could not renew it in time, or
    /// found it taken. Check it before anything irreversible.
    pub fn is_held(&self) -> bool {
        self.held.is_held()
    }

    /// Completes when the lock is lost.
    pub async fn lost(&self) {
        self.held.lost().await;
    }

    /// Releases the lock (only if still ours) and waits until that is done.
    pub async fn release(self) {
        self.held.release().await;
    }
}
