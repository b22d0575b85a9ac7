//! Service registry and discovery.
//!
//! ```
//! use std::time::Duration;
//! use gochat_coord::{Config, Instance, Options, RegistryEvent};
//! use gochat_core::{Context, Env};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), gochat_coord::Error> {
//! let coord = gochat_coord::new(&Context::new(), Config::for_env(Env::Development), Options::default()).await?;
//! let mut events = coord.registry().watch("im-repo")?;
//!
//! let registration = coord
//!     .registry()
//!     .register(Instance::new("im-repo", "repo-1", "10.0.0.7:9090"), Duration::from_secs(10))
//!     .await?;
//! assert!(matches!(events.next().await, Some(RegistryEvent::Added(i)) if i.id == "repo-1"));
//! assert_eq!(coord.registry().discover("im-repo").await?.len(), 1);
//!
//! registration.deregister().await;
//! assert!(matches!(events.next().await, Some(RegistryEvent::Removed { id }) if id == "repo-1"));
//! # Ok(()) }
//! ```

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use gochat_core::{Held, HeldStatus as Status};
use serde::{Deserialize, Serialize};
use tokio::{sync::watch, time::Instant};

use crate::{
    Error, Shared, WatchStream,
    keys::segment,
    lease::{self, Backoff, Outcome},
    stream::map_stream,
    watch::{Change, watch_prefix},
};

/// One running instance of a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// The service name, e.g. `im-repo`.
    pub name: String,
    /// Unique among the service's instances, e.g. a host name or `im-repo-3`.
    pub id: String,
    /// Where it listens: `host:port`.
    pub addr: String,
    /// Anything else peers should know (zone, version, weight, …).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl Instance {
    /// An instance without metadata.
    pub fn new(name: impl Into<String>, id: impl Into<String>, addr: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            id: id.into(),
            addr: addr.into(),
            metadata: BTreeMap::new(),
        }
    }

    /// Adds a metadata entry.
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// A change to a service's instances.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryEvent {
    /// An instance appeared (also sent for each instance present when the watch starts).
    Added(Instance),
    /// An instance re-registered with different data.
    Updated(Instance),
    /// An instance went away (deregistered, or its lease expired).
    Removed {
        /// Its id.
        id: String,
    },
}

/// The registry: `coord.registry()`.
#[derive(Clone, Debug)]
pub struct Registry {
    pub(crate) shared: Arc<Shared>,
}

impl Registry {
    /// Registers `instance` under a lease of `ttl` (whole seconds, at least 1), kept alive in
    /// the background until [`Registration::deregister`], drop, `close` or cancellation of the
    /// provider's context.
    ///
    /// If the lease is lost (the backend was unreachable for longer than `ttl`), the instance
    /// is registered again under a new lease as soon as the backend answers.
    ///
    /// # Errors
    /// Invalid names, or the first registration could not be written.
    pub async fn register(&self, instance: Instance, ttl: Duration) -> Result<Registration, Error> {
        self.shared.check_open()?;
        if ttl.is_zero() {
            return Err(Error::InvalidArgument(
                "a registration TTL must be above zero".to_owned(),
            ));
        }
        segment(&instance.id, "instance id")?;
        if instance.addr.is_empty() {
            return Err(Error::InvalidArgument(
                "an instance needs an address".to_owned(),
            ));
        }
        let key = format!(
            "{}{}",
            self.shared.keys.registry(&instance.name)?,
            instance.id
        );
        let value = serde_json::to_vec(&instance).map_err(|e| Error::Encode {
            key: key.clone(),
            reason: e.to_string(),
        })?;
        let (lease, granted, granted_at) = self.put_with_lease(&key, &value, ttl).await?;

        let (status_tx, status) = watch::channel(Status::Held {
            valid_until: granted_at + granted,
        });
        let ctx = self.shared.ctx.child();
        let shared = self.shared.clone();
        let task_ctx = ctx.clone();
        let task = ctx.spawn(async move {
            let (mut lease, mut granted, mut granted_at) = (lease, granted, granted_at);
            let mut backoff = Backoff::new();
            loop {
                let outcome = lease::keep(&*shared.backend, lease, granted, granted_at, &task_ctx, &status_tx).await;
                if outcome == Outcome::Cancelled {
                    return;
                }
                crate::Counters::add(&shared.counters.lease_losses);
                gochat_clog::warn!(shared.log, key, "registration lease lost; registering again");
                loop {
                    if !backoff.wait(&task_ctx).await {
                        status_tx.send_replace(Status::Released);
                        return;
                    }
                    match Registry::put_with_lease_on(&shared, &key, &value, ttl).await {
                        Ok(renewed) => {
                            (lease, granted, granted_at) = renewed;
                            backoff.reset();
                            gochat_clog::info!(shared.log, key, "registered again");
                            break;
                        }
                        Err(e) => gochat_clog::warn!(shared.log, key, error = %e, "re-registration failed"),
                    }
                }
            }
        });
        Ok(Registration {
            instance,
            held: Held::new(ctx, status, task),
        })
    }

