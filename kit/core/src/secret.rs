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

    /// Whether it is unset (empty).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
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

/// A URL with its password hidden, for logs, errors and `Debug`: `scheme://user:password@host/db`
/// becomes `scheme://user:***@host/db` (the password may hold `/`, `@` or `:`), and a
/// `password`, `pass`, `secret` or `token` query parameter is hidden too; a URL without a
/// password is returned as it is.
///
/// ```
/// use gochat_core::redact_url;
///
/// assert_eq!(redact_url("mysql://app:s3cret@10.0.0.5:3306/chat"), "mysql://app:***@10.0.0.5:3306/chat");
/// assert_eq!(redact_url("mysql://app:a/b@c@10.0.0.5/chat"), "mysql://app:***@10.0.0.5/chat");
/// assert_eq!(
///     redact_url("postgres://10.0.0.5/chat?user=app&password=s3cret&sslmode=require"),
///     "postgres://10.0.0.5/chat?user=app&password=***&sslmode=require"
/// );
/// assert_eq!(redact_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    // The authority ends at the first '/' after the last '@' (a password may hold '/' or '@').
    let (userinfo, after_user) = match before_query.rsplit_once('@') {
        Some((userinfo, after)) => (Some(userinfo), after),
        None => (None, before_query),
    };
    let mut out = format!("{scheme}://");
    if let Some(userinfo) = userinfo {
        match userinfo.split_once(':') {
            Some((user, _)) => {
                out.push_str(user);
                out.push_str(":***@");
            }
            None => {
                out.push_str(userinfo);
                out.push('@');
            }
        }
    }
    out.push_str(after_user);
    if let Some(query) = query {
        out.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if is_secret_param(key) => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    out
}

fn is_secret_param(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "pass", "pwd", "secret", "token", "key"]
        .iter()
        .any(|s| key == *s || key.ends_with(&format!("_{s}")))
}

impl Secret {
    /// Whether this secret is fit to sign or authenticate with: at least `min_bytes` long, no
    /// placeholder text (`change me`, `example`, `secret`, spaces: a sentence is not a key) and
    /// no low-entropy pattern (at least 128 bits by a per-byte Shannon estimate, 12 distinct
    /// bytes). Generate one with `openssl rand -base64 48`.
    ///
    /// ```
    /// use gochat_core::Secret;
    ///
    /// assert!(Secret::from("change me: at least 32 bytes, the same for every im-logic").check_key(32).is_err());
    /// assert!(Secret::from("a".repeat(64)).check_key(32).is_err());
    /// assert!(Secret::from("q3Zk1m9V0rT8yXcL2bN7wPfH5sJd4gAe6uKo").check_key(32).is_ok());
    /// ```
    ///
    /// # Errors
    /// Why it is unfit, in words for a config error.
    pub fn check_key(&self, min_bytes: usize) -> Result<(), String> {
        let key = self.0.as_bytes();
        if key.len() < min_bytes {
            return Err(format!(
                "must be at least {min_bytes} bytes (generate one: openssl rand -base64 48)"
            ));
        }
        let lower = self.0.to_ascii_lowercase();
        let placeholder = [
            "change me",
            "changeme",
            "change-me",
            "change_me",
            "placeholder",
            "example",
            "secret",
            "password",
            "replace",
        ];
        if self.0.chars().any(char::is_whitespace) || placeholder.iter().any(|p| lower.contains(p))
        {
            return Err(
                "looks like a placeholder, not a key (generate one: openssl rand -base64 48)"
                    .to_owned(),
            );
        }
        let mut counts = [0_usize; 256];
        for &b in key {
            counts[usize::from(b)] += 1;
        }
        let distinct = counts.iter().filter(|&&c| c > 0).count();
        let len = key.len() as f64;
        let per_byte: f64 = counts
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = c as f64 / len;
                -p * p.log2()
            })
            .sum();
        if distinct < 12 || per_byte * len < 128.0 {
            return Err(
                "has too little entropy to be a key (generate one: openssl rand -base64 48)"
                    .to_owned(),
            );
        }
        Ok(())
    }
}
