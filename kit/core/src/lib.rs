#![doc = include_str!("../README.md")]
// Library code returns typed errors; only proven invariants may panic (with a comment).
#![warn(clippy::unwrap_used)]

mod context;
mod env;
mod error;
mod held;
mod lifecycle;
mod load;
mod named;
pub mod observe;
mod secret;

pub use context::{Context, ShutdownTimeout};
pub use env::{Env, ParseEnvError};
pub use error::{ConfigError, ErrorKind, KitError};
pub use held::{Held, HeldStatus};
pub use lifecycle::{BoxFuture, Health, HealthReport, HealthStatus, Lifecycle, check_all};
pub use load::{CONFIG_VAR, Loader, Origin, Settings, load};
pub use named::NamedStores;
pub use secret::{Secret, redact_url};
