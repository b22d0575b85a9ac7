//! Layered configuration: one [`load`] for every component, service and example.
//!
//! A value comes from the highest layer that names it:
//!
//! 1. the defaults, [`Settings::for_env`] of the environment (`GOCHAT_ENV`);
//! 2. a file, TOML (`.toml`) or YAML (`.yaml`, `.yml`): [`Loader::file`], or `GOCHAT_CONFIG`;
//! 3. environment variables `GOCHAT_…`: a field's path upper-cased, sections joined by `__`
//!    (`GOCHAT_CACHE__KEY_PREFIX=app:`); a value is read as a number, boolean, array
//!    (`[1, 2]`) or table (`{a = 1}`) when it parses as one, else as a string — quote a string
//!    that looks like a number (`'"1234"'`). `GOCHAT_ENV`, `GOCHAT_CONFIG` and `GOCHAT_TEST_…`
//!    are not fields;
//! 4. any further layers, in the order added: [`Loader::layer`] (the coord config centre's
//!    values, say, or command-line flags).
//!
//! Tables merge field by field. A table naming another variant of an enum replaces the one
//! below instead (`[cache.backend.redis]` over the default `memory` backend): when the layer
//! below holds a table of one key and the layer above a table of one other key, the upper
//! one wins whole. Unknown fields are errors in every layer (the kit's configs deny them), so
//! a typo never goes unnoticed. Then [`Settings::validate`] checks the values.
//!
//! Every error is a [`ConfigError`] naming the field's dotted path and the layer that set
//! it. Fields whose name says they are secret (`secret`, `password`, `token`) never have
//! their value in an error.
//!
//! ```
//! use gochat_core::{ConfigError, Env, Loader, Settings};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Serialize, Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct App { workers: u32, greeting: String }
//!
//! impl Settings for App {
//!     fn for_env(env: Env) -> Self {
//!         let workers = if env == Env::Production { 8 } else { 1 };
//!         Self { workers, greeting: "hello".into() }
//!     }
//!     fn validate(&self) -> Result<(), ConfigError> {
//!         if self.workers == 0 { return Err(ConfigError::new("workers", "must be above zero")); }
//!         Ok(())
//!     }
//! }
//!
//! # fn main() -> Result<(), ConfigError> {
//! let vars = [("GOCHAT_GREETING".to_owned(), "hi".to_owned())];
//! let app: App = Loader::new(Env::Production).vars(vars).load()?;
//! assert_eq!((app.workers, app.greeting.as_str()), (8, "hi"));
//!
//! let zero = [("GOCHAT_WORKERS".to_owned(), "0".to_owned())];
//! let refused = Loader::new(Env::Production).vars(zero).load::<App>();
//! assert_eq!(refused.err().map(|e| e.field).as_deref(), Some("workers"));
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};

use figment::{
    Figment, Profile, Provider,
    error::{Actual, Kind},
    providers::{Format, Serialized, Toml, Yaml},
    util::nest,
    value::{Dict, Value},
};
use serde::{Serialize, de::DeserializeOwned};

use crate::{ConfigError, Env, redact_url};

/// A configuration [`load`] builds: defaults per environment, and a check of the result.
///
/// Every kit component's `Config` implements it.
pub trait Settings: Serialize + DeserializeOwned {
    /// The defaults for `env`.
    fn for_env(env: Env) -> Self;

    /// Checks the values once every layer is applied.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the field (dotted path) and why.
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// The variable naming the config file [`load`] reads.
pub const CONFIG_VAR: &str = "GOCHAT_CONFIG";

/// The process's configuration: defaults for `GOCHAT_ENV`, the file `GOCHAT_CONFIG` names (if
/// any), the `GOCHAT_…` variables; validated.
///
/// # Errors
/// A [`ConfigError`] naming the field and the layer that set it, or a bad `GOCHAT_ENV`.
pub fn load<T: Settings>() -> Result<T, ConfigError> {
    Loader::from_process()?.load()
}

/// Builds a configuration from layers; [`load`] with the choices spelled out.
#[derive(Clone, Debug)]
pub struct Loader {
    env: Env,
    file: Option<PathBuf>,
    prefix: String,
    vars: Option<Vec<(String, String)>>,
    layers: Vec<(String, Result<Dict, String>)>,
}

impl Loader {
    /// Defaults for `env`, the process's `GOCHAT_…` variables, no file.
    pub fn new(env: Env) -> Self {
        Self {
            env,
            file: None,
            prefix: "GOCHAT_".to_owned(),
            vars: None,
            layers: Vec::new(),
        }
    }

