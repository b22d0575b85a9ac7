//! The deployment environment.
//!
//! ```
//! use gochat_core::Env;
//! assert_eq!("prod".parse::<Env>().unwrap(), Env::Production);
//! assert_eq!(Env::Development.to_string(), "development");
//! assert!("staging".parse::<Env>().is_err());
//! ```

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// Where a process runs; components tune their defaults to it (`Config::for_env`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
// Deliberately exhaustive: every `Config::for_env` must decide for each environment, so adding
// one is a breaking change that the compiler walks us through.
pub enum Env {
    /// Local work: verbose, human-readable, small pools, short timeouts.
    #[default]
    Development,
    /// A deployment: JSON logs, larger pools, conservative timeouts.
    Production,
}

impl Env {
    /// The environment variable [`Env::from_env`] reads.
    pub const VAR: &'static str = "GOCHAT_ENV";

    /// Reads `GOCHAT_ENV`; unset or empty means [`Env::Development`].
    ///
    /// # Errors
    /// A value that names no environment, so a typo never silently runs production
    /// with development settings.
    pub fn from_env() -> Result<Self, ParseEnvError> {
        match std::env::var(Self::VAR) {
            Ok(value) if !value.trim().is_empty() => value.parse(),
            _ => Ok(Self::Development),
        }
    }

    /// The canonical lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Production => "production",
        }
    }
}

impl fmt::Display for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Env {
    type Err = ParseEnvError;

    /// Accepts `development`/`dev` and `production`/`prod`, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "development" | "dev" => Ok(Self::Development),
            "production" | "prod" => Ok(Self::Production),
            _ => Err(ParseEnvError {
                value: s.to_owned(),
            }),
        }
    }
}

/// A string that names no [`Env`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown environment {value:?}: expected `development` or `production`")]
pub struct ParseEnvError {
    /// The rejected value.
    pub value: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_aliases_in_any_case() {
        assert_eq!(" Production ".parse::<Env>().unwrap(), Env::Production);
        assert_eq!("DEV".parse::<Env>().unwrap(), Env::Development);
        let err = "prodution".parse::<Env>().unwrap_err();
        assert!(err.to_string().contains("prodution"), "{err}");
    }

    #[test]
    fn serde_uses_lowercase_names() {
        let env: Env = serde_json::from_str("\"production\"").unwrap();
        assert_eq!(env, Env::Production);
        assert_eq!(
            serde_json::to_string(&Env::Development).unwrap(),
            "\"development\""
        );
    }
}
