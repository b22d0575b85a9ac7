//! gochat-coord: register, discover, hot-reload a setting, take a lock, lease an id.
//!
//! Run with `cargo run -p example-coord` (in-process backend), or against etcd with
//! `GOCHAT_COORD__BACKEND__ETCD__ENDPOINTS='["http://127.0.0.1:2379"]' cargo run -p example-coord`
//! (the kit's loader: defaults for `GOCHAT_ENV`, then `GOCHAT_COORD__…` variables).

use std::time::Duration;

use gochat_coord::{Config, Instance, Options, RegistryEvent};
use gochat_core::{Context, Env, Loader};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Limits {
    per_second: u32,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let log = gochat_clog::init(
        gochat_clog::Config::for_env(Env::Development),
        Default::default(),
    )?;
    let ctx = Context::new();
    let config: Config = Loader::from_process()?
        .env_prefix("GOCHAT_COORD__")
        .load()?;
    let coord = gochat_coord::new(&ctx, config, Options::default().logger(log.clone())).await?;
    log.info(format!("coord on {}", coord.backend_name()));

    // Registry: watch, register, see it arrive.
    let mut events = coord.registry().watch("im-repo")?;
    let me = coord
        .registry()
        .register(
            Instance::new("im-repo", "repo-1", "127.0.0.1:9300"),
            Duration::from_secs(10),
        )
        .await?;
    if let Some(RegistryEvent::Added(instance)) = events.next().await {
        log.info(format!("discovered {} at {}", instance.id, instance.addr));
    }

    // Config centre: a hot-reloaded value that refuses bad updates.
    let scope = coord.config().scope("im-repo", "ratelimit")?;
    let mut limits = scope
        .watched("queries", Limits { per_second: 100 }, |l: &Limits| {
            (l.per_second > 0)
                .then_some(())
                .ok_or_else(|| "per_second must be above zero".to_owned())
        })
        .await?;
    scope.put("queries", &Limits { per_second: 250 }).await?;
    log.info(format!(
        "limit reloaded: {} per second",
        limits.changed().await.per_second
    ));
    scope.put("queries", &Limits { per_second: 0 }).await?; // refused: a warning, value kept
    scope.put("queries", &Limits { per_second: 300 }).await?;
    log.info(format!(
        "limit reloaded: {} per second",
        limits.changed().await.per_second
    ));

    // Lock and instance id.
    let lock = coord
        .lock()
        .acquire("daily-report", Duration::from_secs(10))
        .await?;
    log.info(format!("holding {}: {}", lock.name(), lock.is_held()));
    lock.release().await;
    let id = coord.instance_ids("im-repo", 1024).await?;
    log.info(format!("instance id {}", id.id()));

    me.deregister().await;
    coord.close().await;
    log.flush_and_close();
    Ok(())
}
