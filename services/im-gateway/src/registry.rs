//! The connections this gateway holds: by user and by id, each with a bounded send queue.
//! Delivery never waits: a connection whose queue is full is kicked as a slow consumer.
//! It also keeps the sessions it was told have ended, so a socket of one is refused on its
//! next frame whenever it was registered.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{
        Arc, Mutex, MutexGuard, OnceLock,
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    },
};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio_util::sync::CancellationToken;

/// Why sockets are closed (the `reason` of the kick frame).
pub(crate) mod reason {
    /// The session logged out.
    pub(crate) const LOGOUT: &str = "logout";
    /// The access token ran out.
    pub(crate) const EXPIRED: &str = "token expired";
    /// The client let its queue fill.
    pub(crate) const SLOW: &str = "slow consumer";
    /// Nothing heard for the idle timeout.
    pub(crate) const IDLE: &str = "idle timeout";
    /// No first frame within the handshake timeout.
    pub(crate) const HANDSHAKE: &str = "handshake timeout";
    /// Rate limited too many times in a row.
    pub(crate) const RATE_LIMITED: &str = "rate limited";
    /// A frame over the size limit.
    pub(crate) const TOO_LARGE: &str = "frame too large";
    /// The gateway is stopping.
    pub(crate) const SHUTDOWN: &str = "shutdown";
    /// Any other reason sent by another service (counted under this label).
    pub(crate) const OTHER: &str = "other";
}

/// One WebSocket connection.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) id: String,
    pub(crate) user_id: String,
    pub(crate) session_id: String,
    queue: mpsc::Sender<Utf8Bytes>,
    /// Cancelled when the connection ends, by a kick (with a reason) or by the client.
    done: CancellationToken,
    reason: OnceLock<String>,
    counters: Arc<Counters>,
}

impl Conn {
    /// A connection and the receiving end of its queue.
    pub(crate) fn new(
        id: String,
        user_id: String,
        session_id: String,
        capacity: usize,
        counters: Arc<Counters>,
    ) -> (Arc<Self>, mpsc::Receiver<Utf8Bytes>) {
        let (queue, frames) = mpsc::channel(capacity);
        let conn = Self {
            id,
            user_id,
            session_id,
            queue,
            done: CancellationToken::new(),
            reason: OnceLock::new(),
            counters,
        };
        (Arc::new(conn), frames)
    }

    /// Queues a frame; a full queue kicks the connection. Whether it was queued.
    pub(crate) fn push(&self, frame: Utf8Bytes) -> bool {
        match self.queue.try_send(frame) {
            Ok(()) => {
                self.counters.frames_out.fetch_add(1, Relaxed);
                true
            }
            Err(TrySendError::Full(_)) => {
                self.kick(reason::SLOW);
                false
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }

    /// Closes the connection with a kick frame giving `reason` (the first reason wins).
    pub(crate) fn kick(&self, reason: &'static str) {
        self.kick_as(reason, reason.to_owned());
    }

    /// Kicks with a reason from elsewhere, counted under `label` (a known reason).
    pub(crate) fn kick_as(&self, label: &'static str, reason: String) {
        if self.reason.set(reason).is_ok() {
            self.counters.kicked(label);
        }
        self.done.cancel();
    }

    /// Ends the connection without a kick (the client went away).
    pub(crate) fn end(&self) {
        self.done.cancel();
    }

    /// Completes when the connection ends.
    pub(crate) fn done(&self) -> &CancellationToken {
        &self.done
    }

    /// Why it was kicked, if it was.
    pub(crate) fn kick_reason(&self) -> Option<&str> {
        self.reason.get().map(String::as_str)
    }
}

/// What the gateway counts (docs/metrics.md).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) frames_in: AtomicU64,
    pub(crate) frames_out: AtomicU64,
    pub(crate) accepted: AtomicU64,
    /// Connections closed at accept: the process was at `max_connections`.
    pub(crate) refused_connections: AtomicU64,
    /// Upgrades refused: the client address was at `max_sockets_per_addr`.
    pub(crate) refused_addr: AtomicU64,
    /// Upgrades refused: the user was at `max_sockets_per_user`.
    pub(crate) refused_user: AtomicU64,
    kicks: Mutex<BTreeMap<&'static str, u64>>,
}

impl Counters {
    fn kicked(&self, reason: &'static str) {
        *lock(&self.kicks).entry(reason).or_default() += 1;
    }

