//! Behaviour-suite harness and real-engine fixtures for gochat-kit's tests.
//!
//! Every stateful component has ONE behaviour suite, written once against its Provider and
//! run against every backend. [`behaviour_suite!`] writes one `#[test]` per (case, backend),
//! so `cargo test -- --list` shows `lock_excludes::memory`, `lock_excludes::redis`, …
//!
//! Real engines are found through environment variables ([`Engine::var`]), which
//! `scripts/engines env` prints. Without `GOCHAT_TEST_REQUIRE`, a case whose engine is not
//! configured or does not answer is skipped with a printed reason; with
//! `GOCHAT_TEST_REQUIRE=all` (what `scripts/test` and CI set) it FAILS, so a missing server can
//! never pass silently.
//!
//! ```
//! use gochat_testkit::{Engine, Fixture, behaviour_suite};
//!
//! // The provider under test: one type, whatever the backend underneath.
//! #[derive(Clone)]
//! struct Kv(std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>);
//!
//! async fn memory(_fx: Fixture) -> Option<Kv> {
//!     Some(Kv(Default::default()))
//! }
//!
//! async fn put_then_get(kv: Kv, fx: Fixture) {
//!     let key = fx.name("greeting"); // unique per run and per test
//!     kv.0.lock().unwrap().insert(key.clone(), "hi".into());
//!     assert_eq!(kv.0.lock().unwrap().get(&key).map(String::as_str), Some("hi"));
//! }
//!
//! behaviour_suite! {
//!     backends: [memory],
//!     cases: [put_then_get],
//! }
//! # fn main() {}
//! ```
//!
//! A real backend's setup asks for its engine and returns `None` to skip:
//!
//! ```no_run
//! # use gochat_testkit::{Engine, Fixture};
//! # struct Cache;
//! # impl Cache { async fn connect(_url: &str, _prefix: &str) -> Cache { Cache } }
//! async fn redis(fx: Fixture) -> Option<Cache> {
//!     let url = gochat_testkit::endpoint(Engine::Redis).await?;
//!     Some(Cache::connect(&url, fx.prefix()).await)
//! }
//! ```
// Library code returns typed errors; only proven invariants may panic (with a comment).
#![warn(clippy::unwrap_used)]

mod engine;
mod fixture;
mod proxy;
mod suite;

pub use engine::{Engine, Requirement, endpoint, endpoints, env_list, probe};
pub use fixture::{Fixture, run_id};
pub use proxy::TcpProxy;
pub use suite::{block_on, run_case};
