//! The kit's config loader reading gochat's whole `Config` from a TOML or YAML file and
//! `GOCHAT_…` variables, as the gochat binaries do: any file and variables must load or give a
//! `ConfigError`, never a panic.
//!
//! The input: one byte of choices (bit 0: YAML instead of TOML; bit 1: production defaults
//! instead of development; bit 2: the standalone binary's defaults), the file, then optionally a
//! NUL byte and variables, one `NAME=value` a line (`GOCHAT_` is put before each name).
#![no_main]

use std::{path::PathBuf, sync::OnceLock};

use gochat::Config;
use gochat_core::{Env, Loader};
use libfuzzer_sys::fuzz_target;

/// This process's scratch directory for the file.
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("gochat-fuzz-config-{}", std::process::id()));
        // The harness cannot run without its scratch directory: a broken setup, not an input.
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&choices, rest)) = data.split_first() else {
        return;
    };
    let (file, vars) = match rest.iter().position(|&b| b == 0) {
        Some(nul) => (&rest[..nul], &rest[nul + 1..]),
        None => (rest, &[][..]),
    };
    let vars: Vec<(String, String)> = String::from_utf8_lossy(vars)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (format!("GOCHAT_{name}"), value.to_owned()))
        .collect();
    let extension = if choices & 1 == 0 { "toml" } else { "yaml" };
    let env = if choices & 2 == 0 {
        Env::Development
    } else {
        Env::Production
    };
    let defaults = if choices & 4 == 0 {
        Config::for_env(env)
    } else {
        Config::standalone(env)
    };
    let path = scratch().join(format!("gochat.{extension}"));
    // As above: a full disk is a broken harness, not a finding.
    std::fs::write(&path, file).expect("the scratch file written");
    let loaded = Loader::new(env).file(&path).vars(vars).load_from(&defaults);
    if let Err(e) = loaded {
        // The message is what a user sees: formatting it must not panic either.
        let _ = e.to_string();
    }
});