    /// Kicks so far, by reason.
    pub(crate) fn kicks(&self) -> BTreeMap<&'static str, u64> {
        lock(&self.kicks).clone()
    }
}

/// A poisoned lock only means another thread panicked while holding it; the maps stay
/// consistent (every change is one insert or remove), so keep going.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Default)]
struct Maps {
    by_user: HashMap<String, Vec<Arc<Conn>>>,
    by_id: HashMap<String, Arc<Conn>>,
}

/// Ended sessions, each until the last access token it could have issued runs out (Unix ms).
#[derive(Default)]
struct Ended {
    until: HashMap<String, i64>,
    /// In the order they came, so the expired ones are dropped from the front.
    order: VecDeque<(i64, String)>,
}

impl Ended {
    /// Forgets the sessions ended before `now`: none of their tokens can be alive.
    fn purge(&mut self, now: i64) {
        while let Some((until, _)) = self.order.front()
            && *until <= now
        {
            if let Some((until, session)) = self.order.pop_front()
                && self.until.get(&session) == Some(&until)
            {
                self.until.remove(&session);
            }
        }
    }
}

/// Every connection of this gateway.
#[derive(Default)]
pub(crate) struct Registry {
    maps: Mutex<Maps>,
    ended: Mutex<Ended>,
    /// Whether `ended` may hold anything: frames skip its lock while nothing has ended.
    any_ended: AtomicBool,
}

impl Registry {
    /// Adds a connection; whether it is its user's first here.
    pub(crate) fn add(&self, conn: Arc<Conn>) -> bool {
        let mut maps = lock(&self.maps);
        maps.by_id.insert(conn.id.clone(), conn.clone());
        let conns = maps.by_user.entry(conn.user_id.clone()).or_default();
        conns.push(conn);
        conns.len() == 1
    }

    /// Removes a connection; whether it was its user's last here.
    pub(crate) fn remove(&self, conn: &Conn) -> bool {
        let mut maps = lock(&self.maps);
        maps.by_id.remove(&conn.id);
        let Some(conns) = maps.by_user.get_mut(&conn.user_id) else {
            return false;
        };
        conns.retain(|c| c.id != conn.id);
        if conns.is_empty() {
            maps.by_user.remove(&conn.user_id);
            true
        } else {
            false
        }
    }

    /// Whether the user has a connection here.
    pub(crate) fn has_user(&self, user_id: &str) -> bool {
        lock(&self.maps).by_user.contains_key(user_id)
    }

    /// The users with a connection here.
    pub(crate) fn users(&self) -> Vec<String> {
        lock(&self.maps).by_user.keys().cloned().collect()
    }

