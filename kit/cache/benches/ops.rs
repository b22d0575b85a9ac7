//! gochat-cache against raw fred on the same Redis, and the in-process backend.
//!
//! Run with `cargo bench -p gochat-cache --bench ops` (Redis from `scripts/engines up`;
//! `GOCHAT_TEST_REDIS_URL` overrides `redis://127.0.0.1:6379`). Criterion measures each
//! client; then sustained runs, interleaved so machine noise hits both alike, print the
//! kit/raw ratios that go in docs/benchmarks.md.

use std::{
    future::Future,
    hint::black_box,
    time::{Duration, Instant},
};

use criterion::Criterion;
use fred::prelude::{Builder, ClientLike, Config as FredConfig, KeysInterface, Pool};
use gochat_cache::{Backend, Cache, Config, MemoryConfig, RedisConfig};
use gochat_core::{Context, Env};
use tokio::runtime::Runtime;

const POOL: usize = 4;
const IN_FLIGHT: usize = 64;

struct Clients {
    fred: Pool,
    kit: Cache,
    memory: Cache,
}

fn clients(rt: &Runtime, url: &str) -> Clients {
    rt.block_on(async {
        let redis = RedisConfig::with_url(Env::Production, url);
        // The raw client gets the same settings the kit applies (per-command timeout
        // included), so the ratio measures the kit's own layer, not a missing timer.
        let fred = Builder::from_config(FredConfig::from_url(url).expect("a Redis URL"))
            .with_performance_config(|p| p.default_command_timeout = redis.command_timeout)
            .with_connection_config(|c| c.connection_timeout = redis.connect_timeout)
            .build_pool(POOL)
            .expect("a fred pool");
        fred.init().await.expect("Redis answers");
        let mut config = Config::for_env(Env::Production);
        config.key_prefix = "bench:".to_owned();
        let mut redis = redis;
        redis.pool_size = POOL;
        config.backend = Backend::Redis(Box::new(redis));
        let kit = gochat_cache::new(&Context::new(), config.clone(), Default::default())
            .await
            .expect("kit on Redis");
        config.backend = Backend::Memory(MemoryConfig::named("bench"));
        let memory = gochat_cache::new(&Context::new(), config, Default::default())
            .await
            .expect("kit in memory");
        fred.set::<(), _, _>("bench:k", "value", None, None, false)
            .await
            .expect("seed");
        kit.string().set("k", "value", None).await.expect("seed");
        memory.string().set("k", "value", None).await.expect("seed");
        Clients { fred, kit, memory }
    })
}

/// Operations per second of `op`, run `IN_FLIGHT` at a time (or one at a time) for `secs`.
fn rate<F, Fut>(rt: &Runtime, secs: f64, parallel: usize, op: F) -> f64
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    rt.block_on(async move {
        let start = Instant::now();
        let deadline = Duration::from_secs_f64(secs);
        let tasks: Vec<_> = (0..parallel)
            .map(|_| {
                let op = op.clone();
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while start.elapsed() < deadline {
                        op().await;
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut total = 0;
        for task in tasks {
            total += task.await.expect("a bench task");
        }
        total as f64 / start.elapsed().as_secs_f64()
    })
}

fn main() {
    let url = std::env::var("GOCHAT_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let c = clients(&rt, &url);

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("cache_get");
    group.bench_function("fred", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                c.fred
                    .get::<Option<String>, _>("bench:k")
                    .await
                    .expect("get"),
            )
        });
    });
    group.bench_function("gochat_redis", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(c.kit.string().get("k").await.expect("get")) });
    });
    group.bench_function("gochat_memory", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(c.memory.string().get("k").await.expect("get")) });
    });
    group.finish();
    criterion.final_summary();

    // Sustained, side by side: three interleaved rounds of each, best of three.
    for (name, parallel) in [("one at a time", 1), ("64 in flight", IN_FLIGHT)] {
        let (mut fred_get, mut kit_get, mut fred_set, mut kit_set) = (0f64, 0f64, 0f64, 0f64);
        for _ in 0..3 {
            let f = c.fred.clone();
            fred_get = fred_get.max(rate(&rt, 2.0, parallel, move || {
                let f = f.clone();
                async move {
                    black_box(f.get::<Option<String>, _>("bench:k").await.expect("get"));
                }
            }));
            let k = c.kit.clone();
            kit_get = kit_get.max(rate(&rt, 2.0, parallel, move || {
                let k = k.clone();
                async move {
                    black_box(k.string().get("k").await.expect("get"));
                }
            }));
            let f = c.fred.clone();
            fred_set = fred_set.max(rate(&rt, 2.0, parallel, move || {
                let f = f.clone();
                async move {
                    f.set::<(), _, _>("bench:s", "value", None, None, false)
                        .await
                        .expect("set");
                }
            }));
            let k = c.kit.clone();
            kit_set = kit_set.max(rate(&rt, 2.0, parallel, move || {
                let k = k.clone();
                async move {
                    k.string().set("s", "value", None).await.expect("set");
                }
            }));
        }
        println!(
            "{name}: GET fred {fred_get:.0}/s, gochat {kit_get:.0}/s, ratio {:.3}; SET fred {fred_set:.0}/s, gochat {kit_set:.0}/s, ratio {:.3}",
            kit_get / fred_get,
            kit_set / fred_set
        );
    }
    // Diagnosis: raw fred through its untyped `custom` path, which the kit uses.
    let f = c.fred.clone();
    let custom_get = rate(&rt, 2.0, IN_FLIGHT, move || {
        let f = f.clone();
        async move {
            let cmd = fred::types::CustomCommand::new_static(
                "GET",
                fred::types::ClusterHash::FirstKey,
                false,
            );
            black_box(
                f.custom::<fred::types::Value, _>(cmd, vec!["bench:k"])
                    .await
                    .expect("get"),
            );
        }
    });
    println!("64 in flight: GET raw fred through `custom` {custom_get:.0}/s");
    // Diagnosis: raw fred SET with the argument types the kit uses (owned key, bytes value,
    // the reply kept as a value), against raw fred SET with a borrowed string.
    let (mut plain, mut typed_like_kit) = (0f64, 0f64);
    for _ in 0..3 {
        let f = c.fred.clone();
        plain = plain.max(rate(&rt, 2.0, IN_FLIGHT, move || {
            let f = f.clone();
            async move {
                f.set::<(), _, _>("bench:s", "value", None, None, false)
                    .await
                    .expect("set");
            }
        }));
        let f = c.fred.clone();
        typed_like_kit = typed_like_kit.max(rate(&rt, 2.0, IN_FLIGHT, move || {
            let f = f.clone();
            async move {
                let value = fred::types::Value::Bytes(b"value".to_vec().into());
                black_box(
                    f.set::<fred::types::Value, _, _>(
                        "bench:s".to_owned(),
                        value,
                        None,
                        None,
                        false,
                    )
                    .await
                    .expect("set"),
                );
            }
        }));
    }
    println!(
        "64 in flight: SET raw fred, str value {plain:.0}/s; bytes value and Value reply {typed_like_kit:.0}/s; ratio {:.3}",
        typed_like_kit / plain
    );
    let m = c.memory.clone();
    let memory_get = rate(&rt, 2.0, 1, move || {
        let m = m.clone();
        async move {
            black_box(m.string().get("k").await.expect("get"));
        }
    });
    println!("memory backend, one at a time: GET {memory_get:.0}/s");
    rt.block_on(async {
        let _ = c.fred.quit().await;
    });
}
