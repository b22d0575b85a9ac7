//! In-process buckets: one governor keyed limiter per rule (GCRA, like the Redis script).

use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{Arc, Mutex, PoisonError},
};

use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    middleware::StateInformationMiddleware,
    state::keyed::DefaultKeyedStateStore,
};

use crate::{Decision, Rule};

type Keyed =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// One rule's limiter, and the rule it was built for (rebuilt when the rule changes).
struct Bucket {
    rule: Rule,
    limiter: Arc<Keyed>,
}

/// Buckets per rule name; `share` divides every rate (a fallback limits this instance to its
/// share of a shared limit).
#[derive(Default)]
pub(crate) struct Local {
    buckets: Mutex<HashMap<String, Bucket>>,
    share: u32,
}

impl Local {
    pub(crate) fn new(share: u32) -> Self {
        Self {
            buckets: Mutex::default(),
            share: share.max(1),
        }
    }

    fn limiter(&self, name: &str, rule: Rule) -> Arc<Keyed> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        match buckets.get(name) {
            Some(bucket) if bucket.rule == rule => bucket.limiter.clone(),
            _ => {
                let limiter = Arc::new(RateLimiter::dashmap(self.quota(rule)).with_middleware());
                buckets.insert(
                    name.to_owned(),
                    Bucket {
                        rule,
                        limiter: limiter.clone(),
                    },
                );
                limiter
            }
        }
    }

    /// The rule scaled to this instance's share: the interval grows, the burst shrinks (each
    /// at least 1).
    fn quota(&self, rule: Rule) -> Quota {
        let burst = (rule.burst / self.share).max(1);
        let interval = rule.interval() * self.share;
        Quota::with_period(interval)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
    }

    /// Takes `n` tokens (`n` ≤ the rule's burst, checked by the caller).
    pub(crate) fn allow(&self, name: &str, rule: Rule, key: &str, n: u32) -> Decision {
        let limiter = self.limiter(name, rule);
        let n = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        let key = key.to_owned();
        match limiter.check_key_n(&key, n) {
            Ok(Ok(state)) => Decision::allowed(state.remaining_burst_capacity(), true),
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Decision::denied(wait, true)
            }
            // The caller checked n against the rule's burst; with a share the local burst is
            // smaller, and a request above it waits a full refill.
            Err(_) => Decision::denied(rule.period, true),
        }
    }

    /// Forgets keys whose buckets are full again (memory stays bounded by active keys).
    pub(crate) fn sweep(&self) {
        let buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        for bucket in buckets.values() {
            bucket.limiter.retain_recent();
        }
    }
}
