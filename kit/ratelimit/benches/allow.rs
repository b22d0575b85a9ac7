//! gochat-ratelimit's local `allow()` against raw governor in one run, and Redis `allow()`
//! rates.
//!
//! Run with `cargo bench -p gochat-ratelimit --bench allow` (Redis from `scripts/engines up`;
//! `GOCHAT_TEST_REDIS_URL` overrides `redis://127.0.0.1:6379`). Local: 1,000,000 checks of one
//! key under a quota that never denies, kit and raw governor alternating for 5 rounds, medians
//! printed. Redis: 2 s of checks one at a time, then 64 in flight.

use std::{
    hint::black_box,
    num::NonZeroU32,
    sync::Arc,
    time::{Duration, Instant},
};

use gochat_cache::{Backend as CacheBackend, RedisConfig};
use gochat_core::{Context, Env};
use gochat_ratelimit::{BackendKind, Config, Options, RateLimiter, Rule};
use governor::{Quota, RateLimiter as Governor};

const CHECKS: u32 = 1_000_000;
const ROUNDS: usize = 5;
/// Never denies within a run: a million per second (the finest rule), bursts of a billion.
const OPEN: Rule = Rule::new(1_000_000, Duration::from_secs(1), 1_000_000_000);

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(run());
}

async fn run() {
    let config = Config::for_env(Env::Development).rule("open", OPEN);
    let kit = gochat_ratelimit::new(&Context::new(), config, Options::default())
        .await
        .expect("a local limiter");
    let quota = Quota::with_period(OPEN.interval())
        .expect("a period")
        .allow_burst(NonZeroU32::new(OPEN.burst).expect("a burst"));
    let raw = Governor::dashmap(quota);
    let key = "user:42".to_owned();

    let (mut kit_ns, mut raw_ns) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let start = Instant::now();
        for _ in 0..CHECKS {
            black_box(raw.check_key(black_box(&key)).is_ok());
        }
        raw_ns.push(per_check(start.elapsed()));
        let start = Instant::now();
        for _ in 0..CHECKS {
            let decision = kit
                .allow(black_box("user:42"), "open")
                .await
                .expect("a decision");
            black_box(decision.allowed);
        }
        kit_ns.push(per_check(start.elapsed()));
        println!(
            "round {round}: raw governor {:.0} ns/check, gochat local {:.0} ns/check",
            raw_ns[round], kit_ns[round]
        );
    }
    let (raw_median, kit_median) = (median(raw_ns), median(kit_ns));
    println!(
        "local: raw governor {raw_median:.0} ns, gochat {kit_median:.0} ns per check (medians); raw/kit {:.2}",
        raw_median / kit_median
    );

    let url = std::env::var("GOCHAT_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let mut cache = gochat_cache::Config::for_env(Env::Production);
    cache.key_prefix = "bench:".to_owned();
    cache.backend = CacheBackend::Redis(Box::new(RedisConfig::with_url(Env::Production, url)));
    let cache = gochat_cache::new(&Context::new(), cache, Default::default())
        .await
        .expect("Redis answers");
    let mut config = Config::for_env(Env::Production).rule("open", OPEN);
    config.backend = BackendKind::Redis;
    let redis = gochat_ratelimit::new(&Context::new(), config, Options::default().cache(cache))
        .await
        .expect("a Redis limiter");
    let one = rate(&redis, 1).await;
    let many = rate(&redis, 64).await;
    println!("redis: {one:.0} checks/s one at a time, {many:.0} checks/s with 64 in flight");
}

fn per_check(elapsed: Duration) -> f64 {
    elapsed.as_nanos() as f64 / f64::from(CHECKS)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Checks per second over 2 s, `parallel` at a time, each on its own key.
async fn rate(limiter: &RateLimiter, parallel: usize) -> f64 {
    let start = Instant::now();
    let deadline = Duration::from_secs(2);
    let tasks: Vec<_> = (0..parallel)
        .map(|n| {
            let limiter = limiter.clone();
            let key: Arc<str> = format!("user:{n}").into();
            tokio::spawn(async move {
                let mut checks = 0u64;
                while start.elapsed() < deadline {
                    let decision = limiter.allow(&key, "open").await.expect("a decision");
                    assert!(decision.allowed && !decision.local, "decided by Redis");
                    checks += 1;
                }
                checks
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("a bench task");
    }
    total as f64 / start.elapsed().as_secs_f64()
}
