//! Injected dependencies.

use gochat_clog::Logger;

/// What `new` takes besides the config.
#[derive(Debug, Default, Clone)]
#[non_exhaustive]
pub struct Options {
    pub(crate) logger: Option<Logger>,
    pub(crate) metrics: Option<opentelemetry::metrics::Meter>,
}

impl Options {
    /// The logger for the provider's own lines (namespace `coord` is added). Default: the
    /// global logger.
    #[must_use]
    pub fn logger(mut self, logger: Logger) -> Self {
        self.logger = Some(logger);
        self
    }

    /// The meter this component reports its figures to (docs/metrics.md lists them), e.g.
    /// `gochat_metrics::Metrics::meter("coord")`. Default: the global meter provider
    /// (`gochat_metrics::Metrics::install_global`; a no-op until one is installed).
    #[must_use]
    pub fn metrics(mut self, meter: opentelemetry::metrics::Meter) -> Self {
        self.metrics = Some(meter);
        self
    }
}
