//! Cache-aside with single-flight: concurrent misses of one key run the loader once.
//!
//! ```
//! use std::time::Duration;
//! use gochat_cache::{Config, Options};
//! use gochat_core::{Context, Env};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), gochat_cache::Error> {
//! let cache = gochat_cache::new(&Context::new(), Config::for_env(Env::Development), Options::default()).await?;
//! let load = || async { Ok::<_, std::io::Error>(Some(b"from the database".to_vec())) };
//! let first = cache.get_or_load("user:7", Duration::from_secs(60), load).await?;
//! let again = cache.get_or_load("user:7", Duration::from_secs(60), load).await?;
//! assert_eq!(first, again);
//! let stats = cache.stats();
//! assert_eq!((stats.hits, stats.misses, stats.loads), (1, 1, 1));
//! # Ok(()) }
//! ```

use std::{
    fmt::Display,
    future::Future,
    sync::{
        Arc, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use serde::{Serialize, de::DeserializeOwned};

use crate::{Cache, Error, command::Command};

/// A value cached by `get_or_load` starts with one tag byte: found, or known to be missing;
/// or, while a loader runs, its lease.
const FOUND: u8 = 1;
const MISSING: u8 = 0;
const LEASE: u8 = 2;

/// How long a loader's lease holds the key at most.
const LEASE_TTL: Duration = Duration::from_secs(10);

/// What cache-aside did through this provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CacheStats {
    /// Calls answered from the cache (a cached "missing" counts).
    pub hits: u64,
    /// Calls that found nothing cached.
    pub misses: u64,
    /// Loader runs (at most one per key at a time, however many concurrent misses).
    pub loads: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    loads: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            loads: self.loads.load(Ordering::Relaxed),
        }
    }
}

impl Cache {
    /// Cache-aside: the cached value of `key`, or else `loader`'s, cached for `ttl` (spread by
    /// the configured jitter). A loader's `None` ("does not exist") is cached for the
    /// configured `negative_ttl`, so a missing row is not looked up on every request.
    ///
    /// Concurrent calls for one key that all miss run the loader once: the others wait and
    /// read what it cached. A failed load caches nothing and is returned to its caller.
    ///
    /// A loader holds a lease on the key while it runs; deleting the key (the invalidation
    /// after a write) takes the lease away, and the loaded value — read before the write,
    /// perhaps — is then returned but not cached. So a load racing an invalidation can never
    /// put the old row back for a whole TTL, on either backend.
    /// Keys written here are framed (a tag byte first): read them only through this method.
    ///
    /// # Errors
    /// [`Error::Load`] with the loader's error; backend errors.
    pub async fn get_or_load<F, Fut, E>(
        &self,
        key: &str,
        ttl: Duration,
        loader: F,
    ) -> Result<Option<Vec<u8>>, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<Vec<u8>>, E>>,
        E: Display,
    {
        let started = std::time::Instant::now();
        let outcome = self.load_through(key, ttl, loader).await;
        let label = match &outcome {
            Ok((_, true)) => "hit",
            Ok((_, false)) => "miss",
            Err(_) => "error",
        };
        self.shared.latency.record(
            started.elapsed().as_secs_f64(),
            &[opentelemetry::KeyValue::new("outcome", label)],
        );
        outcome.map(|(value, _)| value)
    }

