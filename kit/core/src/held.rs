//! Something held under a lease that a background task renews — a lock, an instance id — and
//! how its holder learns it is gone.
//!
//! The renewing task publishes a [`HeldStatus`]; [`Held`] reads it. A thing is believed held
//! only until `valid_until`: the instant after which the server may have given it to someone
//! else. So a holder that cannot reach its server stops believing, on its own clock, before
//! anyone else can take over.
//!
//! ```
//! use std::time::Duration;
//! use gochat_core::{Context, Held, HeldStatus};
//! use tokio::{sync::watch, time::Instant};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let ctx = Context::new();
//! let (tx, rx) = watch::channel(HeldStatus::Held { valid_until: Instant::now() + Duration::from_secs(3) });
//! let task_ctx = ctx.clone();
//! let task = ctx.spawn(async move {
//!     task_ctx.cancelled().await; // a real task renews here until cancelled or lost
//!     tx.send_replace(HeldStatus::Released);
//! });
//! let held = Held::new(ctx, rx, task);
//! assert!(held.is_held());
//! tokio::time::sleep(Duration::from_secs(4)).await; // nothing renewed it
//! assert!(!held.is_held());
//! held.lost().await; // completes at once
//! held.release().await;
//! # }
//! ```

use tokio::{
    sync::watch,
    task::JoinHandle,
    time::{Instant, sleep_until},
};

use crate::Context;

/// What the renewing task knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldStatus {
    /// Held until at least this instant.
    Held {
        /// Past this instant the server may have expired it.
        valid_until: Instant,
    },
    /// Expired, taken by someone else, or not renewed in time.
    Lost,
    /// Given up by its holder.
    Released,
}

/// A handle on something held by a background renewal task running on `ctx`. Dropping it
/// cancels `ctx`, so the task releases what it holds.
#[derive(Debug)]
pub struct Held {
    ctx: Context,
    status: watch::Receiver<HeldStatus>,
    task: Option<JoinHandle<()>>,
}

impl Held {
    /// Wraps the renewal task running on `ctx` and the status it publishes.
    pub fn new(ctx: Context, status: watch::Receiver<HeldStatus>, task: JoinHandle<()>) -> Self {
        Self {
            ctx,
            status,
            task: Some(task),
        }
    }

    /// Whether it is held now: published as held, and not past `valid_until`.
    pub fn is_held(&self) -> bool {
        matches!(*self.status.borrow(), HeldStatus::Held { valid_until } if Instant::now() < valid_until)
    }

    /// Completes when it is no longer held (lost, released, or not renewed in time).
    pub async fn lost(&self) {
        let mut status = self.status.clone();
        loop {
            let current = *status.borrow_and_update();
            let HeldStatus::Held { valid_until } = current else {
                return;
            };
            tokio::select! {
                changed = status.changed() => if changed.is_err() { return },
                () = sleep_until(valid_until) => {
                    if matches!(*status.borrow(), HeldStatus::Held { valid_until: v } if v <= Instant::now()) {
                        return;
                    }
                }
            }
        }
    }

    /// Cancels the renewal task, which releases what it holds, and waits for it.
    pub async fn release(mut self) {
        self.ctx.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.ctx.cancel();
    }
}
