//! Id generation rates, and how close Snowflake comes to its limit of 4,096 ids per
//! millisecond per worker.
//!
//! Run with `cargo bench -p gochat-uid --bench ids`. Criterion measures each generator; then
//! one-second runs side by side print the ratios that go in docs/benchmarks.md.

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use criterion::{Criterion, Throughput};
use gochat_core::{Context, Env};
use gochat_uid::{Config, Options, Uid, Worker};

/// 4,096 ids per millisecond.
const LIMIT_PER_SECOND: f64 = 4_096_000.0;

fn uid() -> Uid {
    let mut config = Config::for_env(Env::Development);
    config.worker = Worker::Static(1);
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
        .block_on(gochat_uid::new(&Context::new(), config, Options::default()))
        .expect("a static-worker generator")
}

/// Ids per second made by `f` in one second.
fn rate(mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < Duration::from_secs(1) {
        for _ in 0..1_000 {
            f();
        }
        count += 1_000;
    }
    count as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let uid = uid();
    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("uid");
    group.throughput(Throughput::Elements(1));
    group.bench_function("snowflake", |b| {
        b.iter(|| black_box(uid.snowflake().expect("an id")));
    });
    group.bench_function("uuid_v7", |b| b.iter(|| black_box(uid.uuid())));
    group.finish();
    criterion.final_summary();

    let snowflake = rate(|| {
        black_box(uid.snowflake().expect("an id"));
    });
    let uuid = rate(|| {
        black_box(uid.uuid());
    });
    println!(
        "snowflake: {snowflake:.0} ids/s = {:.3} of the {LIMIT_PER_SECOND:.0} ids/s per-worker limit",
        snowflake / LIMIT_PER_SECOND
    );
    println!(
        "uuid_v7:   {uuid:.0} ids/s = {:.2} x snowflake",
        uuid / snowflake
    );
}
