//! Keeping a lease alive, and how its holder learns it is gone.
//!
//! A lease is believed held only until `last successful keep-alive sent + TTL`: past that
//! instant the server may have expired it and handed what it protected (a lock, an instance
//! id) to someone else, so the holder must stop relying on it — even while the server is
//! unreachable and nothing has said "expired" yet.

use std::time::Duration;

use gochat_core::{Context, HeldStatus as Status};
use tokio::{
    sync::watch,
    time::{Instant, sleep, sleep_until, timeout},
};

use crate::backend::{Backend, LeaseId};

/// Why [`keep`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The context was cancelled; the lease was revoked.
    Cancelled,
    /// The lease is gone.
    Lost,
}

/// Renews `lease` every third of its TTL until `ctx` is cancelled (then revokes it) or it is
/// lost, publishing its status.
pub(crate) async fn keep(
    backend: &dyn Backend,
    lease: LeaseId,
    ttl: Duration,
    granted_at: Instant,
    ctx: &Context,
    status: &watch::Sender<Status>,
) -> Outcome {
    let mut valid_until = granted_at + ttl;
    status.send_replace(Status::Held { valid_until });
    let period = (ttl / 3).max(Duration::from_millis(100));
    let mut next = granted_at + period;
    loop {
        tokio::select! {
            () = ctx.cancelled() => {
                // Best effort: an unreachable server expires the lease by itself.
                let _ = timeout(ttl, backend.revoke(lease)).await;
                status.send_replace(Status::Released);
                return Outcome::Cancelled;
            }
            () = sleep_until(next) => {}
        }
        let sent = Instant::now();
        match timeout(period, backend.keep_alive(lease)).await {
            Ok(Ok(true)) => {
                valid_until = sent + ttl;
                status.send_replace(Status::Held { valid_until });
                next = sent + period;
            }
            Ok(Ok(false)) => {
                status.send_replace(Status::Lost);
                return Outcome::Lost;
            }
            Ok(Err(_)) | Err(_) => {
                if Instant::now() >= valid_until {
                    status.send_replace(Status::Lost);
                    return Outcome::Lost;
                }
                // Retry soon: the server may be back before the lease runs out.
                next = Instant::now() + Duration::from_millis(200).min(period);
            }
        }
    }
}

/// Exponential backoff for reconnect loops: 100 ms doubling to 5 s.
#[derive(Debug)]
pub(crate) struct Backoff(Duration);

impl Backoff {
    pub(crate) fn new() -> Self {
        Self(Duration::from_millis(100))
    }

    pub(crate) async fn wait(&mut self, ctx: &Context) -> bool {
        let delay = self.0;
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
        ctx.run_until_cancelled(sleep(delay)).await.is_some()
    }

    pub(crate) fn reset(&mut self) {
        self.0 = Duration::from_millis(100);
    }
}
