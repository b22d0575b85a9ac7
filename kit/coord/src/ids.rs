//! Instance ids: the lowest free number below a maximum, held under a lease.
//!
//! ```
//! use std::time::Duration;
//! use gochat_coord::{Config, Options};
//! use gochat_core::{Context, Env};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), gochat_coord::Error> {
//! let coord = gochat_coord::new(&Context::new(), Config::for_env(Env::Development), Options::default()).await?;
//! let first = coord.instance_ids("im-logic", 1024).await?;
//! let second = coord.instance_ids("im-logic", 1024).await?;
//! assert_eq!((first.id(), second.id()), (0, 1));
//! first.release().await;
//! assert_eq!(coord.instance_ids("im-logic", 1024).await?.id(), 0, "a released id is reused");
//! # Ok(()) }
//! ```

use std::{collections::BTreeSet, time::Duration};

use gochat_core::Held;

use crate::{Coord, Error, backend::Created, lock::hold_lease};

/// How long an instance id outlives a crashed holder.
pub const INSTANCE_ID_TTL: Duration = Duration::from_secs(10);

impl Coord {
    /// Takes the lowest free id in `0..max` for `service`, unique across every process using
    /// the same backend while it is held. Held under a lease renewed in the background;
    /// released on [`InstanceId::release`], drop or `close`; a crashed holder's id frees after
    /// [`INSTANCE_ID_TTL`].
    ///
    /// # Errors
    /// [`Error::NoFreeId`] when all ids are taken; backend errors.
    pub async fn instance_ids(&self, service: &str, max: u32) -> Result<InstanceId, Error> {
        let shared = &self.shared;
        shared.check_open()?;
        if max == 0 {
            return Err(Error::InvalidArgument("max must be at least 1".to_owned()));
        }
        let prefix = shared.keys.ids(service)?;
        let (lease, held) = hold_lease(shared, INSTANCE_ID_TTL).await?;
        let result = async {
            let (taken, _) = shared.backend.list(&prefix).await?;
            let taken: BTreeSet<u32> = taken
                .iter()
                .filter_map(|kv| kv.key[prefix.len()..].parse().ok())
                .collect();
            for id in (0..max).filter(|id| !taken.contains(id)) {
                let holder = format!("{lease:x}").into_bytes();
                if let Created::Yes(_) = shared
                    .backend
                    .create(&format!("{prefix}{id}"), holder, Some(lease))
                    .await?
                {
                    return Ok(Some(id));
                }
            }
            Ok::<_, Error>(None)
        }
        .await;
        match result {
            Ok(Some(id)) => Ok(InstanceId {
                id,
                service: service.to_owned(),
                held,
            }),
            Ok(None) => {
                held.release().await;
                Err(Error::NoFreeId {
                    service: service.to_owned(),
                    max,
                })
            }
            Err(e) => {
                held.release().await;
                Err(e)
            }
        }
    }
}

/// A held instance id.
#[derive(Debug)]
pub struct InstanceId {
    id: u32,
    service: String,
    held: Held,
}

impl InstanceId {
    /// The id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The service it is unique within.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Whether the id is still held: false once its lease could not be renewed in time, after
    /// which another process may take it. Stop using the id then.
    pub fn is_held(&self) -> bool {
        self.held.is_held()
    }

    /// Completes when the id is lost.
    pub async fn lost(&self) {
        self.held.lost().await;
    }

    /// Gives the id back and waits until the backend has done so.
    pub async fn release(self) {
        self.held.release().await;
    }
}
