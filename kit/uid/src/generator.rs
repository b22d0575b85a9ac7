//! The Snowflake generator: a small critical section over (last timestamp, sequence), with
//! the clock injected so clock steps can be tested.
//!
//! Rules, in order:
//! - the clock is ahead of the last id's time: new millisecond, sequence 0;
//! - the clock reads the last id's time, or is behind it by at most `max_backward`: the next
//!   sequence number at the last id's time (so ids stay unique and increasing while the clock
//!   catches up); when the 4,096 numbers of that millisecond are used up, wait for the clock
//!   to pass it;
//! - the clock is behind by more than `max_backward`: an error, until it catches up.

use std::{
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, SystemTime},
};

use crate::{
    Error, SnowflakeId,
    snowflake::{EPOCH_UNIX_MS, MAX_SEQUENCE, MAX_TIMESTAMP},
};

/// A source of wall-clock time in milliseconds since the UNIX epoch.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now_ms(&self) -> u64;

    /// Blocks until `now_ms() > ms`. The default sleeps in short steps.
    fn wait_past(&self, ms: u64) {
        while self.now_ms() <= ms {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        // Before 1970 only on a broken machine; it reads as the epoch and ids then wait.
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

#[derive(Debug)]
pub(crate) struct Generator<C> {
    clock: C,
    worker: u16,
    max_backward_ms: u64,
    max_backward: Duration,
    /// Set when a leased worker id is given back: no more ids.
    retired: AtomicBool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Milliseconds since our epoch of the last id.
    last: u64,
    sequence: u16,
}

impl<C: Clock> Generator<C> {
    pub(crate) fn new(clock: C, worker: u16, max_backward: Duration) -> Self {
        Self {
            clock,
            worker,
            max_backward_ms: u64::try_from(max_backward.as_millis()).unwrap_or(u64::MAX),
            max_backward,
            retired: AtomicBool::new(false),
            state: Mutex::new(State::default()),
        }
    }

    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
    }

    pub(crate) fn worker(&self) -> u16 {
        self.worker
    }

    fn now(&self) -> u64 {
        self.clock.now_ms().saturating_sub(EPOCH_UNIX_MS)
    }

    pub(crate) fn next(&self) -> Result<SnowflakeId, Error> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if self.retired.load(Ordering::Relaxed) {
            return Err(Error::WorkerIdLost(self.worker));
        }
        let now = self.now();
        if now > state.last {
            state.last = now;
            state.sequence = 0;
        } else {
            let behind = state.last - now;
            if behind > self.max_backward_ms {
                return Err(Error::ClockMovedBackwards {
                    behind: Duration::from_millis(behind),
                    allowed: self.max_backward,
                });
            }
            if state.sequence == MAX_SEQUENCE {
                self.clock.wait_past(state.last + EPOCH_UNIX_MS);
                state.last = self.now().max(state.last + 1);
                state.sequence = 0;
            } else {
                state.sequence += 1;
            }
        }
        if state.last > MAX_TIMESTAMP {
            return Err(Error::TimestampOverflow);
        }
        Ok(SnowflakeId::from_parts(
            state.last,
            self.worker,
            state.sequence,
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    };

    use super::*;

    /// A clock the test sets; waiting moves it on.
    #[derive(Clone, Default)]
    struct ManualClock(Arc<AtomicU64>);

    impl ManualClock {
        fn at(ms_after_epoch: u64) -> Self {
            Self(Arc::new(AtomicU64::new(EPOCH_UNIX_MS + ms_after_epoch)))
        }
        fn set(&self, ms_after_epoch: u64) {
            self.0
                .store(EPOCH_UNIX_MS + ms_after_epoch, Ordering::SeqCst);
        }
    }

    impl Clock for ManualClock {
        fn now_ms(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
        fn wait_past(&self, ms: u64) {
            self.0.fetch_max(ms + 1, Ordering::SeqCst);
        }
    }

    #[test]
    fn snowflake_ids_rise_within_and_across_milliseconds() {
        let clock = ManualClock::at(1_000);
        let generator = Generator::new(clock.clone(), 5, Duration::from_millis(10));
        let a = generator.next().unwrap();
        let b = generator.next().unwrap();
        clock.set(1_001);
        let c = generator.next().unwrap();
        assert!(a < b && b < c);
        assert_eq!((b.decode().timestamp, b.decode().sequence), (1_000, 1));
        assert_eq!(
            (c.decode().timestamp, c.decode().sequence, c.decode().worker),
            (1_001, 0, 5)
        );
    }

    #[test]
    fn snowflake_small_clock_steps_back_keep_ids_unique_and_rising() {
        let clock = ManualClock::at(5_000);
        let generator = Generator::new(clock.clone(), 1, Duration::from_millis(10));
        let before = generator.next().unwrap();
        clock.set(4_993); // 7 ms back: within the bound
        let during = generator.next().unwrap();
        assert!(during > before);
        assert_eq!(
            during.decode().timestamp,
            5_000,
            "ids keep the last time while the clock catches up"
        );
        clock.set(5_001);
        assert_eq!(generator.next().unwrap().decode().timestamp, 5_001);
    }

    #[test]
    fn snowflake_large_clock_steps_back_are_errors_until_the_clock_catches_up() {
        let clock = ManualClock::at(10_000);
        let generator = Generator::new(clock.clone(), 1, Duration::from_millis(10));
        let last = generator.next().unwrap();
        clock.set(9_000);
        let err = generator.next().unwrap_err();
        assert!(
            matches!(err, Error::ClockMovedBackwards { behind, .. } if behind == Duration::from_secs(1)),
            "{err}"
        );
        clock.set(10_000);
        assert!(
            generator.next().unwrap() > last,
            "fine again once within the bound"
        );
    }

    #[test]
    fn snowflake_a_used_up_millisecond_waits_for_the_next() {
        let clock = ManualClock::at(7);
        let generator = Generator::new(clock.clone(), 0, Duration::ZERO);
        let ids: Vec<_> = (0..=u32::from(MAX_SEQUENCE) + 1)
            .map(|_| generator.next().unwrap())
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let last = ids.last().unwrap().decode();
        assert_eq!(
            (last.timestamp, last.sequence),
            (8, 0),
            "the 4,097th id is in the next millisecond"
        );
        assert_eq!(ids[4095].decode().sequence, MAX_SEQUENCE);
    }

    #[test]
    fn snowflake_past_2093_is_an_error_not_a_wrapped_id() {
        let clock = ManualClock::at(MAX_TIMESTAMP + 1);
        let generator = Generator::new(clock, 0, Duration::ZERO);
        assert!(matches!(generator.next(), Err(Error::TimestampOverflow)));
    }
}
