//! The rule set: configured rules, overridden by rules from coord, swapped atomically.

use std::{
    collections::BTreeMap,
    sync::{Arc, PoisonError, RwLock},
};

use gochat_clog::Logger;
use gochat_coord::{ConfigEvent, Coord};
use gochat_core::Context;

use crate::{Rule, error::Result};

/// The component name under which rules live in coord: `/{root}/{env}/{service}/ratelimit/{rule}`.
pub const COORD_COMPONENT: &str = "ratelimit";

pub(crate) struct Rules {
    configured: BTreeMap<String, Rule>,
    current: RwLock<Arc<BTreeMap<String, Rule>>>,
}

impl Rules {
    pub(crate) fn new(configured: BTreeMap<String, Rule>) -> Self {
        Self {
            current: RwLock::new(Arc::new(configured.clone())),
            configured,
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<Rule> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .copied()
    }

    /// Sets `name` (`Some`), or restores its configured rule (`None`).
    pub(crate) fn set(&self, name: &str, rule: Option<Rule>) {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let mut next = (**current).clone();
        match rule.or_else(|| self.configured.get(name).copied()) {
            Some(rule) => next.insert(name.to_owned(), rule),
            None => next.remove(name),
        };
        *current = Arc::new(next);
    }

    /// Follows `coord`'s rules for `service` until `ctx` is cancelled. The watch replays the
    /// stored rules first, so they apply before this returns… asynchronously; callers that
    /// must see them wait for [`Rules::get`] to show them.
    pub(crate) fn follow(
        self: &Arc<Self>,
        ctx: &Context,
        coord: &Coord,
        service: &str,
        log: Logger,
    ) -> Result<()> {
        let mut events = coord
            .config()
            .scope(service, COORD_COMPONENT)?
            .watch::<Rule>()?;
        let rules = self.clone();
        let stop = ctx.clone();
        ctx.spawn(async move {
            while let Some(Some(event)) = stop.run_until_cancelled(events.next()).await {
                match event {
                    ConfigEvent::Set { name, value } => match value.validate(&name) {
                        Ok(()) => {
                            gochat_clog::info!(log, rule = name, rate = value.rate, burst = value.burst, "rate-limit rule updated");
                            rules.set(&name, Some(value));
                        }
                        Err(e) => {
                            gochat_clog::warn!(log, rule = name, error = %e, "rate-limit rule refused; the current one stays");
                        }
                    },
                    ConfigEvent::Deleted { name } => {
                        gochat_clog::info!(log, rule = name, "rate-limit rule deleted; the configured one applies");
                        rules.set(&name, None);
                    }
                    ConfigEvent::Invalid { name, reason } => {
                        gochat_clog::warn!(log, rule = name, reason, "rate-limit rule unreadable; the current one stays");
                    }
                    _ => {}
                }
            }
        });
        Ok(())
    }
}