    /// `get_or_load`, and whether the value was cached already.
    async fn load_through<F, Fut, E>(
        &self,
        key: &str,
        ttl: Duration,
        loader: F,
    ) -> Result<(Option<Vec<u8>>, bool), Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<Vec<u8>>, E>>,
        E: Display,
    {
        let counters = &self.shared.stats;
        if let Some(cached) = self.read_framed(key).await? {
            counters.hits.fetch_add(1, Ordering::Relaxed);
            return Ok((cached, true));
        }
        counters.misses.fetch_add(1, Ordering::Relaxed);

        let gate = {
            let mut flights = self
                .shared
                .flights
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            flights.entry(key.to_owned()).or_default().clone()
        };
        let outcome = async {
            let _turn = gate.lock().await;
            // Someone ahead of us in the queue may have loaded it.
            if let Some(cached) = self.read_framed(key).await? {
                return Ok(cached);
            }
            counters.loads.fetch_add(1, Ordering::Relaxed);
            let mut lease = vec![LEASE];
            lease.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
            // Another process loading the key holds it already: load, answer, cache nothing.
            let leased = self.string().set_nx(key, &lease, Some(LEASE_TTL)).await?;
            let loaded = loader().await.map_err(|e| Error::Load {
                key: key.to_owned(),
                reason: e.to_string(),
            });
            let loaded = match loaded {
                Ok(loaded) => loaded,
                Err(e) => {
                    if leased {
                        self.release_lease(key, lease).await?;
                    }
                    return Err(e);
                }
            };
            let (framed, ttl) = match &loaded {
                Some(value) => {
                    let mut framed = Vec::with_capacity(value.len() + 1);
                    framed.push(FOUND);
                    framed.extend_from_slice(value);
                    (Some(framed), self.jittered(ttl))
                }
                None if !self.shared.negative_ttl.is_zero() => {
                    (Some(vec![MISSING]), self.shared.negative_ttl)
                }
                None => (None, ttl),
            };
            match framed {
                Some(framed) if leased => {
                    // Written only if no invalidation took the lease meanwhile.
                    self.one(Command::SetIfEq {
                        key: self.key(key),
                        expected: lease,
                        value: framed,
                        ttl,
                    })
                    .await?;
                }
                None if leased => self.release_lease(key, lease).await?,
                _ => {}
            }
            Ok(loaded)
        }
        .await;
        {
            let mut flights = self
                .shared
                .flights
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // Only the map and this call hold it: nobody is waiting, forget the key.
            if Arc::strong_count(&gate) == 2 {
                flights.remove(key);
            }
        }
        outcome.map(|value| (value, false))
    }

    /// [`Cache::get_or_load`] for JSON values.
    ///
    /// # Errors
    /// As `get_or_load`, and [`Error::Serde`].
    pub async fn get_or_load_json<T, F, Fut, E>(
        &self,
        key: &str,
        ttl: Duration,
        loader: F,
    ) -> Result<Option<T>, Error>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, E>>,
        E: Display,
    {
        let serde_error = |e: serde_json::Error| Error::Serde {
            key: self.key(key),
            reason: e.to_string(),
        };
        let bytes = self
            .get_or_load(key, ttl, || async {
                match loader().await {
                    Ok(Some(value)) => serde_json::to_vec(&value)
                        .map(Some)
                        .map_err(|e| e.to_string()),
                    Ok(None) => Ok(None),
                    Err(e) => Err(e.to_string()),
                }
            })
            .await?;
        bytes
            .map(|b| serde_json::from_slice(&b).map_err(serde_error))
            .transpose()
    }

    /// Cache-aside figures since the provider was built.
    pub fn stats(&self) -> CacheStats {
        self.shared.stats.snapshot()
    }

    /// `Some(Some(v))` cached value, `Some(None)` cached "missing", `None` not cached.
    async fn release_lease(&self, key: &str, lease: Vec<u8>) -> Result<(), Error> {
        self.one(Command::DelIfEq {
            key: self.key(key),
            value: lease,
        })
        .await
        .map(drop)
    }

    async fn read_framed(&self, key: &str) -> Result<Option<Option<Vec<u8>>>, Error> {
        Ok(match self.string().get(key).await? {
            Some(bytes) => match bytes.split_first() {
                Some((&FOUND, value)) => Some(Some(value.to_vec())),
                Some((&MISSING, [])) => Some(None),
                // Not written by get_or_load: treat as not cached; the load overwrites it.
                _ => None,
            },
            None => None,
        })
    }

    fn jittered(&self, ttl: Duration) -> Duration {
        let jitter = self.shared.ttl_jitter;
        if jitter == 0.0 {
            return ttl;
        }
        // A uniform factor in [1 - jitter, 1 + jitter].
        let unit = f64::from(u16::from_le_bytes([
            uuid::Uuid::new_v4().as_bytes()[0],
            uuid::Uuid::new_v4().as_bytes()[1],
        ])) / f64::from(u16::MAX);
        ttl.mul_f64(1.0 - jitter + 2.0 * jitter * unit)
            .max(Duration::from_millis(1))
    }
}
