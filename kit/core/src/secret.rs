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

/// A URL with its password hidden, for logs and `Debug`: `scheme://user:password@host/db`
/// becomes `scheme://user:***@host/db`; a URL without a password is returned as it is.
///
/// ```
/// use gochat_core::redact_url;
///
/// assert_eq!(redact_url("mysql://app:s3cret@10.0.0.5:3306/chat"), "mysql://app:***@10.0.0.5:3306/chat");
/// assert_eq!(redact_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        None => url.to_owned(),
    }
}
