//! gochat-cache: values of each type, a lock kept by its watchdog, and cache-aside where ten
//! concurrent misses cost one load.
//!
//! Run with `cargo run -p example-cache` (in-process), or against Redis with
//! `GOCHAT_CACHE__BACKEND__REDIS__URL=redis://127.0.0.1:6379 cargo run -p example-cache`
//! (the kit's loader: defaults for `GOCHAT_ENV`, then `GOCHAT_CACHE__…` variables).

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use gochat_cache::Config;
use gochat_core::{Context, Loader};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config: Config = Loader::from_process()?
        .env_prefix("GOCHAT_CACHE__")
        .load()?;
    let cache = gochat_cache::new(&Context::new(), config, Default::default()).await?;
    println!("cache on {}", cache.backend_name());

    cache
        .string()
        .set("presence:ann", "gateway-1", Some(Duration::from_secs(30)))
        .await?;
    cache
        .hash()
        .hmset("user:1", &[("name", b"Ann"), ("city", b"Oslo")])
        .await?;
    cache
        .set()
        .sadd("room:1:members", &[b"ann", b"bob"])
        .await?;
    cache
        .zset()
        .zadd("room:1:recent", &[(1.0, b"m1"), (2.0, b"m2"), (3.0, b"m3")])
        .await?;
    println!(
        "presence: {:?}",
        cache
            .string()
            .get("presence:ann")
            .await?
            .map(String::from_utf8)
    );
    println!("user:1 has {} fields", cache.hash().hlen("user:1").await?);
    for (member, score) in cache.zset().zrevrange("room:1:recent", 0, 0).await? {
        println!(
            "latest message: {} (score {score})",
            String::from_utf8_lossy(&member)
        );
    }

    // A lock whose TTL (300 ms) is shorter than the work: the watchdog keeps it.
    let guard = cache
        .lock()
        .acquire("report", Duration::from_millis(300))
        .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!(
        "after 1 s of work the lock is still held: {}",
        guard.is_held()
    );
    guard.release().await;

    // Ten concurrent misses, one load.
    let loads = Arc::new(AtomicUsize::new(0));
    let mut calls = Vec::new();
    for _ in 0..10 {
        let (cache, loads) = (cache.clone(), loads.clone());
        calls.push(tokio::spawn(async move {
            cache
                .get_or_load("profile:1", Duration::from_secs(60), || async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await; // the database
                    Ok::<_, std::io::Error>(Some(b"{\"name\":\"Ann\"}".to_vec()))
                })
                .await
        }));
    }
    for call in calls {
        call.await??;
    }
    println!(
        "10 concurrent lookups, {} load; stats {:?}",
        loads.load(Ordering::SeqCst),
        cache.stats()
    );
    cache.close().await;
    Ok(())
}