    /// One connection.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<Conn>> {
        lock(&self.maps).by_id.get(id).cloned()
    }

    /// The connections of these users (all of them when `users` is empty).
    pub(crate) fn of_users(&self, users: &[String]) -> Vec<Arc<Conn>> {
        let maps = lock(&self.maps);
        if users.is_empty() {
            return maps.by_id.values().cloned().collect();
        }
        users
            .iter()
            .filter_map(|u| maps.by_user.get(u))
            .flatten()
            .cloned()
            .collect()
    }

    /// How many connections there are.
    pub(crate) fn len(&self) -> usize {
        lock(&self.maps).by_id.len()
    }

    /// Remembers that `session` ended, until `until_ms` (Unix ms). Call it before kicking the
    /// session's connections: one registered after that kick finds the session here.
    pub(crate) fn end_session(&self, session: &str, until_ms: i64) {
        self.end_session_at(session, until_ms, gochat_proto::now_ms());
    }

    fn end_session_at(&self, session: &str, until_ms: i64, now: i64) {
        let mut ended = lock(&self.ended);
        ended.purge(now);
        if until_ms <= now {
            return;
        }
        let until = ended.until.entry(session.to_owned()).or_default();
        if *until >= until_ms {
            return;
        }
        *until = until_ms;
        ended.order.push_back((until_ms, session.to_owned()));
        self.any_ended.store(true, Relaxed);
    }

    /// Whether `session` has ended: a lock and a lookup, or nothing at all while no session
    /// has ended here.
    pub(crate) fn has_ended(&self, session: &str) -> bool {
        self.has_ended_at(session, gochat_proto::now_ms())
    }

    fn has_ended_at(&self, session: &str, now: i64) -> bool {
        if !self.any_ended.load(Relaxed) {
            return false;
        }
        let ended = lock(&self.ended);
        ended.until.get(session).is_some_and(|until| *until > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(id: &str, user: &str, capacity: usize) -> (Arc<Conn>, mpsc::Receiver<Utf8Bytes>) {
        Conn::new(id.into(), user.into(), "s".into(), capacity, Arc::default())
    }

    #[test]
    fn first_and_last_connection_of_a_user_are_told_apart() {
        let registry = Registry::default();
        let (a, _ra) = conn("a", "ann", 4);
        let (b, _rb) = conn("b", "ann", 4);
        assert!(registry.add(a.clone()));
        assert!(!registry.add(b.clone()));
        assert_eq!(registry.of_users(&["ann".into()]).len(), 2);
        assert!(!registry.remove(&a));
        assert!(registry.has_user("ann"));
        assert!(registry.remove(&b));
        assert!(!registry.has_user("ann"));
        assert_eq!(registry.len(), 0);
    }

    #[test]
    fn a_full_queue_kicks_only_its_own_connection() {
        let (slow, _unread) = conn("slow", "ann", 2);
        let (fast, mut read) = conn("fast", "bob", 2);
        for i in 0..3 {
            let frame = Utf8Bytes::from(format!("{i}"));
            fast.push(frame.clone());
            let _ = read.try_recv();
            slow.push(frame);
        }
        assert_eq!(slow.kick_reason(), Some(reason::SLOW));
        assert!(slow.done().is_cancelled());
        assert_eq!(fast.kick_reason(), None);
        assert!(!fast.done().is_cancelled());
    }

    #[test]
    fn an_ended_session_is_remembered_until_its_tokens_run_out() {
        let registry = Registry::default();
        assert!(!registry.has_ended_at("s1", 1_000));
        registry.end_session_at("s1", 5_000, 1_000);
        registry.end_session_at("s2", 6_000, 1_000);
        // Told again, with a later end: the later one counts.
        registry.end_session_at("s1", 8_000, 2_000);
        assert!(registry.has_ended_at("s1", 4_000));
        assert!(registry.has_ended_at("s2", 4_000));
        assert!(!registry.has_ended_at("s3", 4_000));
        // At 7 s the first entry of s1 and s2 are purged; s1's later end stays.
        registry.end_session_at("s3", 9_000, 7_000);
        assert!(registry.has_ended_at("s1", 7_000));
        assert!(!registry.has_ended_at("s2", 7_000));
        assert_eq!(lock(&registry.ended).until.len(), 2);
        // An end already past is not kept.
        registry.end_session_at("s4", 1_000, 9_500);
        assert!(!registry.has_ended_at("s4", 9_500));
        assert!(lock(&registry.ended).until.is_empty());
    }

    #[test]
    fn the_first_kick_reason_wins_and_is_counted_once() {
        let counters = Arc::new(Counters::default());
        let (c, _r) = Conn::new("c".into(), "u".into(), "s".into(), 1, counters.clone());
        c.kick(reason::LOGOUT);
        c.kick(reason::SHUTDOWN);
        assert_eq!(c.kick_reason(), Some(reason::LOGOUT));
        assert_eq!(counters.kicks().get(reason::LOGOUT), Some(&1));
        assert_eq!(counters.kicks().get(reason::SHUTDOWN), None);
    }
}
