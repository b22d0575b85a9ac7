//! What a check answers.

use std::time::Duration;

use serde::Serialize;

/// The answer to one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Decision {
    /// Whether the request may go ahead (its tokens were taken).
    pub allowed: bool,
    /// Requests the key may still make at once, after this one.
    pub remaining: u32,
    /// When denied: how long until the request would be allowed. `None` when it never will
    /// (an unknown rule that is denied).
    pub retry_after: Option<Duration>,
    /// Decided in this process: the local backend, or the fallback while Redis is unreachable.
    pub local: bool,
}

impl Decision {
    pub(crate) fn allowed(remaining: u32, local: bool) -> Self {
        Self {
            allowed: true,
            remaining,
            retry_after: None,
            local,
        }
    }

    pub(crate) fn denied(retry_after: Duration, local: bool) -> Self {
        Self {
            allowed: false,
            remaining: 0,
            retry_after: Some(retry_after),
            local,
        }
    }

    pub(crate) fn never() -> Self {
        Self {
            allowed: false,
            remaining: 0,
            retry_after: None,
            local: true,
        }
    }
}
