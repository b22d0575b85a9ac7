//! gochat-once: a message resent by a client (same client_msg_id) is stored once and every
//! resend gets the first answer.
//!
//! Run with `cargo run -p example-once`.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use gochat_core::{Context, Env};
use gochat_once::{Config, Options};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctx = Context::new();
    let cache = gochat_cache::new(
        &ctx,
        gochat_cache::Config::for_env(Env::Development),
        Default::default(),
    )
    .await?;
    let once = gochat_once::new(
        &ctx,
        Config::for_env(Env::Development),
        Options::default().cache(cache),
    )
    .await?;

    let next_seq = AtomicU64::new(1);
    for attempt in 1..=3 {
        let seq: u64 = once
            .execute(
                "msg:ann:client-msg-77",
                Duration::from_secs(600),
                || async {
                    // Storing the message assigns the next sequence number — must happen once.
                    Ok::<_, std::io::Error>(next_seq.fetch_add(1, Ordering::SeqCst))
                },
            )
            .await?;
        println!("send attempt {attempt}: acked with seq {seq}");
    }
    println!("messages stored: {}", next_seq.load(Ordering::SeqCst) - 1);
    Ok(())
}
