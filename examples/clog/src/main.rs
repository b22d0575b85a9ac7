//! gochat-clog in a small program: namespaces, request spans with trace ids, runtime levels.
//!
//! Run with `cargo run -p example-clog` (pretty, development) or
//! `GOCHAT_ENV=production cargo run -p example-clog` (JSON lines).

use gochat_clog::{Config, Options};
use gochat_core::Loader;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The kit's loader: defaults for `GOCHAT_ENV`, then `GOCHAT_LOG__…` (`GOCHAT_LOG__LEVEL=warn`).
    let config: Config = Loader::from_process()?.env_prefix("GOCHAT_LOG__").load()?;
    let log = gochat_clog::init(config, Options::default().namespace("example"))?;

    let cache = log.namespace("cache");
    let lock = cache.namespace("lock");
    cache.info("connected");

    // Everything logged while handling one request carries its trace id.
    let span = log.request_span(None);
    span.in_scope(|| {
        gochat_clog::info!(lock, key = "room:42", ttl_ms = 3000, "lock acquired");
        tracing::warn!(user_id = "1001", "plain tracing events carry it too");
        let id = gochat_clog::current_trace_id().unwrap_or_default();
        gochat_clog::debug!(cache, "pass this trace id on to other services: {id}");
    });

    // Levels change at runtime (coord drives this in a service); a bad directive is refused.
    log.set_level("warn")?;
    cache.info("not shown: level is warn now");
    if let Err(e) = log.set_level("verbose") {
        cache.warn(format!("rejected level change, kept `warn`: {e}"));
    }

    log.flush_and_close();
    Ok(())
}
