//! A string that never shows in `Debug` or `Display` output.
//!
//! ```
//! use gochat_core::Secret;
//!
//! let password = Secret::from("hunter2");
//! assert_eq!(format!("{password:?}"), "Secret(\"***\")");
//! assert_eq!(password.expose(), "hunter2");
//! let from_config: Secret = serde_json::from_str("\"s3cret\"").unwrap();
//! assert_eq!(from_config.expose(), "s3cret");
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

/// A password or token: deserialises from a plain string, prints as `***`.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself; call it only where it is handed to the server.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(\"***\")")
    }
}
