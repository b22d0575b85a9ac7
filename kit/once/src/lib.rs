#![doc = include_str!("../README.md")]
// Library code returns typed errors; only proven invariants may panic (with a comment).
#![warn(clippy::unwrap_used)]

mod config;
mod error;

use std::{fmt, future::Future, time::Duration};

use gochat_cache::Cache;
use gochat_core::{Context, Env};
use serde::{Serialize, de::DeserializeOwned};
use tokio::time::sleep;

pub use config::Config;
pub use error::Error;

/// Injected dependencies.
#[derive(Debug, Default, Clone)]
#[non_exhaustive]
pub struct Options {
    cache: Option<Cache>,
}

impl Options {
    /// The cache that holds results and locks: Redis for once-across-processes, in-process for
    /// standalone. Default: a new in-process cache.
    #[must_use]
    pub fn cache(mut self, cache: Cache) -> Self {
        self.cache = Some(cache);
        self
    }
}

/// Builds the idempotency Provider over a cache.
///
/// # Errors
/// [`Error::Config`] naming a bad field; cache errors when building the default cache.
pub async fn new(ctx: &Context, config: Config, opts: Options) -> Result<Once, Error> {
    config.validate()?;
    let cache = match opts.cache {
        Some(cache) => cache,
        None => {
            gochat_cache::new(
                ctx,
                gochat_cache::Config::for_env(Env::Development),
                Default::default(),
            )
            .await?
        }
    };
    Ok(Once { cache, config })
}

/// What [`Once::do_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// This call ran the operation, and it succeeded.
    Ran,
    /// The operation had already succeeded for this key within the TTL; it did not run.
    AlreadyDone,
}

/// The idempotency Provider: a cheap `Clone` handle.
#[derive(Clone)]
pub struct Once {
    cache: Cache,
    config: Config,
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once")
            .field("cache", &self.cache)
            .field("config", &self.config)
            .finish()
    }
}

impl Once {
    /// Runs `f` at most once per `key` within `ttl`. Concurrent callers with one key wait
    /// for the one running `f` and share its success (they get [`Outcome::AlreadyDone`]); if
    /// `f` fails, the key is released and a waiting (or later) caller runs it again.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gochat_core::{Context, Env};
    /// use gochat_once::{Config, Options, Outcome};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let once = gochat_once::new(&Context::new(), Config::for_env(Env::Development), Options::default()).await?;
    /// let charge = || async { Ok::<_, std::io::Error>(()) };
    /// assert_eq!(once.do_once("payment:991", Duration::from_secs(3600), charge).await?, Outcome::Ran);
    /// assert_eq!(once.do_once("payment:991", Duration::from_secs(3600), charge).await?, Outcome::AlreadyDone);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Operation`] with `f`'s error (the key is released); cache errors.
    pub async fn do_once<F, Fut, E>(
        &self,
        key: &str,
        ttl: Duration,
        f: F,
    ) -> Result<Outcome, Error<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        let mut ran = false;
        self.execute::<(), _, _, E>(key, ttl, || {
            ran = true;
            f()
        })
        .await?;
        Ok(if ran {
            Outcome::Ran
        } else {
            Outcome::AlreadyDone
        })
    }

    /// Runs `f` at most once per `key` within `ttl` and caches its result (as JSON): later and
    /// concurrent callers get the cached result without running `f`. A failed `f` caches
    /// nothing and releases the key.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gochat_core::{Context, Env};
    /// use gochat_once::{Config, Options};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let once = gochat_once::new(&Context::new(), Config::for_env(Env::Development), Options::default()).await?;
    /// let send = |seq| move || async move { Ok::<_, std::io::Error>(seq) };
    /// let first: u64 = once.execute("msg:client-1:42", Duration::from_secs(600), send(7)).await?;
    /// let retry: u64 = once.execute("msg:client-1:42", Duration::from_secs(600), send(8)).await?;
    /// assert_eq!((first, retry), (7, 7), "the retry got the first answer");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Operation`] with `f`'s error; [`Error::Decode`] when a cached result does not
    /// decode as `T`; cache errors.
    pub async fn execute<T, F, Fut, E>(&self, key: &str, ttl: Duration, f: F) -> Result<T, Error<E>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if ttl.is_zero() {
            return Err(Error::InvalidArgument(
                "a TTL must be above zero".to_owned(),
            ));
        }
        let done_key = format!("{}done:{key}", self.config.key_prefix);
        let run_lock = format!("{}run:{key}", self.config.key_prefix);
        let mut wait = Duration::from_millis(5);
        loop {
            if let Some(cached) = self.cached::<T, E>(&done_key).await? {
                return Ok(cached);
            }
            if let Some(guard) = self
                .cache
                .lock()
                .try_acquire(&run_lock, self.config.running_ttl)
                .await?
            {
                // Someone may have finished between our read and our lock.
                if let Some(cached) = self.cached::<T, E>(&done_key).await? {
                    guard.release().await;
                    return Ok(cached);
                }
                let result = f().await;
                let outcome = match result {
                    Ok(value) => {
                        let bytes = serde_json::to_vec(&value).map_err(|e| Error::Decode {
                            key: done_key.clone(),
                            reason: e.to_string(),
                        })?;
                        // Written before the lock is released: no moment where neither exists.
                        self.cache.string().set(&done_key, bytes, Some(ttl)).await?;
                        Ok(value)
                    }
                    Err(e) => Err(Error::Operation(e)),
                };
                guard.release().await;
                return outcome;
            }
            // Someone else is running it: wait for their result, or for the lock to free.
            sleep(wait).await;
            wait = (wait * 2).min(Duration::from_millis(100));
        }
    }

    async fn cached<T: DeserializeOwned, E>(&self, done_key: &str) -> Result<Option<T>, Error<E>> {
        match self.cache.string().get(done_key).await? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Decode {
                    key: done_key.to_owned(),
                    reason: e.to_string(),
                }),
            None => Ok(None),
        }
    }

    /// Forgets `key`, so the operation may run again.
    ///
    /// # Errors
    /// Cache errors.
    pub async fn forget(&self, key: &str) -> Result<(), Error> {
        self.cache
            .keys()
            .del(&[&format!("{}done:{key}", self.config.key_prefix)])
            .await?;
        Ok(())
    }
}