    async fn put_with_lease(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<(i64, Duration, Instant), Error> {
        Self::put_with_lease_on(&self.shared, key, value, ttl).await
    }

    async fn put_with_lease_on(
        shared: &Shared,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<(i64, Duration, Instant), Error> {
        let granted_at = Instant::now();
        let (lease, granted) = shared.backend.grant(ttl).await?;
        if let Err(e) = shared.backend.put(key, value.to_vec(), Some(lease)).await {
            let _ = shared.backend.revoke(lease).await;
            return Err(e);
        }
        Ok((lease, granted, granted_at))
    }

    /// The instances of `service` registered now.
    ///
    /// # Errors
    /// The backend cannot be read.
    pub async fn discover(&self, service: &str) -> Result<Vec<Instance>, Error> {
        self.shared.check_open()?;
        let prefix = self.shared.keys.registry(service)?;
        let (kvs, _) = self.shared.backend.list(&prefix).await?;
        Ok(kvs
            .iter()
            .filter_map(|kv| decode_instance(&self.shared, &kv.key, &kv.value))
            .collect())
    }

    /// A live stream of `service`'s instances: first an `Added` for each instance present,
    /// then every change. It survives backend outages (see the crate docs).
    ///
    /// # Errors
    /// An invalid service name, or a closed provider.
    pub fn watch(&self, service: &str) -> Result<WatchStream<RegistryEvent>, Error> {
        self.shared.check_open()?;
        let prefix = self.shared.keys.registry(service)?;
        let rx = watch_prefix(&self.shared, prefix.clone());
        let shared = self.shared.clone();
        let mut ids: HashMap<String, String> = HashMap::new();
        Ok(map_stream(
            &self.shared.ctx,
            rx,
            move |change| match change {
                Change::Put { key, value, .. } => {
                    let instance = decode_instance(&shared, &key, &value)?;
                    let event = if ids.insert(key, instance.id.clone()).is_some() {
                        RegistryEvent::Updated(instance)
                    } else {
                        RegistryEvent::Added(instance)
                    };
                    Some(event)
                }
                Change::Delete { key } => {
                    let id = ids
                        .remove(&key)
                        .unwrap_or_else(|| key[prefix.len()..].to_owned());
                    Some(RegistryEvent::Removed { id })
                }
            },
        ))
    }
}

fn decode_instance(shared: &Shared, key: &str, value: &[u8]) -> Option<Instance> {
    match serde_json::from_slice(value) {
        Ok(instance) => Some(instance),
        Err(e) => {
            gochat_clog::warn!(shared.log, key, error = %e, "skipping an undecodable registry entry");
            None
        }
    }
}

/// A live registration; dropping it deregisters (in the background).
#[derive(Debug)]
pub struct Registration {
    instance: Instance,
    held: Held,
}

impl Registration {
    /// The registered instance.
    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// Whether the registration's lease is held now (false while it is being re-created).
    pub fn is_registered(&self) -> bool {
        self.held.is_held()
    }

    /// Removes the instance and waits until the backend has done so.
    pub async fn deregister(self) {
        self.held.release().await;
    }
}
