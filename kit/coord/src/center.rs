//! The config centre: typed values under `/{root}/{env}/{service}/{component}/{name}`, watched
//! and hot-reloaded.
//!
//! ```
//! use gochat_coord::{Config, Options};
//! use gochat_core::{Context, Env};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
//! struct Limits { per_second: u32 }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), gochat_coord::Error> {
//! let coord = gochat_coord::new(&Context::new(), Config::for_env(Env::Development), Options::default()).await?;
//! let scope = coord.config().scope("im-gateway", "ratelimit")?;
//! assert_eq!(scope.key("send")?, "/gochat/development/im-gateway/ratelimit/send");
//!
//! // A value the component hot-reloads; updates that fail validation are refused.
//! let mut limits = scope
//!     .watched("send", Limits { per_second: 10 }, |l: &Limits| {
//!         if l.per_second == 0 { Err("per_second must be above zero".into()) } else { Ok(()) }
//!     })
//!     .await?;
//! assert_eq!(limits.get().per_second, 10);
//!
//! scope.put("send", &Limits { per_second: 50 }).await?;
//! assert_eq!(limits.changed().await.per_second, 50);
//! # Ok(()) }
//! ```

use std::{any::type_name, sync::Arc};

use gochat_core::Context;
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::watch;

use crate::{
    Error, Shared, WatchStream,
    keys::path,
    stream::map_stream,
    watch::{Change, watch_prefix},
};

/// The config centre: `coord.config()`.
#[derive(Clone, Debug)]
pub struct ConfigCenter {
    pub(crate) shared: Arc<Shared>,
}

impl ConfigCenter {
    /// The values of one component of one service.
    ///
    /// # Errors
    /// A service name starting with `_`, or a name with characters other than letters,
    /// digits, `_`, `.` and `-`.
    pub fn scope(&self, service: &str, component: &str) -> Result<ConfigScope, Error> {
        Ok(ConfigScope {
            shared: self.shared.clone(),
            prefix: self.shared.keys.config_scope(service, component)?,
        })
    }
}

/// The values of one `{service}/{component}`.
#[derive(Clone, Debug)]
pub struct ConfigScope {
    shared: Arc<Shared>,
    prefix: String,
}

/// A change seen by [`ConfigScope::watch`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ConfigEvent<T> {
    /// A value was set (also sent for each value present when the watch starts).
    Set {
        /// Its name within the scope.
        name: String,
        /// The new value.
        value: T,
    },
    /// A value was deleted.
    Deleted {
        /// Its name within the scope.
        name: String,
    },
    /// A value was set that does not decode as `T`.
    Invalid {
        /// Its name within the scope.
        name: String,
        /// Why it does not decode.
        reason: String,
    },
}

impl ConfigScope {
    /// The full key of `name`.
    ///
    /// # Errors
    /// An invalid name (segments of letters, digits, `_`, `.`, `-`, joined by `/`).
    pub fn key(&self, name: &str) -> Result<String, Error> {
        Ok(format!("{}{}", self.prefix, path(name, "config name")?))
    }

    /// The value of `name`, if set.
    ///
    /// # Errors
    /// The backend cannot be read, or the value does not decode as `T`.
    pub async fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, Error> {
        self.shared.check_open()?;
        let key = self.key(name)?;
        match self.shared.backend.get(&key).await? {
            Some(kv) => decode(&key, &kv.value).map(Some),
            None => Ok(None),
        }
    }

    /// Sets `name` to `value` (as JSON).
    ///
    /// # Errors
    /// The value does not encode, or the backend cannot be written.
    pub async fn put<T: Serialize>(&self, name: &str, value: &T) -> Result<(), Error> {
        self.shared.check_open()?;
        let key = self.key(name)?;
        let bytes = serde_json::to_vec(value).map_err(|e| Error::Encode {
            key: key.clone(),
            reason: e.to_string(),
        })?;
        self.shared.backend.put(&key, bytes, None).await.map(drop)
    }

    /// Deletes `name`; whether it existed.
    ///
    /// # Errors
    /// The backend cannot be written.
    pub async fn delete(&self, name: &str) -> Result<bool, Error> {
        self.shared.check_open()?;
        let key = self.key(name)?;
        self.shared.backend.delete(&key).await
    }

    /// Every value in the scope, by name.
    ///
    /// # Errors
    /// The backend cannot be read, or a value does not decode as `T`.
    pub async fn list<T: DeserializeOwned>(&self) -> Result<Vec<(String, T)>, Error> {
        self.shared.check_open()?;
        let (kvs, _) = self.shared.backend.list(&self.prefix).await?;
        kvs.iter()
            .map(|kv| {
                Ok((
                    kv.key[self.prefix.len()..].to_owned(),
                    decode(&kv.key, &kv.value)?,
                ))
            })
            .collect()
    }

