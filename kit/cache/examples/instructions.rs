//! Client-side work per operation, for counting under callgrind (instruction counts repeat
//! exactly, unlike wall-clock rates on a noisy machine).
//!
//! `valgrind --tool=callgrind target/release/examples/instructions {fred|kit} N` runs N
//! sequential SET+GET pairs on one thread; the difference between N and 0 divided by N is the
//! instructions per pair. See docs/benchmarks.md.

use fred::prelude::{Builder, ClientLike, Config as FredConfig, KeysInterface};
use gochat_cache::{Backend, Config, RedisConfig};
use gochat_core::{Context, Env};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let client = args.next().unwrap_or_else(|| "kit".to_owned());
    let n: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let url = std::env::var("GOCHAT_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let redis = RedisConfig::with_url(Env::Production, &url);
    match client.as_str() {
        "fred" => {
            let pool = Builder::from_config(FredConfig::from_url(&url).expect("a Redis URL"))
                .with_performance_config(|p| p.default_command_timeout = redis.command_timeout)
                .build_pool(1)
                .expect("a pool");
            pool.init().await.expect("Redis answers");
            for _ in 0..n {
                pool.set::<(), _, _>("instr:k", "value", None, None, false)
                    .await
                    .expect("set");
                let _: Option<String> = pool.get("instr:k").await.expect("get");
            }
            let _ = pool.quit().await;
        }
        _ => {
            let mut config = Config::for_env(Env::Production);
            config.key_prefix = "instr:".to_owned();
            let mut redis = redis;
            redis.pool_size = 1;
            config.backend = Backend::Redis(Box::new(redis));
            let cache = gochat_cache::new(&Context::new(), config, Default::default())
                .await
                .expect("a cache");
            for _ in 0..n {
                cache.string().set("k", "value", None).await.expect("set");
                let _ = cache.string().get("k").await.expect("get");
            }
            cache.close().await;
        }
    }
}
