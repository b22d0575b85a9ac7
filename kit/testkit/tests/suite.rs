//! The harness on a toy provider with two backends: in-memory and a real Redis.
//!
//! `cargo test -p gochat-testkit --test suite -- --list` shows each case once per backend.

mod common;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use gochat_testkit::{Engine, Fixture, behaviour_suite};

/// One handle type whatever the backend, as every kit Provider is.
#[derive(Clone)]
enum Kv {
    Memory(Arc<Mutex<HashMap<String, String>>>),
    Redis(String),
}

impl Kv {
    async fn set(&self, key: &str, value: &str) {
        match self {
            Self::Memory(map) => {
                map.lock().unwrap().insert(key.to_owned(), value.to_owned());
            }
            Self::Redis(url) => {
                assert_eq!(
                    common::redis_command(url, &["SET", key, value, "EX", "600"]).await,
                    "+OK\r\n"
                );
            }
        }
    }

    async fn get(&self, key: &str) -> Option<String> {
        match self {
            Self::Memory(map) => map.lock().unwrap().get(key).cloned(),
            Self::Redis(url) => {
                let reply = common::redis_command(url, &["GET", key]).await;
                (reply != "$-1\r\n").then(|| reply.lines().nth(1).unwrap().to_owned())
            }
        }
    }
}

async fn memory(_fx: Fixture) -> Option<Kv> {
    Some(Kv::Memory(Arc::default()))
}

async fn redis(_fx: Fixture) -> Option<Kv> {
    let url = gochat_testkit::endpoint(Engine::Redis).await?;
    Some(Kv::Redis(url))
}

async fn set_then_get(kv: Kv, fx: Fixture) {
    let key = fx.name("greeting");
    assert_eq!(kv.get(&key).await, None, "a fresh prefix starts empty");
    kv.set(&key, "hello").await;
    assert_eq!(kv.get(&key).await.as_deref(), Some("hello"));
}

async fn fixtures_know_their_test(kv: Kv, fx: Fixture) {
    assert_eq!(fx.case(), "fixtures_know_their_test");
    assert!(["memory", "redis"].contains(&fx.backend()));
    // Two fixtures never share a prefix, so parallel tests on one server cannot collide.
    let other = Fixture::new(fx.case(), fx.backend());
    kv.set(&fx.name("k"), "mine").await;
    assert_eq!(kv.get(&other.name("k")).await, None);
}

behaviour_suite! {
    backends: [memory, redis],
    cases: [set_then_get, fixtures_know_their_test],
}