    /// Every value in the scope as one JSON object, a name `a/b` nested as `{"a": {"b": …}}`:
    /// a layer for the kit's config loader (`Loader::layer`), so settings kept in coord
    /// override the file and the environment.
    ///
    /// ```
    /// # use gochat_coord::{Config, Options};
    /// # use gochat_core::{Context, Env};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), gochat_coord::Error> {
    /// # let coord = gochat_coord::new(&Context::new(), Config::for_env(Env::Development), Options::default()).await?;
    /// let scope = coord.config().scope("im-gateway", "settings")?;
    /// scope.put("gateway/max_body_bytes", &131_072).await?;
    /// scope.put("log", &serde_json::json!({ "level": "warn" })).await?;
    /// let tree = scope.tree().await?;
    /// assert_eq!(tree["gateway"]["max_body_bytes"], 131_072);
    /// assert_eq!(tree["log"]["level"], "warn");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The backend cannot be read, or a value is not JSON.
    pub async fn tree(&self) -> Result<serde_json::Value, Error> {
        fn insert(
            at: &mut serde_json::Map<String, serde_json::Value>,
            path: &[&str],
            value: serde_json::Value,
        ) {
            match path {
                [] => {}
                [leaf] => {
                    at.insert((*leaf).to_owned(), value);
                }
                [section, rest @ ..] => {
                    let entry = at
                        .entry(*section)
                        .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
                    if !entry.is_object() {
                        *entry = serde_json::Value::Object(serde_json::Map::new());
                    }
                    if let serde_json::Value::Object(inner) = entry {
                        insert(inner, rest, value);
                    }
                }
            }
        }
        let mut root = serde_json::Map::new();
        for (name, value) in self.list::<serde_json::Value>().await? {
            insert(&mut root, &name.split('/').collect::<Vec<_>>(), value);
        }
        Ok(serde_json::Value::Object(root))
    }

    /// Changes to every value in the scope, typed; survives backend outages.
    ///
    /// # Errors
    /// A closed provider.
    pub fn watch<T>(&self) -> Result<WatchStream<ConfigEvent<T>>, Error>
    where
        T: DeserializeOwned + Send + 'static,
    {
        self.shared.check_open()?;
        let rx = watch_prefix(&self.shared, self.prefix.clone());
        let prefix_len = self.prefix.len();
        Ok(map_stream(&self.shared.ctx, rx, move |change| {
            Some(match change {
                Change::Put { key, value, .. } => {
                    let name = key[prefix_len..].to_owned();
                    match decode(&key, &value) {
                        Ok(value) => ConfigEvent::Set { name, value },
                        Err(e) => ConfigEvent::Invalid {
                            name,
                            reason: e.to_string(),
                        },
                    }
                }
                Change::Delete { key } => ConfigEvent::Deleted {
                    name: key[prefix_len..].to_owned(),
                },
            })
        }))
    }

    /// Changes to one value, typed: like [`ConfigScope::watch`], only for `name`.
    ///
    /// # Errors
    /// An invalid name, or a closed provider.
    pub fn watch_name<T>(&self, name: &str) -> Result<WatchStream<ConfigEvent<T>>, Error>
    where
        T: DeserializeOwned + Send + 'static,
    {
        self.key(name)?;
        self.shared.check_open()?;
        let rx = watch_prefix(&self.shared, self.prefix.clone());
        let prefix_len = self.prefix.len();
        let wanted = name.to_owned();
        Ok(map_stream(&self.shared.ctx, rx, move |change| {
            let key = match &change {
                Change::Put { key, .. } | Change::Delete { key } => key,
            };
            if key[prefix_len..] != wanted {
                return None;
            }
            Some(match change {
                Change::Put { key, value, .. } => match decode(&key, &value) {
                    Ok(value) => ConfigEvent::Set {
                        name: wanted.clone(),
                        value,
                    },
                    Err(e) => ConfigEvent::Invalid {
                        name: wanted.clone(),
                        reason: e.to_string(),
                    },
                },
                Change::Delete { .. } => ConfigEvent::Deleted {
                    name: wanted.clone(),
                },
            })
        }))
    }

