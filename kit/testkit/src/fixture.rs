//! Names unique to a run and a test, so runs never collide and need no clean-up.

use std::sync::{
    OnceLock,
    atomic::{AtomicU64, Ordering},
};

/// 8 random hex digits, the same for the whole test process.
pub fn run_id() -> &'static str {
    static RUN: OnceLock<String> = OnceLock::new();
    RUN.get_or_init(|| uuid::Uuid::new_v4().simple().to_string()[..8].to_owned())
}

/// What a behaviour-suite case and its backend setup know about the test they run in.
#[derive(Debug, Clone)]
pub struct Fixture {
    case: &'static str,
    backend: &'static str,
    prefix: String,
}

impl Fixture {
    /// A fixture with a fresh prefix: `gct_{run}_{n}_`.
    ///
    /// The prefix holds only `[a-z0-9_]` and is at most 24 characters, so it is valid in a
    /// Redis key, an etcd key, a Kafka topic, and a MySQL or PostgreSQL database name.
    pub fn new(case: &'static str, backend: &'static str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Self {
            case,
            backend,
            prefix: format!("gct_{}_{n}_", run_id()),
        }
    }

    /// The case's name.
    pub fn case(&self) -> &'static str {
        self.case
    }

    /// The backend's name.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// The prefix unique to this test in this run.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `prefix + name`, with characters other than `[a-z0-9_]` turned into `_`.
    pub fn name(&self, name: &str) -> String {
        let cleaned = name
            .chars()
            .map(|c| match c.to_ascii_lowercase() {
                c @ ('a'..='z' | '0'..='9' | '_') => c,
                _ => '_',
            })
            .collect::<String>();
        format!("{}{cleaned}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_unique_short_and_portable() {
        let a = Fixture::new("case", "memory");
        let b = Fixture::new("case", "memory");
        assert_ne!(a.prefix(), b.prefix());
        assert!(a.prefix().starts_with(&format!("gct_{}_", run_id())));
        assert!(a.prefix().len() <= 24, "{}", a.prefix());
        assert_eq!(a.name("Room:1/x"), format!("{}room_1_x", a.prefix()));
        assert!(
            a.name("t")
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        );
    }
}
