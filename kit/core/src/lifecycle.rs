//! Health and graceful close: the shared lifecycle contract of Providers.
//!
//! A readiness endpoint holds its components as `Arc<dyn Lifecycle>` and asks them all at
//! once with [`check_all`]; a component that hangs is reported down, never waited on forever.
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use gochat_core::{BoxFuture, Health, Lifecycle, check_all};
//!
//! struct Db;
//! impl Lifecycle for Db {
//!     fn name(&self) -> &str { "db" }
//!     fn health(&self) -> BoxFuture<'_, Health> { Box::pin(async { Health::up() }) }
//!     fn close(&self) -> BoxFuture<'_, ()> { Box::pin(async {}) }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let parts: Vec<Arc<dyn Lifecycle>> = vec![Arc::new(Db)];
//! let report = check_all(&parts, Duration::from_secs(1)).await;
//! assert!(report.is_up());
//! # }
//! ```

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use serde::Serialize;

/// A boxed, `Send` future: what [`Lifecycle`] methods return, so the trait stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Implemented by every Provider handle.
pub trait Lifecycle: Send + Sync {
    /// A short name for reports (`cache`, `db`, …).
    fn name(&self) -> &str;
    /// Whether the component can do its work now (its backend answers).
    fn health(&self) -> BoxFuture<'_, Health>;
    /// Stops background work and releases resources (leases, connections). Idempotent.
    fn close(&self) -> BoxFuture<'_, ()>;
}

/// Up or down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum HealthStatus {
    /// Working.
    Up,
    /// Not working; see the detail.
    Down,
}

/// One component's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// Up or down.
    pub status: HealthStatus,
    /// Why it is down, or a note worth showing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Health {
    /// Healthy.
    pub fn up() -> Self {
        Self {
            status: HealthStatus::Up,
            detail: None,
        }
    }

    /// Unhealthy, with the reason.
    pub fn down(detail: impl Into<String>) -> Self {
        Self {
            status: HealthStatus::Down,
            detail: Some(detail.into()),
        }
    }
}

/// The health of several components, in the order they were given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthReport {
    /// `(name, health)` per component.
    pub components: Vec<(String, Health)>,
}

impl HealthReport {
    /// Whether every component is up.
    pub fn is_up(&self) -> bool {
        self.components
            .iter()
            .all(|(_, h)| h.status == HealthStatus::Up)
    }
}

/// Checks every component concurrently; one that does not answer within `timeout` is down.
pub async fn check_all(components: &[Arc<dyn Lifecycle>], timeout: Duration) -> HealthReport {
    let checks = components.iter().map(|c| async move {
        let health = tokio::time::timeout(timeout, c.health())
            .await
            .unwrap_or_else(|_| Health::down(format!("no answer within {timeout:?}")));
        (c.name().to_owned(), health)
    });
    HealthReport {
        components: futures_util::future::join_all(checks).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(&'static str, Option<Health>);

    impl Lifecycle for Fixed {
        fn name(&self) -> &str {
            self.0
        }
        fn health(&self) -> BoxFuture<'_, Health> {
            Box::pin(async move {
                match &self.1 {
                    Some(h) => h.clone(),
                    None => std::future::pending().await,
                }
            })
        }
        fn close(&self) -> BoxFuture<'_, ()> {
            Box::pin(async {})
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_component_is_reported_down() {
        let parts: Vec<Arc<dyn Lifecycle>> = vec![
            Arc::new(Fixed("cache", Some(Health::up()))),
            Arc::new(Fixed("db", None)),
        ];
        let report = check_all(&parts, Duration::from_secs(2)).await;
        assert!(!report.is_up());
        assert_eq!(report.components[0], ("cache".to_owned(), Health::up()));
        let (name, db) = &report.components[1];
        assert_eq!(name, "db");
        assert_eq!(db.status, HealthStatus::Down);
        assert!(
            db.detail.as_deref().unwrap().contains("no answer"),
            "{db:?}"
        );
    }

    #[tokio::test]
    async fn all_up_is_up() {
        let parts: Vec<Arc<dyn Lifecycle>> = vec![Arc::new(Fixed("a", Some(Health::up())))];
        assert!(check_all(&parts, Duration::from_secs(1)).await.is_up());
        let down: Vec<Arc<dyn Lifecycle>> = vec![Arc::new(Fixed("b", Some(Health::down("x"))))];
        assert!(!check_all(&down, Duration::from_secs(1)).await.is_up());
    }
}