    /// `GOCHAT_ENV`'s environment and `GOCHAT_CONFIG`'s file, if set.
    ///
    /// # Errors
    /// `GOCHAT_ENV` names no environment.
    pub fn from_process() -> Result<Self, ConfigError> {
        let env = Env::from_env().map_err(|e| ConfigError::new(Env::VAR, e.to_string()))?;
        let loader = Self::new(env);
        Ok(match std::env::var_os(CONFIG_VAR) {
            Some(path) if !path.is_empty() => loader.file(path),
            _ => loader,
        })
    }

    /// The environment whose defaults are the first layer.
    pub fn env(&self) -> Env {
        self.env
    }

    /// Reads `path` as the second layer: TOML, or YAML for `.yaml` and `.yml`.
    #[must_use]
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = Some(path.into());
        self
    }

    /// Environment variables start with `prefix` instead of `GOCHAT_`.
    #[must_use]
    pub fn env_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Reads these variables instead of the process's (tests, embedding).
    #[must_use]
    pub fn vars(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        self.vars = Some(vars.into_iter().collect());
        self
    }

    /// Adds a layer above the others: `value`'s fields, `name` saying where they came from
    /// in errors (`"coord /gochat/production/im-logic/settings"`, `"command line"`).
    #[must_use]
    pub fn layer(mut self, name: impl Into<String>, value: impl Serialize) -> Self {
        let dict = dict_of(&Serialized::defaults(value));
        self.layers.push((name.into(), dict));
        self
    }

    /// Applies the layers and validates the result.
    ///
    /// # Errors
    /// A [`ConfigError`]: an unreadable or malformed file (field: the file), a layer that does
    /// not serialize, an unknown field, a value of the wrong type, or one
    /// [`Settings::validate`] refuses; the reason says which layer set it.
    pub fn load<T: Settings>(&self) -> Result<T, ConfigError> {
        self.load_from(&T::for_env(self.env))
    }

    /// [`Loader::load`] over other defaults than [`Settings::for_env`] (a binary whose
    /// defaults differ from the type's, say).
    ///
    /// # Errors
    /// As [`Loader::load`].
    pub fn load_from<T: Settings>(&self, defaults: &T) -> Result<T, ConfigError> {
        let layers = self.layers(defaults)?;
        let mut merged = Dict::new();
        for (_, dict) in &layers {
            merge(&mut merged, dict.clone(), Variants::Switch);
        }
        let value: T = Figment::from(Serialized::defaults(merged))
            .extract()
            .map_err(|e| self.explain(&layers, &e))?;
        value.validate().map_err(|e| {
            let path: Vec<&str> = e.field.split('.').collect();
            match self.setter(&layers, &path) {
                Some(layer) if layer.as_str() != DEFAULTS => {
                    ConfigError::new(e.field, format!("{} (set by {layer})", e.reason))
                }
                _ => e,
            }
        })?;
        Ok(value)
    }

