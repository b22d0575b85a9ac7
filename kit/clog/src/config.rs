//! Static configuration of a logger.
//!
//! ```
//! use gochat_clog::{Config, Format, Output};
//! use gochat_core::Env;
//!
//! let mut config = Config::for_env(Env::Production);
//! assert_eq!(config.format, Format::Json);
//! config.level = "info,gochat_cache=debug".into();
//! config.validate().unwrap();
//!
//! let from_toml: Config = serde_json::from_str(
//!     r#"{"level": "warn", "format": "compact", "output": "stderr"}"#,
//! ).unwrap();
//! assert_eq!(from_toml.output, Output::Stderr);
//! ```

use std::path::PathBuf;

use gochat_core::{ConfigError, Env};
use serde::{Deserialize, Serialize};

/// How a logger formats, filters and where it writes.
///
/// Every field has a default (`#[serde(default)]` takes [`Config::default`], the development
/// preset), so a config file names only what it changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Which events are kept: a level (`trace`, `debug`, `info`, `warn`, `error`, `off`),
    /// optionally followed by per-target levels: `info,gochat_cache=debug,sqlx=warn`.
    /// Default: `debug` in development, `info` in production. Changeable at runtime with
    /// [`Logger::set_level`](crate::Logger::set_level).
    pub level: String,
    /// Line format. Default: [`Format::Pretty`] in development, [`Format::Json`] in production.
    pub format: Format,
    /// Where lines go. Default: [`Output::Stdout`].
    pub output: Output,
    /// ANSI colours for `pretty` and `compact` output, applied only when the output is a
    /// terminal. Default: `true` in development, `false` in production.
    pub color: bool,
    /// Source file and line on each line. Default: `true` in development, `false` in production.
    pub with_location: bool,
}

/// Line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Format {
    /// One JSON object per line: `timestamp`, `level`, `namespace`, `trace_id`, `message`,
    /// `target`, then span and event fields. For machines (production).
    Json,
    /// Multi-line, human-readable, with span context. For people (development).
    Pretty,
    /// One human-readable line per event.
    Compact,
}

/// Where lines go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Output {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// Files in a directory, rotated by time, old ones pruned. Written by a background
    /// thread, so logging never blocks on the disk; nothing is dropped when it falls behind.
    File(FileOutput),
}

/// Rotating file output: `{dir}/{prefix}.{date}.{suffix}`, e.g. `logs/gochat.2026-11-21.log`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct FileOutput {
    /// Directory of the files, created if missing. Default: `logs`.
    pub dir: PathBuf,
    /// File name prefix. Default: `gochat`.
    pub prefix: String,
    /// File name suffix. Default: `log`.
    pub suffix: String,
    /// When a new file starts. Default: [`Rotation::Daily`].
    pub rotation: Rotation,
    /// How many files to keep (the current one included); older ones are deleted.
    /// `None` keeps all. Default: `Some(7)`.
    pub max_files: Option<usize>,
}

/// When a new log file starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Rotation {
    /// Every minute.
    Minutely,
    /// Every hour.
    Hourly,
    /// Every day (UTC).
    Daily,
    /// Every week (UTC, from Sunday).
    Weekly,
    /// One file, `{prefix}.{suffix}`, never rotated.
    Never,
}

impl Default for Config {
    fn default() -> Self {
        Self::for_env(Env::Development)
    }
}

impl Default for FileOutput {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("logs"),
            prefix: "gochat".to_owned(),
            suffix: "log".to_owned(),
            rotation: Rotation::Daily,
            max_files: Some(7),
        }
    }
}

impl FileOutput {
    /// Daily files named `{prefix}.{date}.log` in `dir`, keeping 7.
    pub fn new(dir: impl Into<PathBuf>, prefix: impl Into<String>) -> Self {
        Self {
            dir: dir.into(),
            prefix: prefix.into(),
            ..Self::default()
        }
    }
}

const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

impl Config {
    /// Tuned defaults: development is pretty, coloured and verbose; production is JSON at
    /// `info`.
    pub fn for_env(env: Env) -> Self {
        match env {
            Env::Development => Self {
                level: "debug".to_owned(),
                format: Format::Pretty,
                output: Output::Stdout,
                color: true,
                with_location: true,
            },
            Env::Production => Self {
                level: "info".to_owned(),
                format: Format::Json,
                output: Output::Stdout,
                color: false,
                with_location: false,
            },
        }
    }

