//! Distributed locks bound to a lease.
//!
//! ```
//! use std::time::Duration;
//! use gochat_coord::{Config, Options};
//! use gochat_core::{Context, Env};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), gochat_coord::Error> {
//! let coord = gochat_coord::new(&Context::new(), Config::for_env(Env::Development), Options::default()).await?;
//! let guard = coord.lock().acquire("jobs/cleanup", Duration::from_secs(10)).await?;
//! assert!(coord.lock().try_acquire("jobs/cleanup", Duration::from_secs(10)).await?.is_none());
//! // … work, checking `guard.is_held()` before anything irreversible …
//! guard.release().await;
//! assert!(coord.lock().try_acquire("jobs/cleanup", Duration::from_secs(10)).await?.is_some());
//! # Ok(()) }
//! ```

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt;
use gochat_core::{Held, HeldStatus as Status};
use tokio::{sync::watch, time::Instant};

use crate::{
    Error, Shared,
    backend::{Created, Event, LeaseId},
    lease,
};

/// Locks: `coord.lock()`.
#[derive(Clone, Debug)]
pub struct Locks {
    pub(crate) shared: Arc<Shared>,
}

impl Locks {
    /// Waits until the lock is free, then takes it under a lease of `ttl`, renewed while the
    /// guard lives. Cancel the wait by dropping the future.
    ///
    /// # Errors
    /// An invalid name or TTL, or the backend cannot be reached.
    pub async fn acquire(&self, name: &str, ttl: Duration) -> Result<LockGuard, Error> {
        let (key, lease, held) = self.prepare(name, ttl).await?;
        loop {
            match self
                .shared
                .backend
                .create(&key, lease_owner(lease), Some(lease))
                .await
            {
                Ok(Created::Yes(_)) => {
                    return Ok(LockGuard {
                        name: name.to_owned(),
                        held,
                    });
                }
                Ok(Created::No(revision)) => self.wait_for_delete(&key, revision + 1).await,
                Err(e) => {
                    held.release().await;
                    return Err(e);
                }
            }
            if !held.is_held() {
                return Err(Error::LeaseLost(format!("lock {name} (while waiting)")));
            }
        }
    }

    /// Takes the lock if it is free now.
    ///
    /// # Errors
    /// An invalid name or TTL, or the backend cannot be reached.
    pub async fn try_acquire(&self, name: &str, ttl: Duration) -> Result<Option<LockGuard>, Error> {
        let (key, lease, held) = self.prepare(name, ttl).await?;
        match self
            .shared
            .backend
            .create(&key, lease_owner(lease), Some(lease))
            .await
        {
            Ok(Created::Yes(_)) => Ok(Some(LockGuard {
                name: name.to_owned(),
                held,
            })),
            Ok(Created::No(_)) => {
                held.release().await;
                Ok(None)
            }
            Err(e) => {
                held.release().await;
                Err(e)
            }
        }
    }

    async fn prepare(&self, name: &str, ttl: Duration) -> Result<(String, LeaseId, Held), Error> {
        self.shared.check_open()?;
        if ttl.is_zero() {
            return Err(Error::InvalidArgument(
                "a lock TTL must be above zero".to_owned(),
            ));
        }
        let key = self.shared.keys.lock(name)?;
        let held = hold_lease(&self.shared, ttl).await?;
        Ok((key, held.0, held.1))
    }

    /// Returns when `key` is deleted at or after `from`, or the watch fails (the caller retries).
    async fn wait_for_delete(&self, key: &str, from: i64) {
        let Ok(mut stream) = self.shared.backend.watch(key, from).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            return;
        };
        while let Some(batch) = stream.next().await {
            let Ok(events) = batch else { return };
            if events
                .iter()
                .any(|e| matches!(e, Event::Delete { key: k, .. } if k == key))
            {
                return;
            }
        }
    }
}

fn lease_owner(lease: LeaseId) -> Vec<u8> {
    format!("{lease:x}").into_bytes()
}

/// Grants a lease and keeps it alive on a child context of the provider.
pub(crate) async fn hold_lease(
    shared: &Arc<Shared>,
    ttl: Duration,
) -> Result<(LeaseId, Held), Error> {
    let granted_at = Instant::now();
    let (lease, granted) = shared.backend.grant(ttl).await?;
    let (status_tx, status) = watch::channel(Status::Held {
        valid_until: granted_at + granted,
    });
    let ctx = shared.ctx.child();
    let task_ctx = ctx.clone();
    let shared = shared.clone();
    let task = ctx.spawn(async move {
        let outcome = lease::keep(
            &*shared.backend,
            lease,
            granted,
            granted_at,
            &task_ctx,
            &status_tx,
        )
        .await;
        if matches!(outcome, lease::Outcome::Lost) {
            crate::Counters::add(&shared.counters.lease_losses);
        }
    });
    Ok((lease, Held::new(ctx, status, task)))
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

    /// Whether the lock is still held: false once its lease could not be renewed in time. Check
    /// it before anything irreversible; never assume.
    pub fn is_held(&self) -> bool {
        self.held.is_held()
    }

    /// Completes when the lock is lost (not when it is released).
    pub async fn lost(&self) {
        self.held.lost().await;
    }

    /// Releases the lock and waits until the backend has done so.
    pub async fn release(self) {
        self.held.release().await;
    }
}