    /// Which layer above the defaults sets the dotted `field` last, if any: a binary can
    /// insist that a key comes from outside the image (a variable or a mounted secret, never the
    /// shipped file).
    ///
    /// ```
    /// use gochat_core::{Env, Loader, Origin};
    ///
    /// let loader = Loader::new(Env::Production).vars([("GOCHAT_LOGIC__KEY".to_owned(), "k".to_owned())]);
    /// assert_eq!(loader.origin("logic.key")?, Some(Origin::Variable("GOCHAT_LOGIC__KEY".to_owned())));
    /// assert_eq!(loader.origin("logic.other")?, None);
    /// # Ok::<(), gochat_core::ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// A file that cannot be read or parsed, or a layer that does not serialize.
    pub fn origin(&self, field: &str) -> Result<Option<Origin>, ConfigError> {
        let path: Vec<&str> = field.split('.').collect();
        for (name, dict) in self.layers.iter().rev() {
            let dict = dict
                .clone()
                .map_err(|reason| ConfigError::new(name, reason))?;
            if lookup(&dict, &path).is_some() {
                return Ok(Some(Origin::Layer(name.clone())));
            }
        }
        if lookup(&self.env_dict()?, &path).is_some() {
            return Ok(Some(Origin::Variable(format!(
                "{}{}",
                self.prefix,
                path.join("__").to_uppercase()
            ))));
        }
        if let Some(file) = &self.file {
            let dict = file_dict(file)
                .map_err(|reason| ConfigError::new(file.display().to_string(), reason))?;
            if lookup(&dict, &path).is_some() {
                return Ok(Some(Origin::File(file.clone())));
            }
        }
        Ok(None)
    }

    fn layers<T: Settings>(&self, defaults: &T) -> Result<Vec<(String, Dict)>, ConfigError> {
        let mut layers = Vec::new();
        let defaults =
            dict_of(&Serialized::defaults(defaults)).map_err(|e| ConfigError::new(DEFAULTS, e))?;
        layers.push((DEFAULTS.to_owned(), defaults));
        if let Some(path) = &self.file {
            let name = path.display().to_string();
            let dict = file_dict(path).map_err(|reason| ConfigError::new(&name, reason))?;
            layers.push((name, dict));
        }
        layers.push((ENVIRONMENT.to_owned(), self.env_dict()?));
        for (name, dict) in &self.layers {
            let dict = dict
                .clone()
                .map_err(|reason| ConfigError::new(name, reason))?;
            layers.push((name.clone(), dict));
        }
        Ok(layers)
    }

    fn env_dict(&self) -> Result<Dict, ConfigError> {
        let prefix = self.prefix.clone();
        let not_fields = [format!("{prefix}ENV"), format!("{prefix}CONFIG")];
        let test_vars = format!("{prefix}TEST_");
        let is_field = move |name: &str| {
            name.starts_with(&prefix)
                && !not_fields.iter().any(|n| n.eq_ignore_ascii_case(name))
                && !name.to_ascii_uppercase().starts_with(&test_vars)
        };
        let vars: Vec<(String, String)> = match &self.vars {
            Some(vars) => vars.clone(),
            None => std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        };
        let mut dict = Dict::new();
        for (name, raw) in vars.into_iter().filter(|(name, _)| is_field(name)) {
            let path = &name[self.prefix.len()..];
            if path.split("__").any(str::is_empty) {
                return Err(ConfigError::new(&name, "an empty section name"));
            }
            // Typed as figment types an environment variable; nested by `__`, lower-cased.
            let key = path
                .split("__")
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
                .join(".");
            let value = raw.parse::<Value>().unwrap_or_else(|never| match never {});
            // Variables of one layer add up: never a variant switch between them.
            if let Some(layer) = nest(&key, value).into_dict() {
                merge(&mut dict, layer, Variants::Merge);
            }
        }
        Ok(dict)
    }

    /// The layer that set `path` last: the topmost one holding it.
    fn setter(&self, layers: &[(String, Dict)], path: &[&str]) -> Option<String> {
        let (name, _) = layers
            .iter()
            .rev()
            .find(|(_, dict)| lookup(dict, path).is_some())?;
        Some(match name.as_str() {
            ENVIRONMENT => format!("{}{}", self.prefix, path.join("__").to_uppercase()),
            name => name.to_owned(),
        })
    }

