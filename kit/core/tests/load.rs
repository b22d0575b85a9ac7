//! The layered loader: precedence, enum variants, and errors that name field and layer.

use std::{collections::BTreeMap, path::PathBuf};

use gochat_core::{ConfigError, Env, Loader, Secret, Settings};
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct App {
    name: String,
    workers: u32,
    tags: Vec<String>,
    pool: Pool,
    backend: Backend,
    rules: BTreeMap<String, u32>,
    api_token: Secret,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Pool {
    min: u32,
    max: u32,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Backend {
    Memory { capacity: u32 },
    Redis { url: String, pool: u32 },
}

impl Default for Pool {
    fn default() -> Self {
        Self { min: 1, max: 4 }
    }
}

impl Default for App {
    fn default() -> Self {
        Self::for_env(Env::Development)
    }
}

impl Settings for App {
    fn for_env(env: Env) -> Self {
        let production = env == Env::Production;
        Self {
            name: "app".into(),
            workers: if production { 8 } else { 1 },
            tags: vec!["default".into()],
            pool: Pool::default(),
            backend: Backend::Memory { capacity: 100 },
            rules: BTreeMap::from([("login".into(), 10), ("send".into(), 100)]),
            api_token: Secret::default(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.pool.min > self.pool.max {
            return Err(ConfigError::new("pool.min", "must not exceed pool.max"));
        }
        Ok(())
    }
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

struct Scratch(PathBuf);

impl Scratch {
    fn file(name: &str, text: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("gochat-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        let path = dir.join(name);
        std::fs::write(&path, text).expect("a scratch file");
        Self(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn loader(env: Env, pairs: &[(&str, &str)]) -> Loader {
    Loader::new(env).vars(vars(pairs))
}

#[test]
fn defaults_follow_the_environment() {
    let dev: App = loader(Env::Development, &[]).load().expect("loads");
    let prod: App = loader(Env::Production, &[]).load().expect("loads");
    assert_eq!(dev, App::for_env(Env::Development));
    assert_eq!((dev.workers, prod.workers), (1, 8));
}

#[test]
fn each_layer_overrides_the_one_below_and_keeps_what_it_does_not_name() {
    let file = Scratch::file(
        "precedence.toml",
        "name = \"from-file\"\nworkers = 3\n[pool]\nmax = 16\n[rules]\nlogin = 20\n",
    );
    let app: App = loader(
        Env::Production,
        &[
            ("GOCHAT_WORKERS", "5"),
            ("GOCHAT_POOL__MIN", "2"),
            ("OTHER_WORKERS", "9"),
        ],
    )
    .file(&file.0)
    .layer("command line", serde_json::json!({ "name": "from-flags" }))
    .load()
    .expect("loads");
    assert_eq!(app.name, "from-flags", "a later layer beats the file");
    assert_eq!(app.workers, 5, "the environment beats the file");
    assert_eq!(
        app.pool,
        Pool { min: 2, max: 16 },
        "tables merge field by field"
    );
    let two: App = loader(
        Env::Development,
        &[("GOCHAT_POOL__MIN", "2"), ("GOCHAT_POOL__MAX", "3")],
    )
    .load()
    .expect("loads");
    assert_eq!(
        two.pool,
        Pool { min: 2, max: 3 },
        "variables of one section add up"
    );
    assert_eq!(
        app.tags,
        ["default"],
        "what no layer names keeps its default"
    );
    assert_eq!(
        app.rules,
        BTreeMap::from([("login".into(), 20), ("send".into(), 100)]),
        "a map gains and changes entries, keeping the others"
    );
}

#[test]
fn yaml_files_and_typed_environment_values() {
    let file = Scratch::file("app.yaml", "name: yaml\npool:\n  max: 9\n");
    let app: App = loader(Env::Development, &[("GOCHAT_TAGS", "[\"a\", \"b\"]")])
        .file(&file.0)
        .load()
        .expect("loads");
    assert_eq!((app.name.as_str(), app.pool.max), ("yaml", 9));
    assert_eq!(app.tags, ["a", "b"]);
}

#[test]
fn a_layer_can_switch_an_enum_variant() {
    let file = Scratch::file(
        "switch.toml",
        "[backend.redis]\nurl = \"redis://127.0.0.1:6379\"\npool = 4\n",
    );
    let app: App = loader(Env::Development, &[("GOCHAT_BACKEND__REDIS__POOL", "8")])
        .file(&file.0)
        .load()
        .expect("loads");
    assert_eq!(
        app.backend,
        Backend::Redis {
            url: "redis://127.0.0.1:6379".into(),
            pool: 8
        }
    );
}

#[test]
fn errors_name_the_field_and_the_layer_that_set_it() {
    let err = loader(Env::Development, &[("GOCHAT_POOL__MAX", "many")])
        .load::<App>()
        .expect_err("not a number");
    assert_eq!(err.field, "pool.max");
    assert!(err.reason.contains("GOCHAT_POOL__MAX"), "{err}");

    let file = Scratch::file("typo.toml", "[pool]\nmaximum = 3\n");
    let err = loader(Env::Development, &[])
        .file(&file.0)
        .load::<App>()
        .expect_err("unknown field");
    assert_eq!(err.field, "pool.maximum");
    assert!(err.reason.contains("typo.toml"), "{err}");

    let err = loader(Env::Development, &[("GOCHAT_NAMR", "x")])
        .load::<App>()
        .expect_err("unknown field");
    assert_eq!(err.field, "namr");
    assert!(err.reason.contains("GOCHAT_NAMR"), "{err}");

    let err = loader(Env::Development, &[("GOCHAT_POOL__MIN", "9")])
        .load::<App>()
        .expect_err("fails validation");
    assert_eq!(err.field, "pool.min");
    assert!(err.reason.contains("GOCHAT_POOL__MIN"), "{err}");
}

#[test]
fn files_that_cannot_be_read_are_named() {
    let missing = Loader::new(Env::Development)
        .vars(vec![])
        .file("/nonexistent/gochat.toml")
        .load::<App>()
        .expect_err("no such file");
    assert_eq!(missing.field, "/nonexistent/gochat.toml");

    let broken = Scratch::file("broken.toml", "name = \n");
    let err = loader(Env::Development, &[])
        .file(&broken.0)
        .load::<App>()
        .expect_err("malformed");
    assert!(err.field.ends_with("broken.toml"), "{err}");

    let ini = Scratch::file("app.ini", "name = x\n");
    let err = loader(Env::Development, &[])
        .file(&ini.0)
        .load::<App>()
        .expect_err("format");
    assert!(err.reason.contains(".toml"), "{err}");
}

#[test]
fn secrets_are_read_but_never_shown() {
    let app: App = loader(Env::Development, &[("GOCHAT_API_TOKEN", "s3cr3t-value")])
        .load()
        .expect("loads");
    assert_eq!(app.api_token.expose(), "s3cr3t-value");
    assert!(!format!("{app:?}").contains("s3cr3t-value"));

    let err = loader(
        Env::Development,
        &[("GOCHAT_API_TOKEN", "{inner = 123456789}")],
    )
    .load::<App>()
    .expect_err("a table is no secret");
    assert_eq!(err.field, "api_token");
    assert!(!err.to_string().contains("123456789"), "{err}");
}

#[test]
fn kit_variables_that_are_not_fields_are_skipped() {
    let app: App = loader(
        Env::Development,
        &[
            ("GOCHAT_ENV", "production"),
            ("GOCHAT_CONFIG", "x.toml"),
            ("GOCHAT_TEST_REQUIRE", "all"),
        ],
    )
    .load()
    .expect("loads");
    assert_eq!(app.workers, 1);
    let err = loader(Env::Development, &[("GOCHAT_POOL____MAX", "1")])
        .load::<App>()
        .expect_err("empty section");
    assert_eq!(err.field, "GOCHAT_POOL____MAX");
}