    /// Checks every field; `new` and `init` call it.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_level(&self.level).map_err(|reason| ConfigError::new("level", reason))?;
        if let Output::File(file) = &self.output {
            if file.dir.as_os_str().is_empty() {
                return Err(ConfigError::new("output.file.dir", "must not be empty"));
            }
            for (field, value) in [("prefix", &file.prefix), ("suffix", &file.suffix)] {
                if value.contains(['/', '\\']) {
                    return Err(ConfigError::new(
                        format!("output.file.{field}"),
                        format!("{value:?} must be a file name part, not a path"),
                    ));
                }
            }
            if file.prefix.is_empty() && file.suffix.is_empty() {
                return Err(ConfigError::new(
                    "output.file.prefix",
                    "prefix and suffix cannot both be empty",
                ));
            }
            if file.max_files == Some(0) {
                return Err(ConfigError::new(
                    "output.file.max_files",
                    "must be at least 1 (or absent to keep every file)",
                ));
            }
        }
        Ok(())
    }
}

/// Checks a level directive: `info` or `info,target=debug`.
///
/// Checks level directives (`info`, `info,gochat_cache=debug`) as [`Logger::set_level`]
/// would, without changing anything: for validating a level before storing it.
///
/// `tracing-subscriber` reads a bare word that is not a level as a target name enabled at
/// every level, so a typo like `infoo` would silently turn all other logging off. We reject
/// bare words that are not levels instead.
///
/// ```
/// assert!(gochat_clog::validate_level("warn,gochat_mq=debug").is_ok());
/// assert!(gochat_clog::validate_level("infoo").is_err());
/// ```
///
/// # Errors
/// Why the directives are rejected.
///
/// [`Logger::set_level`]: crate::Logger::set_level
pub fn validate_level(directives: &str) -> Result<(), String> {
    if directives.trim().is_empty() {
        return Err("must not be empty: use `off` to disable logging".to_owned());
    }
    for directive in directives.split(',').map(str::trim) {
        let level = match directive.rsplit_once('=') {
            Some((_, level)) => level,
            None => directive,
        };
        if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "{directive:?} has no valid level: use one of {LEVELS:?}, or `target=level`"
            ));
        }
    }
    tracing_subscriber::EnvFilter::try_new(directives)
        .map(drop)
        .map_err(|e| format!("{directives:?}: {e}"))
}

gochat_core::impl_settings!(Config);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_differ_by_environment() {
        let dev = Config::for_env(Env::Development);
        let prod = Config::for_env(Env::Production);
        assert_eq!((dev.format, dev.level.as_str()), (Format::Pretty, "debug"));
        assert_eq!((prod.format, prod.level.as_str()), (Format::Json, "info"));
        dev.validate().unwrap();
        prod.validate().unwrap();
    }

    #[test]
    fn a_level_typo_names_the_field() {
        let mut config = Config::default();
        for bad in ["infoo", "", "info,gochat_cache=loud", "warn,"] {
            config.level = bad.to_owned();
            let err = config.validate().unwrap_err();
            assert_eq!(err.field, "level", "{bad:?}: {err}");
        }
        config.level = "WARN,gochat_cache=debug,sqlx::query=off".to_owned();
        config.validate().unwrap();
    }

    #[test]
    fn file_output_is_checked() {
        let mut file = FileOutput::new("/tmp/x", "app/../etc");
        let mut config = Config {
            output: Output::File(file.clone()),
            ..Config::default()
        };
        assert_eq!(config.validate().unwrap_err().field, "output.file.prefix");
        file.prefix = "app".to_owned();
        file.max_files = Some(0);
        config.output = Output::File(file);
        assert_eq!(
            config.validate().unwrap_err().field,
            "output.file.max_files"
        );
    }

    #[test]
    fn config_files_need_name_only_what_they_change() {
        let config: Config = serde_json::from_str(
            r#"{"format": "json", "output": {"file": {"dir": "/var/log/im", "rotation": "hourly"}}}"#,
        )
        .unwrap();
        assert_eq!(config.level, "debug");
        let Output::File(file) = config.output else {
            panic!("file output expected")
        };
        assert_eq!(
            (file.prefix.as_str(), file.rotation),
            ("gochat", Rotation::Hourly)
        );
        let unknown = serde_json::from_str::<Config>(r#"{"levle": "info"}"#).unwrap_err();
        assert!(unknown.to_string().contains("levle"), "{unknown}");
    }
}
