//! The rule set: configured rules, overridden by rules from coord, swapped atomically.

use std::{
    collections::BTreeMap,
    sync::{Arc, PoisonError, RwLock},
};

use gochat_clog::Logger;
use gochat_coord::Coord;
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

    /// Follows `coord`'s rules for `service` until `ctx` is cancelled.
    pub(crate) fn follow(
        self: &Arc<Self>,
        ctx: &Context,
        coord: &Coord,
        service: &str,
        log: Logger,
    ) -> Result<()> {
        let rules = self.clone();
        coord.config().scope(service, COORD_COMPONENT)?.follow(
            ctx,
            |name, rule: &Rule| rule.validate(name).map_err(|e| e.to_string()),
            move |name, rule| {
                match &rule {
                    Some(rule) => {
                        gochat_clog::info!(
                            log,
                            rule = name,
                            rate = rule.rate,
                            burst = rule.burst,
                            "rate-limit rule updated"
                        );
                    }
                    None => {
                        gochat_clog::info!(
                            log,
                            rule = name,
                            "rate-limit rule deleted; the configured one applies"
                        );
                    }
                }
                rules.set(name, rule);
            },
        )?;
        Ok(())
    }
}
