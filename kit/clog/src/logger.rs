//! The [`Logger`] handle: namespaces, levels, request spans.

use std::{
    fmt,
    future::Future,
    sync::{Arc, Mutex, PoisonError},
};

use gochat_core::{BoxFuture, Health, Lifecycle};
use tracing::{
    Dispatch, Span,
    instrument::{WithDispatch, WithSubscriber},
};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::{EnvFilter, reload};

use crate::{Error, config::validate_level};

/// A cheap, cloneable logging handle with a namespace.
///
/// Built by [`new`](crate::new) (its own subscriber, for embedding and tests) or
/// [`init`](crate::init) (the process-wide subscriber). Clones and namespaced children share
/// the subscriber, its level and its output.
#[derive(Clone)]
pub struct Logger {
    shared: Arc<Shared>,
    namespace: Option<Arc<str>>,
}

pub(crate) struct Shared {
    /// `Some` for a logger with its own subscriber; `None` logs to the current default.
    pub(crate) dispatch: Option<Dispatch>,
    pub(crate) level: Option<LevelControl>,
    /// Flushes and stops the file writer thread when dropped.
    pub(crate) guard: Mutex<Option<WorkerGuard>>,
}

pub(crate) struct LevelControl {
    pub(crate) handle: reload::Handle<EnvFilter, crate::build::Base>,
    pub(crate) current: Mutex<String>,
}

impl Logger {
    pub(crate) fn from_shared(shared: Shared, namespace: Option<String>) -> Self {
        Self {
            shared: Arc::new(shared),
            namespace: namespace.filter(|n| !n.is_empty()).map(Into::into),
        }
    }

    /// A logger that writes to whatever subscriber is current (global or scoped) and has no
    /// level control: what a component uses when no logger was injected.
    pub fn current() -> Self {
        Self::from_shared(
            Shared {
                dispatch: None,
                level: None,
                guard: Mutex::new(None),
            },
            None,
        )
    }

    /// A child logger whose lines carry `namespace="parent.name"`.
    ///
    /// ```
    /// let log = gochat_clog::Logger::current().namespace("cache").namespace("lock");
    /// assert_eq!(log.namespace_path(), Some("cache.lock"));
    /// ```
    #[must_use]
    pub fn namespace(&self, name: &str) -> Self {
        let name = name.trim().trim_matches('.');
        if name.is_empty() {
            return self.clone();
        }
        let path = match &self.namespace {
            Some(parent) => format!("{parent}.{name}"),
            None => name.to_owned(),
        };
        Self {
            shared: self.shared.clone(),
            namespace: Some(path.into()),
        }
    }

    /// The dotted namespace, if any.
    pub fn namespace_path(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// Runs `f` with this logger's subscriber as the current one, so `tracing` macros and
    /// spans inside `f` use it. For a global logger this is just `f()`.
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.shared.dispatch {
            Some(dispatch) => tracing::dispatcher::with_default(dispatch, f),
            None => f(),
        }
    }

    /// Runs `future` with this logger's subscriber as the current one on every poll, so
    /// `tracing` macros inside it (a handler, a spawned task) log through this logger. For a
    /// global logger the process-wide subscriber already is the current one.
    pub fn bind<F: Future>(&self, future: F) -> WithDispatch<F> {
        match &self.shared.dispatch {
            Some(dispatch) => future.with_subscriber(dispatch.clone()),
            None => future.with_current_subscriber(),
        }
    }

    /// Starts a request span with the given (if valid) or a new trace id; see
    /// [`request_span`](crate::request_span).
    pub fn request_span(&self, trace_id: Option<&str>) -> Span {
        self.in_scope(|| crate::request_span(trace_id))
    }

    /// Starts a request span continuing the `traceparent` in `carrier`; see
    /// [`request_span_from`](crate::request_span_from).
    pub fn request_span_from(&self, carrier: &dyn opentelemetry::propagation::Extractor) -> Span {
        self.in_scope(|| crate::request_span_from(carrier))
    }

    /// Changes the level filter at runtime (same syntax as [`Config::level`](crate::Config)).
    ///
    /// # Errors
    /// [`Error::InvalidLevel`] for a bad directive (the old level stays), and
    /// [`Error::NoLevelControl`] for a logger from [`Logger::current`].
    pub fn set_level(&self, directives: &str) -> Result<(), Error> {
        let control = self.shared.level.as_ref().ok_or(Error::NoLevelControl)?;
        validate_level(directives).map_err(|reason| Error::InvalidLevel { reason })?;
        let filter = EnvFilter::try_new(directives).map_err(|e| Error::InvalidLevel {
            reason: e.to_string(),
        })?;
        let mut current = control
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        control
            .handle
            .reload(filter)
            .map_err(|e| Error::InvalidLevel {
                reason: e.to_string(),
            })?;
        directives.clone_into(&mut current);
        Ok(())
    }

    /// The current level filter, or `None` for a logger without level control.
    pub fn level(&self) -> Option<String> {
        let control = self.shared.level.as_ref()?;
        Some(
            control
                .current
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }

    /// Flushes a file output and stops its writer thread; later lines to a file output are
    /// dropped. Call it last at shutdown. Idempotent; a no-op for stdout and stderr.
    pub fn flush_and_close(&self) {
        drop(
            self.shared
                .guard
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
    }

    /// Logs `message` at ERROR. For fields, use [`error!`](crate::error!).
    pub fn error(&self, message: impl fmt::Display) {
        self.in_scope(|| tracing::error!(namespace = self.namespace_path(), "{message}"));
    }

    /// Logs `message` at WARN. For fields, use [`warn!`](crate::warn!).
    pub fn warn(&self, message: impl fmt::Display) {
        self.in_scope(|| tracing::warn!(namespace = self.namespace_path(), "{message}"));
    }

    /// Logs `message` at INFO. For fields, use [`info!`](crate::info!).
    pub fn info(&self, message: impl fmt::Display) {
        self.in_scope(|| tracing::info!(namespace = self.namespace_path(), "{message}"));
    }

    /// Logs `message` at DEBUG. For fields, use [`debug!`](crate::debug!).
    pub fn debug(&self, message: impl fmt::Display) {
        self.in_scope(|| tracing::debug!(namespace = self.namespace_path(), "{message}"));
    }

    /// Logs `message` at TRACE. For fields, use [`trace!`](crate::trace!).
    pub fn trace(&self, message: impl fmt::Display) {
        self.in_scope(|| tracing::trace!(namespace = self.namespace_path(), "{message}"));
    }
}

impl fmt::Debug for Logger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Logger")
            .field("namespace", &self.namespace)
            .field("own_subscriber", &self.shared.dispatch.is_some())
            .field("level", &self.level())
            .finish()
    }
}

impl Lifecycle for Logger {
    fn name(&self) -> &str {
        "clog"
    }

    fn health(&self) -> BoxFuture<'_, Health> {
        Box::pin(async { Health::up() })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move { self.flush_and_close() })
    }
}
