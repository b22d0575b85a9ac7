//! One breaker: its policy's state machine, its counters, and the calls it guards.

use std::{
    collections::VecDeque,
    fmt,
    future::Future,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use gochat_clog::Logger;
use gochat_core::KitError;
use serde::Serialize;
use tokio::time::Instant;

use crate::{Policy, Stats, stats::Counters};

/// What a breaker is doing now.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum State {
    /// Calls go through.
    Closed,
    /// Calls are rejected until the open timeout ends.
    Open,
    /// A few trial calls go through; their outcome closes or reopens it.
    HalfOpen,
    /// SRE policy: calls are rejected at random with this probability.
    Throttling(f64),
}

/// A call the breaker did not let through, or the call's own error.
#[derive(Debug, thiserror::Error)]
pub enum BreakerError<E> {
    /// The breaker rejected the call.
    #[error("circuit breaker {resource} is open")]
    Open {
        /// The resource.
        resource: String,
        /// When a call may go through again, if known (classic policy).
        retry_after: Option<Duration>,
    },
    /// The call ran and failed.
    #[error(transparent)]
    Inner(E),
}

impl<E: KitError> KitError for BreakerError<E> {
    fn kind(&self) -> gochat_core::ErrorKind {
        match self {
            Self::Open { .. } => gochat_core::ErrorKind::Unavailable,
            Self::Inner(e) => e.kind(),
        }
    }
}

/// Guards calls to one resource; a cheap `Clone` handle from
/// [`Breakers::get`](crate::Breakers::get).
#[derive(Clone)]
pub struct Breaker {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    machine: Mutex<Machine>,
    counters: Counters,
    log: Logger,
}

struct Machine {
    policy: Policy,
    classic: Classic,
    sre: Sre,
    rng: fastrand::Rng,
}

enum Classic {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { successes: u32, trials: u32 },
}

/// Per-slice counts over the window (10 slices).
#[derive(Default)]
struct Sre {
    slices: VecDeque<(Instant, u64, u64)>,
}

const SLICES: u32 = 10;

impl Sre {
    fn trim(&mut self, window: Duration, now: Instant) {
        while self
            .slices
            .front()
            .is_some_and(|(start, _, _)| now.duration_since(*start) >= window)
        {
            self.slices.pop_front();
        }
    }

    /// Adds to the newest slice, or starts a new one when it is a slice old.
    fn add(&mut self, window: Duration, now: Instant, requests: u64, accepts: u64) {
        self.trim(window, now);
        let slice = window / SLICES;
        match self.slices.back_mut() {
            Some((start, r, a)) if now.duration_since(*start) < slice => {
                *r += requests;
                *a += accepts;
            }
            _ => self.slices.push_back((now, requests, accepts)),
        }
    }

    fn totals(&self) -> (u64, u64) {
        self.slices
            .iter()
            .fold((0, 0), |(r, a), (_, requests, accepts)| {
                (r + requests, a + accepts)
            })
    }
}

/// `max(0, (requests − k·accepts) / (requests + 1))`: Google SRE's client-side throttling.
pub fn reject_probability(requests: u64, accepts: u64, k: f64) -> f64 {
    let (requests, accepts) = (requests as f64, accepts as f64);
    ((requests - k * accepts) / (requests + 1.0)).max(0.0)
}

/// Leave to make one call: report how it went with [`Permit::success`] or
/// [`Permit::failure`]. Dropped without either (the call was cancelled), it counts as neither.
#[must_use = "a permit reports the call's outcome"]
pub struct Permit {
    breaker: Breaker,
    done: bool,
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("breaker", &self.breaker.inner.name)
            .finish()
    }
}

impl Permit {
    /// The call succeeded.
    pub fn success(mut self) {
        self.done = true;
        self.breaker.record(true);
    }

    /// The call failed in a way that counts against the resource.
    pub fn failure(mut self) {
        self.done = true;
        self.breaker.record(false);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.done {
            self.breaker.release_trial();
        }
    }
}

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("name", &self.inner.name)
            .field("state", &self.state())
            .finish()
    }
}

