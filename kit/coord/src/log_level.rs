//! The log level, driven from the config centre: set `{service}/log/level` once and every
//! instance's logger follows, without a restart.

use gochat_clog::Logger;
use gochat_core::Context;

use crate::{ConfigScope, Error};

/// The value name a scope's log level is stored under.
pub const LOG_LEVEL: &str = "level";

impl ConfigScope {
    /// Drives `log`'s level (shared by its clones and namespaced children) from the value
    /// named [`LOG_LEVEL`] in this scope, a string in clog's directive syntax
    /// (`"info,gochat_cache=debug"`), until `ctx` is cancelled. Give it a scope of its own:
    /// `coord.config().scope("im-logic", "log")?`.
    ///
    /// A stored level applies at once and every update after it; a level clog rejects is
    /// logged and skipped (the current one stays); deleting the value restores the level the
    /// logger had when this started.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a logger without level control
    /// ([`Logger::current`]); a closed provider.
    pub fn follow_log_level(&self, ctx: &Context, log: &Logger) -> Result<(), Error> {
        let initial = log.level().ok_or_else(|| {
            Error::InvalidArgument(
                "this logger has no level control: pass the one clog::new or clog::init made"
                    .to_owned(),
            )
        })?;
        let log = log.clone();
        self.follow::<String, _, _>(
            ctx,
            |name, level| {
                if name == LOG_LEVEL {
                    gochat_clog::validate_level(level)
                } else {
                    Ok(())
                }
            },
            move |name, level| {
                if name != LOG_LEVEL {
                    return;
                }
                let level = level.unwrap_or_else(|| initial.clone());
                // Validated above; the initial level was the logger's own.
                if let Err(e) = log.set_level(&level) {
                    gochat_clog::warn!(log, error = %e, "could not apply the log level");
                }
            },
        )
    }
}
