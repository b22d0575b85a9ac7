//! Injected dependencies of a logger.

use std::fmt;

use tracing_subscriber::fmt::{MakeWriter, writer::BoxMakeWriter};

/// What [`new`](crate::new) and [`init`](crate::init) take besides the config.
///
/// ```
/// use gochat_clog::{MemoryWriter, Options};
/// let opts = Options::default().namespace("im-logic").writer(MemoryWriter::new());
/// ```
#[derive(Default)]
pub struct Options {
    pub(crate) namespace: Option<String>,
    pub(crate) writer: Option<BoxMakeWriter>,
    pub(crate) otel: Option<crate::build::Extra>,
}

impl Options {
    /// The root namespace of the logger (usually the service name).
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Writes lines here instead of the configured output (tests, custom sinks).
    #[must_use]
    pub fn writer<W>(mut self, writer: W) -> Self
    where
        W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
    {
        self.writer = Some(BoxMakeWriter::new(writer));
        self
    }

    /// Also records every span as an OpenTelemetry span through `tracer` (the
    /// tracing-opentelemetry bridge), so request spans take their trace ids from
    /// OpenTelemetry and exported traces match the logs. `gochat_metrics::Metrics::tracer()`
    /// gives one.
    #[must_use]
    pub fn tracer<T>(mut self, tracer: T) -> Self
    where
        T: opentelemetry::trace::Tracer + Send + Sync + 'static,
        T::Span: Send + Sync,
    {
        self.otel = Some(Box::new(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_tracked_inactivity(false),
        ));
        self
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("namespace", &self.namespace)
            .field("writer", &self.writer.as_ref().map(|_| "custom"))
            .field("tracer", &self.otel.is_some())
            .finish()
    }
}
