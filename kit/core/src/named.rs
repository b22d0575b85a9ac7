//! In-process stores shared by name: how the standalone backends of several providers in one
//! process (the four services of `gochat`) see the same state.
//!
//! ```
//! use std::{sync::{Arc, atomic::{AtomicU32, Ordering}}, time::Duration};
//! use gochat_core::NamedStores;
//!
//! static STORES: NamedStores<AtomicU32> = NamedStores::new();
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let sweep = |n: &AtomicU32| { n.fetch_add(0, Ordering::Relaxed); };
//! let a = STORES.get_or_create("demo", || AtomicU32::new(7), Duration::from_secs(1), sweep);
//! let b = STORES.get_or_create("demo", || AtomicU32::new(0), Duration::from_secs(1), sweep);
//! assert!(Arc::ptr_eq(&a, &b), "one store per name while a handle lives");
//! # }
//! ```

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, PoisonError, Weak},
    time::Duration,
};

/// A process-wide registry of stores by name; a store lives while a handle to it does.
#[derive(Debug)]
pub struct NamedStores<T> {
    stores: Mutex<BTreeMap<String, Weak<T>>>,
}

impl<T> Default for NamedStores<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> NamedStores<T> {
    /// An empty registry (usable in a `static`).
    pub const fn new() -> Self {
        Self {
            stores: Mutex::new(BTreeMap::new()),
        }
    }
}

impl<T: Send + Sync + 'static> NamedStores<T> {
    /// The live store named `name`, or a new one from `make`. A new store gets a background
    /// task calling `sweep` every `every` (expiring leases or keys) until its last handle is
    /// dropped.
    ///
    /// # Panics
    /// Outside a tokio runtime, when a new store is made.
    pub fn get_or_create(
        &self,
        name: &str,
        make: impl FnOnce() -> T,
        every: Duration,
        sweep: fn(&T),
    ) -> Arc<T> {
        let mut stores = self.stores.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(store) = stores.get(name).and_then(Weak::upgrade) {
            return store;
        }
        let store = Arc::new(make());
        stores.retain(|_, weak| weak.strong_count() > 0);
        stores.insert(name.to_owned(), Arc::downgrade(&store));
        let weak = Arc::downgrade(&store);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(store) = weak.upgrade() else { break };
                sweep(&store);
            }
        });
        store
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_store_is_swept_while_alive_and_forgotten_when_dropped() {
        static STORES: NamedStores<AtomicU32> = NamedStores::new();
        let sweep = |n: &AtomicU32| {
            n.fetch_add(1, Ordering::SeqCst);
        };
        let store =
            STORES.get_or_create("swept", || AtomicU32::new(0), Duration::from_secs(1), sweep);
        tokio::time::sleep(Duration::from_millis(3_500)).await;
        assert!(store.load(Ordering::SeqCst) >= 3, "swept every second");
        drop(store);
        let fresh = STORES.get_or_create(
            "swept",
            || AtomicU32::new(100),
            Duration::from_secs(1),
            sweep,
        );
        assert!(
            fresh.load(Ordering::SeqCst) >= 100,
            "a dropped store is not handed out again"
        );
    }
}
