//! `tracing`-style macros that log through a [`Logger`](crate::Logger): its subscriber, its
//! namespace, and the caller's module as the target (so per-target levels work).

/// Logs an event at a given level through a logger, with fields, like `tracing::event!`.
///
/// ```
/// use gochat_clog::{Config, MemoryWriter, Options};
/// use gochat_core::{Context, Env};
///
/// let out = MemoryWriter::new();
/// let log = gochat_clog::new(&Context::new(), Config::for_env(Env::Production),
///     Options::default().writer(out.clone())).unwrap();
/// gochat_clog::event!(log, gochat_clog::Level::INFO, user_id = 42, "logged in from {}", "web");
/// let line = &out.json_lines().unwrap()[0];
/// assert_eq!(line["user_id"], 42);
/// assert_eq!(line["message"], "logged in from web");
/// ```
#[macro_export]
macro_rules! event {
    ($log:expr, $level:expr, $($arg:tt)+) => {{
        let log: &$crate::Logger = &$log;
        log.in_scope(|| {
            $crate::__private::tracing::event!($level, namespace = log.namespace_path(), $($arg)+)
        })
    }};
}

/// Logs at ERROR through a logger: `error!(log, key = value, "message {}", arg)`.
#[macro_export]
macro_rules! error {
    ($log:expr, $($arg:tt)+) => {
        $crate::event!($log, $crate::__private::tracing::Level::ERROR, $($arg)+)
    };
}

/// Logs at WARN through a logger: `warn!(log, key = value, "message {}", arg)`.
#[macro_export]
macro_rules! warn {
    ($log:expr, $($arg:tt)+) => {
        $crate::event!($log, $crate::__private::tracing::Level::WARN, $($arg)+)
    };
}

/// Logs at INFO through a logger: `info!(log, key = value, "message {}", arg)`.
#[macro_export]
macro_rules! info {
    ($log:expr, $($arg:tt)+) => {
        $crate::event!($log, $crate::__private::tracing::Level::INFO, $($arg)+)
    };
}

/// Logs at DEBUG through a logger: `debug!(log, key = value, "message {}", arg)`.
#[macro_export]
macro_rules! debug {
    ($log:expr, $($arg:tt)+) => {
        $crate::event!($log, $crate::__private::tracing::Level::DEBUG, $($arg)+)
    };
}

/// Logs at TRACE through a logger: `trace!(log, key = value, "message {}", arg)`.
#[macro_export]
macro_rules! trace {
    ($log:expr, $($arg:tt)+) => {
        $crate::event!($log, $crate::__private::tracing::Level::TRACE, $($arg)+)
    };
}