impl Breaker {
    pub(crate) fn new(name: &str, policy: Policy, seed: Option<u64>, log: Logger) -> Self {
        Self {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                machine: Mutex::new(Machine {
                    policy,
                    classic: Classic::Closed { failures: 0 },
                    sre: Sre::default(),
                    rng: seed.map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed),
                }),
                counters: Counters::default(),
                log,
            }),
        }
    }

    fn machine(&self) -> MutexGuard<'_, Machine> {
        self.inner
            .machine
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The resource's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The policy in force.
    pub fn policy(&self) -> Policy {
        self.machine().policy
    }

    /// Replaces the policy (a hot reload); the state starts afresh.
    pub fn set_policy(&self, policy: Policy) {
        let mut machine = self.machine();
        if machine.policy != policy {
            machine.policy = policy;
            machine.classic = Classic::Closed { failures: 0 };
            machine.sre = Sre::default();
            gochat_clog::info!(self.inner.log, resource = self.inner.name, policy = ?policy, "breaker policy changed");
        }
    }

    /// The state now.
    pub fn state(&self) -> State {
        let mut machine = self.machine();
        let now = Instant::now();
        match machine.policy {
            Policy::Classic { .. } => match machine.classic {
                Classic::Closed { .. } => State::Closed,
                Classic::Open { until } if now < until => State::Open,
                Classic::Open { .. } | Classic::HalfOpen { .. } => State::HalfOpen,
            },
            Policy::Sre { k, window } => {
                machine.sre.trim(window, now);
                let (requests, accepts) = machine.sre.totals();
                match reject_probability(requests, accepts, k) {
                    p if p > 0.0 => State::Throttling(p),
                    _ => State::Closed,
                }
            }
        }
    }

    /// Counters since the breaker was made.
    pub fn stats(&self) -> Stats {
        self.inner.counters.snapshot()
    }

    /// Asks to make one call.
    ///
    /// # Errors
    /// [`BreakerError::Open`] when the breaker rejects it.
    pub fn try_acquire<E>(&self) -> Result<Permit, BreakerError<E>> {
        let counters = &self.inner.counters;
        Counters::add(&counters.calls);
        let mut machine = self.machine();
        let now = Instant::now();
        let rejected = match machine.policy {
            Policy::Classic {
                open_timeout,
                half_open_successes,
                ..
            } => match machine.classic {
                Classic::Closed { .. } => None,
                Classic::Open { until } if now < until => Some(Some(until - now)),
                Classic::Open { .. } => {
                    machine.classic = Classic::HalfOpen {
                        successes: 0,
                        trials: 1,
                    };
                    self.changed(State::HalfOpen);
                    None
                }
                Classic::HalfOpen { successes, trials } => {
                    if trials + successes < half_open_successes {
                        machine.classic = Classic::HalfOpen {
                            successes,
                            trials: trials + 1,
                        };
                        None
                    } else {
                        Some(Some(open_timeout.min(Duration::from_secs(1))))
                    }
                }
            },
            Policy::Sre { k, window } => {
                machine.sre.add(window, now, 1, 0);
                let (requests, accepts) = machine.sre.totals();
                // The request being decided counts, as in the SRE book.
                let p = reject_probability(requests.saturating_sub(1), accepts, k);
                (machine.rng.f64() < p).then_some(None)
            }
        };
        drop(machine);
        match rejected {
            None => Ok(Permit {
                breaker: self.clone(),
                done: false,
            }),
            Some(retry_after) => {
                Counters::add(&counters.rejected);
                Err(BreakerError::Open {
                    resource: self.inner.name.clone(),
                    retry_after,
                })
            }
        }
    }

    fn record(&self, success: bool) {
        let counters = &self.inner.counters;
        Counters::add(if success {
            &counters.successes
        } else {
            &counters.failures
        });
        let mut machine = self.machine();
        let now = Instant::now();
        match machine.policy {
            Policy::Classic {
                failures: threshold,
                open_timeout,
                half_open_successes,
            } => {
                let next = match (&machine.classic, success) {
                    (Classic::Closed { .. }, true) => Classic::Closed { failures: 0 },
                    (Classic::Closed { failures }, false) if failures + 1 >= threshold => {
                        self.changed(State::Open);
                        Classic::Open {
                            until: now + open_timeout,
                        }
                    }
                    (Classic::Closed { failures }, false) => Classic::Closed {
                        failures: failures + 1,
                    },
                    (Classic::HalfOpen { successes, trials }, true) => {
                        if successes + 1 >= half_open_successes {
                            self.changed(State::Closed);
                            Classic::Closed { failures: 0 }
                        } else {
                            Classic::HalfOpen {
                                successes: successes + 1,
                                trials: trials.saturating_sub(1),
                            }
                        }
                    }
                    (Classic::HalfOpen { .. }, false) => {
                        self.changed(State::Open);
                        Classic::Open {
                            until: now + open_timeout,
                        }
                    }
                    // An outcome reported after the breaker opened changes nothing.
                    (Classic::Open { until }, _) => Classic::Open { until: *until },
                };
                machine.classic = next;
            }
            Policy::Sre { window, .. } => {
                if success {
                    machine.sre.add(window, now, 0, 1);
                }
            }
        }
    }

    /// A trial slot given back unused (a cancelled call).
    fn release_trial(&self) {
        let mut machine = self.machine();
        if let Classic::HalfOpen { successes, trials } = machine.classic {
            machine.classic = Classic::HalfOpen {
                successes,
                trials: trials.saturating_sub(1),
            };
        }
    }

    fn changed(&self, state: State) {
        Counters::add(&self.inner.counters.transitions);
        if state == State::Open {
            gochat_clog::warn!(
                self.inner.log,
                resource = self.inner.name,
                "breaker open: calls rejected"
            );
        } else {
            gochat_clog::info!(self.inner.log, resource = self.inner.name, state = ?state, "breaker state changed");
        }
    }

    /// Runs `call` if the breaker lets it through; an error counts as a failure when
    /// [`KitError::is_temporary`] says so (an unavailable or timed-out resource, not a bad
    /// argument).
    ///
    /// # Errors
    /// [`BreakerError::Open`] when rejected; [`BreakerError::Inner`] with the call's error.
    pub async fn call<F, Fut, T, E>(&self, call: F) -> Result<T, BreakerError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: KitError,
    {
        self.call_with(call, KitError::is_temporary).await
    }

    /// Like [`Breaker::call`], with `is_failure` deciding which errors count.
    ///
    /// # Errors
    /// [`BreakerError::Open`] when rejected; [`BreakerError::Inner`] with the call's error.
    pub async fn call_with<F, Fut, T, E>(
        &self,
        call: F,
        is_failure: impl FnOnce(&E) -> bool,
    ) -> Result<T, BreakerError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let permit = self.try_acquire()?;
        match call().await {
            Ok(value) => {
                permit.success();
                Ok(value)
            }
            Err(e) => {
                if is_failure(&e) {
                    permit.failure();
                } else {
                    permit.success();
                }
                Err(BreakerError::Inner(e))
            }
        }
    }

    /// Like [`Breaker::call`], running `fallback` instead when the breaker rejects the call.
    ///
    /// # Errors
    /// The call's or the fallback's error.
    pub async fn call_or_fallback<F, Fut, G, GFut, T, E>(
        &self,
        call: F,
        fallback: G,
    ) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        G: FnOnce() -> GFut,
        GFut: Future<Output = Result<T, E>>,
        E: KitError,
    {
        match self.call(call).await {
            Ok(value) => Ok(value),
            Err(BreakerError::Inner(e)) => Err(e),
            Err(BreakerError::Open { .. }) => fallback().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sre_formula() {
        assert!((reject_probability(100, 30, 2.0) - 40.0 / 101.0).abs() < 1e-12);
        assert_eq!(reject_probability(100, 60, 2.0), 0.0);
        assert_eq!(reject_probability(0, 0, 2.0), 0.0);
    }
}
