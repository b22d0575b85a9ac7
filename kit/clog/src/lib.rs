#![doc = include_str!("../README.md")]
// Library code returns typed errors; only proven invariants may panic (with a comment).
#![warn(clippy::unwrap_used)]

mod build;
mod config;
mod error;
mod fields;
mod json;
mod logger;
mod macros;
mod memory;
mod options;
mod output;
mod span_fields;
mod trace;

use std::sync::OnceLock;

use gochat_core::Context;

pub use config::{Config, FileOutput, Format, Output, Rotation, validate_level};
pub use error::Error;
pub use logger::Logger;
pub use memory::MemoryWriter;
/// The carrier traits of [`request_span_from`] and [`inject_trace`] (implemented for
/// `HashMap<String, String>`; the kit implements them for HTTP headers and message headers).
pub use opentelemetry::propagation::{Extractor, Injector};
pub use options::Options;
pub use span_fields::{current_trace_id, span_trace_id};
pub use trace::{
    MAX_TRACE_ID_LEN, TRACE_ID_FIELD, TRACEPARENT, inject_trace, is_valid_trace_id, new_trace_id,
    request_span, request_span_from,
};
pub use tracing::Level;

#[doc(hidden)]
pub mod __private {
    pub use tracing;
}

static GLOBAL: OnceLock<Logger> = OnceLock::new();

/// Builds a logger with its own subscriber, not installed globally.
///
/// Lines logged through the returned [`Logger`] (its methods, the crate's macros, or
/// `tracing` macros inside [`Logger::in_scope`]) go to its output. Use it to embed a logger
/// in a component or a test; a service calls [`init`] once instead. It starts no background
/// task on `ctx`; a file output's writer thread stops with [`Logger::flush_and_close`] or when
/// the last clone is dropped.
///
/// # Errors
/// [`Error::Config`] naming a bad field, or [`Error::Output`] when the log directory cannot
/// be used.
pub fn new(_ctx: &Context, config: Config, opts: Options) -> Result<Logger, Error> {
    keep_interest_global();
    build::build(config, opts, false).map(|(_, logger)| logger)
}

/// While exactly one subscriber is registered, tracing-core decides whether a callsite is
/// wanted by asking only the *current thread's* default subscriber. A callsite first reached
/// on a thread outside this logger's scope (another task, another test) would then be
/// disabled for good, and this logger would silently lose its spans and trace ids. A second,
/// never-used registered subscriber makes tracing-core ask every registered subscriber.
fn keep_interest_global() {
    static SECOND: OnceLock<tracing::Dispatch> = OnceLock::new();
    SECOND.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
}

/// Builds a logger and installs it as the process-wide subscriber, so every `tracing` event
/// (and every `log` record of dependencies) goes through it. Call once, early in `main`;
/// keep the returned logger and call [`Logger::flush_and_close`] last at shutdown so a file
/// output is flushed.
///
/// # Errors
/// As [`new`], and [`Error::AlreadyInitialized`] when a global subscriber exists.
pub fn init(config: Config, opts: Options) -> Result<Logger, Error> {
    let (dispatch, logger) = build::build(config, opts, true)?;
    tracing::dispatcher::set_global_default(dispatch).map_err(|_| Error::AlreadyInitialized)?;
    // Route `log` records (rdkafka, some drivers) into tracing. If another `log` logger is
    // already installed, leave it be: tracing events still reach us.
    let _ = tracing_log::LogTracer::init();
    let _ = GLOBAL.set(logger.clone());
    Ok(logger)
}

/// The logger installed by [`init`], or else [`Logger::current`]: what a component uses
/// when no logger is injected through its options.
pub fn global() -> Logger {
    GLOBAL.get().cloned().unwrap_or_else(Logger::current)
}
