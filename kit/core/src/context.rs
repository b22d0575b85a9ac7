//! Cancellation and the lifetime of background work.
//!
//! A [`Context`] is a node in a tree: cancelling a node cancels its children, and
//! [`Context::shutdown`] waits for every task spawned on the node or any descendant.
//! Providers take a `&Context` in `new` and tie their background loops to it.
//!
//! ```
//! use std::time::Duration;
//! use gochat_core::Context;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let root = Context::new();
//! let cache_ctx = root.child();
//! let ctx = cache_ctx.clone();
//! let handle = cache_ctx.spawn(async move {
//!     let mut ticks = 0u32;
//!     // A keep-alive loop: tick until the context is cancelled.
//!     while ctx.run_until_cancelled(tokio::time::sleep(Duration::from_millis(5))).await.is_some() {
//!         ticks += 1;
//!     }
//!     ticks
//! });
//! root.shutdown(Duration::from_secs(5)).await.unwrap();
//! let _ticks = handle.await.unwrap();
//! # }
//! ```

use std::{future::Future, sync::Arc, time::Duration};

use tokio::task::JoinHandle;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Cancellation plus task tracking, cheap to clone (all clones are the same node).
#[derive(Clone, Debug, Default)]
pub struct Context {
    token: CancellationToken,
    tasks: TaskTracker,
    /// Trackers of every ancestor, so their `shutdown` waits for this node's tasks too.
    ancestors: Arc<[TaskTracker]>,
}

/// [`Context::shutdown`] gave up waiting: some tasks ignored cancellation for too long.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{remaining} background task(s) still running after the {grace:?} shutdown grace period")]
pub struct ShutdownTimeout {
    /// Tasks of this context (and its descendants) that had not finished.
    pub remaining: usize,
    /// The grace period that ran out.
    pub grace: Duration,
}

impl Context {
    /// A new root context, not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// A child: cancelled when `self` is, or on its own without touching `self`.
    pub fn child(&self) -> Self {
        let mut ancestors = Vec::with_capacity(self.ancestors.len() + 1);
        ancestors.extend(self.ancestors.iter().cloned());
        ancestors.push(self.tasks.clone());
        Self {
            token: self.token.child_token(),
            tasks: TaskTracker::new(),
            ancestors: ancestors.into(),
        }
    }

    /// Cancels this context and all its descendants. Idempotent.
    pub fn cancel(&self) {
        self.token.cancel();
    }

    /// Whether this context (or an ancestor) was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes once this context is cancelled.
    pub fn cancelled(&self) -> impl Future<Output = ()> + Send + '_ {
        self.token.cancelled()
    }

    /// Like [`Context::cancelled`], but owns what it needs, for moving into tasks.
    pub fn cancelled_owned(&self) -> impl Future<Output = ()> + Send + 'static {
        self.token.clone().cancelled_owned()
    }

    /// Runs `fut` until it completes (`Some`) or the context is cancelled (`None`, and
    /// `fut` is dropped).
    pub async fn run_until_cancelled<F: Future>(&self, fut: F) -> Option<F::Output> {
        self.token.run_until_cancelled(fut).await
    }

    /// Spawns a tracked task on the current tokio runtime.
    ///
    /// The task is not aborted on cancellation: it should watch [`Context::cancelled`] and
    /// finish its own clean-up (revoke a lease, commit offsets) before returning.
    /// `shutdown` of this context or of any ancestor waits for it.
    ///
    /// # Panics
    /// Outside a tokio runtime, like `tokio::spawn`.
    pub fn spawn<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let tokens: Vec<_> = self.ancestors.iter().map(TaskTracker::token).collect();
        self.tasks.spawn(async move {
            let _held_by_ancestors = tokens;
            fut.await
        })
    }

    /// Tasks spawned on this context and its descendants that are still running.
    pub fn task_count(&self) -> usize {
        self.tasks.len()
    }

    /// Cancels the context, then waits up to `grace` for its tasks (and its descendants')
    /// to finish.
    ///
    /// # Errors
    /// [`ShutdownTimeout`] when tasks are still running after `grace`; they keep running.
    pub async fn shutdown(&self, grace: Duration) -> Result<(), ShutdownTimeout> {
        self.cancel();
        self.tasks.close();
        let waited = tokio::time::timeout(grace, self.tasks.wait()).await;
        // New tasks may still be spawned on a cancelled context; keep tracking them.
        self.tasks.reopen();
        waited.map_err(|_| ShutdownTimeout {
            remaining: self.tasks.len(),
            grace,
        })
    }

    /// Cancels this context on Ctrl-C or, on Unix, SIGTERM — the way a service learns
    /// it should drain and stop.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn cancel_on_shutdown_signal(&self) {
        let ctx = self.clone();
        self.spawn(async move {
            tokio::select! {
                () = ctx.cancelled() => {}
                () = shutdown_signal() => ctx.cancel(),
            }
        });
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No Ctrl-C handler could be installed: rely on SIGTERM (or cancellation) only.
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[tokio::test]
    async fn cancelling_a_parent_cancels_children_but_not_the_reverse() {
        let root = Context::new();
        let a = root.child();
        let b = a.child();
        let sibling = root.child();
        b.cancel();
        assert!(b.is_cancelled());
        assert!(!a.is_cancelled() && !root.is_cancelled());
        root.cancel();
        assert!(a.is_cancelled() && sibling.is_cancelled());
    }

    #[tokio::test]
    async fn shutdown_waits_for_descendant_tasks_to_clean_up() {
        let root = Context::new();
        let grandchild = root.child().child();
        let cleaned = Arc::new(AtomicBool::new(false));
        let (ctx, flag) = (grandchild.clone(), cleaned.clone());
        grandchild.spawn(async move {
            ctx.cancelled().await;
            tokio::task::yield_now().await;
            flag.store(true, Ordering::SeqCst);
        });
        assert_eq!(grandchild.task_count(), 1);
        root.shutdown(Duration::from_secs(5)).await.unwrap();
        assert!(
            cleaned.load(Ordering::SeqCst),
            "shutdown returned before the task cleaned up"
        );
        assert_eq!(grandchild.task_count(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_reports_tasks_that_ignore_cancellation() {
        let ctx = Context::new();
        ctx.spawn(tokio::time::sleep(Duration::from_secs(3600)));
        let err = ctx.shutdown(Duration::from_secs(1)).await.unwrap_err();
        assert_eq!(err.remaining, 1);
        assert!(err.to_string().contains("1 background task"), "{err}");
    }

    #[tokio::test]
    async fn run_until_cancelled_drops_the_future_on_cancel() {
        let ctx = Context::new();
        ctx.cancel();
        let out = ctx.run_until_cancelled(std::future::pending::<()>()).await;
        assert_eq!(out, None);
        let ctx = Context::new();
        assert_eq!(ctx.run_until_cancelled(async { 7 }).await, Some(7));
    }

    #[tokio::test]
    async fn a_child_shutdown_leaves_the_parent_running() {
        let root = Context::new();
        let child = root.child();
        child.shutdown(Duration::from_secs(1)).await.unwrap();
        assert!(child.is_cancelled());
        assert!(!root.is_cancelled());
        let parent_task = root.spawn(async { 1 });
        assert_eq!(parent_task.await.unwrap(), 1);
    }
}
