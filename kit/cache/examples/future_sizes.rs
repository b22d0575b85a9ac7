//! Prints the size of the futures on the SET path (a diagnostic for docs/benchmarks.md).
//! Run with `cargo run -p gochat-cache --example future_sizes`.

use fred::prelude::{Builder, Config as FredConfig, KeysInterface};
use gochat_cache::Config;
use gochat_core::{Context, Env};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cache = gochat_cache::new(
        &Context::new(),
        Config::for_env(Env::Development),
        Default::default(),
    )
    .await
    .expect("an in-process cache");
    let strings = cache.string();
    let set = strings.set("k", "v", None);
    println!(
        "gochat-cache string().set future: {} bytes",
        size_of_val(&set)
    );
    let get = strings.get("k");
    println!(
        "gochat-cache string().get future: {} bytes",
        size_of_val(&get)
    );
    let pool = Builder::from_config(FredConfig::default())
        .build_pool(1)
        .expect("a pool");
    let raw = pool.set::<(), _, _>("k", "v", None, None, false);
    println!("fred set future: {} bytes", size_of_val(&raw));
    let raw_get = pool.get::<Option<String>, _>("k");
    println!("fred get future: {} bytes", size_of_val(&raw_get));
}
