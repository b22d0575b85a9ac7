//! The limiter's background work ends with its context, at once.

use std::time::Duration;

use gochat_core::{Context, Env};
use gochat_ratelimit::Config;

#[tokio::test]
async fn its_context_shuts_down_without_waiting_for_the_next_sweep() {
    let ctx = Context::new();
    let _limiter =
        gochat_ratelimit::new(&ctx, Config::for_env(Env::Development), Default::default())
            .await
            .unwrap();
    // The sweeper runs every minute; a shutdown must not wait for it (the bound only stops
    // a hang: before the fix, shutdown waited for the next sweep, up to a minute).
    assert!(ctx.shutdown(Duration::from_secs(5)).await.is_ok());
}
