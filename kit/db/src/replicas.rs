//! Read replicas: each checked in the background; reads go round robin over the healthy ones.
//! A replica that cannot be reached at start is connected by a later check.

use std::{
    sync::{
        OnceLock,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use gochat_clog::Logger;
use sea_orm::DatabaseConnection;

use crate::error::Result;

pub(crate) struct Replica {
    dsn: String,
    name: String,
    connection: OnceLock<DatabaseConnection>,
    healthy: AtomicBool,
}

pub(crate) struct Replicas {
    replicas: Vec<Replica>,
    next: AtomicUsize,
}

impl Replicas {
    /// Replicas at `dsns`, not connected yet; `names` are what logs show (passwords hidden).
    pub(crate) fn new(dsns: &[String], names: impl Fn(&str) -> String) -> Self {
        Self {
            replicas: dsns
                .iter()
                .map(|dsn| Replica {
                    dsn: dsn.clone(),
                    name: names(dsn),
                    connection: OnceLock::new(),
                    healthy: AtomicBool::new(false),
                })
                .collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// The next healthy replica, round robin; `None` when none is healthy.
    pub(crate) fn pick(&self) -> Option<&DatabaseConnection> {
        let count = self.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..count)
            .map(|i| &self.replicas[(start + i) % count])
            .filter(|r| r.healthy.load(Ordering::Relaxed))
            .find_map(|r| r.connection.get())
    }

    pub(crate) fn health(&self) -> Vec<bool> {
        self.replicas
            .iter()
            .map(|r| r.healthy.load(Ordering::Relaxed))
            .collect()
    }

    /// Connects replicas not connected yet, pings every one (bounded by `timeout`) and
    /// records which answer; logs changes.
    pub(crate) async fn check<F, Fut>(&self, connect: F, timeout: Duration, log: &Logger)
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<DatabaseConnection>>,
    {
        for replica in &self.replicas {
            let answered = match replica.connection.get() {
                Some(connection) => tokio::time::timeout(timeout, connection.ping())
                    .await
                    .map_err(|_| format!("no answer in {timeout:?}"))
                    .and_then(|pinged| pinged.map_err(|e| e.to_string())),
                None => match connect(replica.dsn.clone()).await {
                    Ok(connection) => {
                        let _ = replica.connection.set(connection);
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                },
            };
            let healthy = answered.is_ok();
            let was = replica.healthy.swap(healthy, Ordering::Relaxed);
            match answered {
                Ok(()) if !was => {
                    gochat_clog::info!(log, replica = replica.name, "replica up: reads go to it");
                }
                Err(error) if was || replica.connection.get().is_none() => {
                    gochat_clog::warn!(
                        log,
                        replica = replica.name,
                        error,
                        "replica down: reads go elsewhere"
                    );
                }
                _ => {}
            }
        }
    }

    /// Every connected replica.
    pub(crate) fn connections(&self) -> impl Iterator<Item = &DatabaseConnection> {
        self.replicas.iter().filter_map(|r| r.connection.get())
    }
}