    fn explain(&self, layers: &[(String, Dict)], error: &figment::Error) -> ConfigError {
        let mut path: Vec<String> = error.path.clone();
        // figment puts an unknown field at the end of the path; make sure of it.
        if let Kind::UnknownField(field, _) = &error.kind
            && path.last() != Some(field)
        {
            path.push(field.clone());
        }
        let refs: Vec<&str> = path.iter().map(String::as_str).collect();
        let secret = path.last().is_some_and(|f| is_secret(f));
        let shown = |actual: &Actual| match actual {
            _ if secret => hidden(actual).to_owned(),
            Actual::Str(s) => format!("string {:?}", redact_url(s)),
            actual => actual.to_string(),
        };
        let reason = match &error.kind {
            Kind::InvalidType(actual, expected) => {
                format!("invalid type: found {}, expected {expected}", shown(actual))
            }
            Kind::InvalidValue(actual, expected) => {
                format!("invalid value {}, expected {expected}", shown(actual))
            }
            kind => kind.to_string(),
        };
        let reason = match self.setter(layers, &refs) {
            Some(layer) => format!("{reason} (set by {layer})"),
            None => reason,
        };
        ConfigError::new(
            if path.is_empty() {
                "(root)".to_owned()
            } else {
                path.join(".")
            },
            reason,
        )
    }
}

/// Where a field's value came from ([`Loader::origin`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// The config file.
    File(PathBuf),
    /// An environment variable, by name.
    Variable(String),
    /// A layer added with [`Loader::layer`], by its name.
    Layer(String),
}

const DEFAULTS: &str = "defaults";
const ENVIRONMENT: &str = "environment";

fn is_secret(field: &str) -> bool {
    let field = field.to_ascii_lowercase();
    ["secret", "password", "token"]
        .iter()
        .any(|s| field.contains(s))
}

fn hidden(actual: &Actual) -> &'static str {
    match actual {
        Actual::Str(_) | Actual::Char(_) | Actual::Bytes(_) => "a string (hidden)",
        Actual::Unsigned(_) | Actual::Signed(_) | Actual::Float(_) => "a number (hidden)",
        _ => "a value (hidden)",
    }
}

/// A provider's fields (its default profile).
fn dict_of(provider: &impl Provider) -> Result<Dict, String> {
    Ok(provider
        .data()
        .map_err(|e| e.kind.to_string())?
        .remove(&Profile::Default)
        .unwrap_or_default())
}

fn file_dict(path: &Path) -> Result<Dict, String> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("toml") => dict_of(&Toml::file_exact(path)),
        Some("yaml" | "yml") => dict_of(&Yaml::file_exact(path)),
        _ => Err("not a .toml, .yaml or .yml file".to_owned()),
    }
}

fn lookup<'a>(dict: &'a Dict, path: &[&str]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let value = dict.get(*first)?;
    match (rest.is_empty(), value) {
        (true, value) => Some(value),
        (false, Value::Dict(_, inner)) => lookup(inner, rest),
        (false, _) => None,
    }
}

/// Whether a table of one key over a table of one other key is an enum variant switch.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Variants {
    /// Between layers: the upper table replaces the lower one whole.
    Switch,
    /// Within one layer (its variables): the tables merge.
    Merge,
}

/// Merges `over` into `base`: tables field by field, anything else replaced, and with
/// [`Variants::Switch`] a table of one key over a table of one other key (another enum
/// variant) replaced whole.
fn merge(base: &mut Dict, over: Dict, variants: Variants) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(Value::Dict(_, below)), Value::Dict(_, above))
                if variants == Variants::Merge
                    || !(below.len() == 1 && above.len() == 1 && below.keys().ne(above.keys())) =>
            {
                merge(below, above, variants);
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Implements [`Settings`] for a config type from its inherent `for_env(Env) -> Self` and
/// `validate(&self) -> Result<(), ConfigError>`, as every kit component's `Config` has.
#[macro_export]
macro_rules! impl_settings {
    ($config:ty) => {
        impl $crate::Settings for $config {
            fn for_env(env: $crate::Env) -> Self {
                <$config>::for_env(env)
            }

            fn validate(&self) -> ::std::result::Result<(), $crate::ConfigError> {
                <$config>::validate(self)
            }
        }
    };
}