    /// Follows every value of the scope, by name, until `ctx` is cancelled or the provider
    /// closes: `apply(name, Some(value))` for each value that decodes and passes `validate`
    /// (those stored when it starts come first), `apply(name, None)` when one is deleted. A bad
    /// value is logged and skipped, so what was applied before stays. How components with one
    /// setting per name (rate-limit rules, breaker policies) hot-reload.
    ///
    /// # Errors
    /// A closed provider.
    pub fn follow<T, V, A>(&self, ctx: &Context, validate: V, apply: A) -> Result<(), Error>
    where
        T: DeserializeOwned + Send + 'static,
        V: Fn(&str, &T) -> Result<(), String> + Send + 'static,
        A: Fn(&str, Option<T>) + Send + 'static,
    {
        let mut events = self.watch::<T>()?;
        let log = self.shared.log.clone();
        let prefix = self.prefix.clone();
        let stop = ctx.clone();
        ctx.spawn(async move {
            while let Some(Some(event)) = stop.run_until_cancelled(events.next()).await {
                match event {
                    ConfigEvent::Set { name, value } => match validate(&name, &value) {
                        Ok(()) => apply(&name, Some(value)),
                        Err(reason) => {
                            let key = format!("{prefix}{name}");
                            gochat_clog::warn!(
                                log,
                                key,
                                reason,
                                "rejected a config update; keeping the current value"
                            );
                        }
                    },
                    ConfigEvent::Deleted { name } => apply(&name, None),
                    ConfigEvent::Invalid { name, reason } => {
                        let key = format!("{prefix}{name}");
                        gochat_clog::warn!(
                            log,
                            key,
                            reason,
                            "rejected an undecodable config update; keeping the current value"
                        );
                    }
                }
            }
        });
        Ok(())
    }

    /// A hot-reloaded value: starts as the stored value (or `default` when unset), follows
    /// every update that decodes and passes `validate`, falls back to `default` when the value
    /// is deleted, and keeps the current value (logging why) when an update is bad.
    ///
    /// # Errors
    /// An invalid name, or a closed provider. A stored value that is bad at start is logged
    /// and replaced by `default`, like a bad update.
    pub async fn watched<T, V>(
        &self,
        name: &str,
        default: T,
        validate: V,
    ) -> Result<Watched<T>, Error>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        V: Fn(&T) -> Result<(), String> + Send + Sync + 'static,
    {
        let key = self.key(name)?;
        let default = Arc::new(default);
        // Read the stored value first; the watch started after it re-sends the current state,
        // so nothing written in between is missed.
        let initial = match self.shared.backend.get(&key).await {
            Ok(Some(kv)) => match decode::<T>(&key, &kv.value)
                .map_err(|e| e.to_string())
                .and_then(|v| validate(&v).map(|()| v))
            {
                Ok(value) => Arc::new(value),
                Err(reason) => {
                    gochat_clog::warn!(
                        self.shared.log,
                        key,
                        reason,
                        "the stored config value is bad; using the default"
                    );
                    default.clone()
                }
            },
            Ok(None) => default.clone(),
            Err(e) => {
                gochat_clog::warn!(self.shared.log, key, error = %e, "cannot read the config value; using the default until the backend answers");
                default.clone()
            }
        };
        let (tx, rx) = watch::channel(initial);
        let mut events = self.watch::<T>()?;
        let log = self.shared.log.clone();
        let wanted = name.to_owned();
        self.shared.ctx.spawn(async move {
            while let Some(event) = events.next().await {
                match event {
                    ConfigEvent::Set { name, value } if name == wanted => match validate(&value) {
                        Ok(()) => {
                            let changed = tx.send_if_modified(|current| {
                                let same = serde_json::to_value(&**current).ok()
                                    == serde_json::to_value(&value).ok();
                                if !same {
                                    *current = Arc::new(value);
                                }
                                !same
                            });
                            if changed {
                                gochat_clog::info!(log, key, "config value reloaded");
                            }
                        }
                        Err(reason) => {
                            gochat_clog::warn!(
                                log,
                                key,
                                reason,
                                "rejected a config update; keeping the current value"
                            );
                        }
                    },
                    ConfigEvent::Invalid { name, reason } if name == wanted => {
                        gochat_clog::warn!(
                            log,
                            key,
                            reason,
                            "rejected an undecodable config update; keeping the current value"
                        );
                    }
                    ConfigEvent::Deleted { name } if name == wanted => {
                        tx.send_replace(default.clone());
                        gochat_clog::info!(log, key, "config value deleted; back to the default");
                    }
                    _ => {}
                }
            }
        });
        Ok(Watched { rx })
    }
}

fn decode<T: DeserializeOwned>(key: &str, value: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(value).map_err(|e| Error::Decode {
        key: key.to_owned(),
        type_name: type_name::<T>(),
        reason: e.to_string(),
    })
}

/// A value kept current from the config centre. Clones share it.
#[derive(Clone, Debug)]
pub struct Watched<T> {
    rx: watch::Receiver<Arc<T>>,
}

impl<T> Watched<T> {
    /// The current value.
    pub fn get(&self) -> Arc<T> {
        self.rx.borrow().clone()
    }

    /// Waits for the next accepted change and returns it. If the provider closes, it keeps
    /// waiting forever (the value no longer changes); combine with a shutdown signal.
    pub async fn changed(&mut self) -> Arc<T> {
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        self.rx.borrow_and_update().clone()
    }
}
