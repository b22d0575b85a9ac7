//! gochat-uid: Snowflake ids with a worker id leased from coord, decoded; and UUIDv7.
//!
//! Run with `cargo run -p example-uid`.

use gochat_core::{Context, Env};
use gochat_uid::{Config, Options, Worker};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctx = Context::new();
    let coord = gochat_coord::new(
        &ctx,
        gochat_coord::Config::for_env(Env::Development),
        Default::default(),
    )
    .await?;

    let mut config = Config::for_env(Env::Development);
    config.worker = Worker::Leased {
        service: "example".into(),
    };
    let first = gochat_uid::new(
        &ctx,
        config.clone(),
        Options::default().coord(coord.clone()),
    )
    .await?;
    let second = gochat_uid::new(&ctx, config, Options::default().coord(coord.clone())).await?;
    println!(
        "leased worker ids: {} and {}",
        first.worker_id(),
        second.worker_id()
    );

    for uid in [&first, &second] {
        let id = uid.snowflake()?;
        let parts = id.decode();
        println!(
            "snowflake {id} (as sent to clients: \"{id}\"): worker {}, sequence {}, made {:?}",
            parts.worker, parts.sequence, parts.time
        );
    }
    println!("uuid v7 {}", first.uuid());

    first.close().await;
    second.close().await;
    coord.close().await;
    Ok(())
}
