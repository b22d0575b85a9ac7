//! Injected dependencies.

use gochat_clog::Logger;

/// What `new` takes besides the config.
#[derive(Debug, Default, Clone)]
#[non_exhaustive]
pub struct Options {
    pub(crate) logger: Option<Logger>,
}

impl Options {
    /// The logger for the provider's own lines (namespace `coord` is added). Default: the
    /// global logger.
    #[must_use]
    pub fn logger(mut self, logger: Logger) -> Self {
        self.logger = Some(logger);
        self
    }
}
