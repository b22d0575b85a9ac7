//! The logger's real output: captured lines parsed as JSON, and files on disk.

use std::{fs, path::Path};

use gochat_clog::{Config, Error, FileOutput, Format, MemoryWriter, Options, Output, Rotation};
use gochat_core::{Context, Env, ErrorKind, KitError};
use serde_json::Value;
use tracing::Instrument;

fn json_logger(level: &str) -> (gochat_clog::Logger, MemoryWriter) {
    let out = MemoryWriter::new();
    let mut config = Config::for_env(Env::Production);
    config.level = level.to_owned();
    let log = gochat_clog::new(
        &Context::new(),
        config,
        Options::default().writer(out.clone()),
    )
    .expect("a valid production config");
    (log, out)
}

#[test]
fn lines_carry_the_namespace_path_and_fields() {
    let (log, out) = json_logger("info");
    let lock = log.namespace("cache").namespace("lock");
    gochat_clog::warn!(
        lock,
        key = "room:1",
        attempt = 3_u64,
        held = true,
        "lock busy"
    );
    log.info("root line");

    let lines = out.json_lines().unwrap();
    assert_eq!(lines.len(), 2, "{}", out.contents());
    let first = &lines[0];
    assert_eq!(first["namespace"], "cache.lock");
    assert_eq!(first["level"], "WARN");
    assert_eq!(first["message"], "lock busy");
    assert_eq!(first["key"], "room:1");
    assert_eq!(first["attempt"], 3);
    assert_eq!(first["held"], true);
    assert_eq!(
        first["target"], "output",
        "the macro keeps the caller's module as target"
    );
    assert!(
        first["timestamp"].as_str().unwrap().ends_with('Z'),
        "{first}"
    );
    assert!(
        lines[1].get("namespace").is_none(),
        "a root logger has no namespace: {}",
        lines[1]
    );
}

#[test]
fn every_line_in_a_request_span_carries_its_trace_id() {
    let (log, out) = json_logger("debug");
    let span = log.request_span(Some("0af7651916cd43dd8448eb211c80319c"));
    span.in_scope(|| {
        log.info("outer");
        log.in_scope(|| {
            let inner = tracing::info_span!("handler", user_id = 7);
            inner.in_scope(|| tracing::debug!(step = "load", "inner"));
        });
    });
    log.info("outside");

    let lines = out.json_lines().unwrap();
    assert_eq!(lines.len(), 3, "{}", out.contents());
    for line in &lines[..2] {
        assert_eq!(
            line["trace_id"], "0af7651916cd43dd8448eb211c80319c",
            "{line}"
        );
    }
    assert_eq!(lines[1]["span"], "handler");
    assert_eq!(
        lines[1]["user_id"], 7,
        "span fields are on the line: {}",
        lines[1]
    );
    assert_eq!(lines[1]["step"], "load");
    assert!(lines[2].get("trace_id").is_none(), "{}", lines[2]);
}

#[test]
fn invalid_incoming_trace_ids_are_replaced() {
    let (log, out) = json_logger("info");
    log.request_span(Some("forged\"}\n{\"level\":\"ERROR"))
        .in_scope(|| log.info("x"));
    let line = &out.json_lines().unwrap()[0];
    let id = line["trace_id"].as_str().unwrap();
    assert_eq!(id.len(), 32, "a fresh id replaced the forged one: {line}");
    assert_eq!(out.contents().lines().count(), 1);
}

#[tokio::test]
async fn the_trace_id_follows_an_instrumented_future_across_awaits() {
    let (log, out) = json_logger("info");
    let span = log.request_span(None);
    let task_log = log.clone();
    let seen = async move {
        tokio::task::yield_now().await;
        task_log.info("after await");
        task_log.in_scope(gochat_clog::current_trace_id)
    }
    .instrument(span)
    .await;
    let line = &out.json_lines().unwrap()[0];
    assert!(seen.is_some());
    assert_eq!(line["trace_id"].as_str(), seen.as_deref());
}

#[test]
fn levels_filter_and_change_at_runtime() {
    let (log, out) = json_logger("warn,output=info");
    let other = log.namespace("other");
    other.info("plain method: target gochat_clog, below warn");
    gochat_clog::info!(other, "macro: target output, enabled at info");
    gochat_clog::debug!(other, "below info for this target");
    assert_eq!(messages(&out), ["macro: target output, enabled at info"]);

    out.clear();
    log.set_level("debug").unwrap();
    assert_eq!(log.level().as_deref(), Some("debug"));
    other.debug("now visible");
    other.trace("still hidden");
    assert_eq!(messages(&out), ["now visible"]);

    let err = log.set_level("loud").unwrap_err();
    assert!(matches!(err, Error::InvalidLevel { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(
        log.level().as_deref(),
        Some("debug"),
        "a rejected change keeps the old level"
    );
    out.clear();
    other.debug("still at debug");
    assert_eq!(messages(&out), ["still at debug"]);
}

#[test]
fn pretty_output_shows_namespace_and_trace_id() {
    let out = MemoryWriter::new();
    let mut config = Config::for_env(Env::Development);
    config.format = Format::Pretty;
    let log = gochat_clog::new(
        &Context::new(),
        config,
        Options::default().writer(out.clone()),
    )
    .unwrap();
    log.request_span(Some("trace-pretty-1"))
        .in_scope(|| log.namespace("db").debug("query"));
    let text = out.contents();
    for expected in ["query", "db", "trace-pretty-1", "DEBUG"] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    assert!(
        !text.contains('\u{1b}'),
        "no colour codes when the output is not a terminal"
    );
}

#[test]
fn a_bad_config_names_the_field() {
    let mut config = Config::for_env(Env::Production);
    config.level = "infoo".to_owned();
    let err = gochat_clog::new(&Context::new(), config, Options::default()).unwrap_err();
    assert!(err.to_string().contains("`level`"), "{err}");
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
}

#[test]
fn an_unusable_log_directory_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    fs::write(&blocker, b"a file where the log directory should be").unwrap();
    let mut config = Config::for_env(Env::Production);
    config.output = Output::File(FileOutput::new(blocker.join("logs"), "app"));
    let err = gochat_clog::new(&Context::new(), config, Options::default()).unwrap_err();
    assert!(matches!(err, Error::Output { .. }), "{err}");
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}

#[test]
fn file_output_writes_dated_files_and_flushes_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_env(Env::Production);
    config.output = Output::File(FileOutput::new(dir.path(), "app"));
    let log = gochat_clog::new(&Context::new(), config, Options::default()).unwrap();
    for i in 0..100 {
        gochat_clog::info!(log.namespace("file"), i, "line");
    }
    log.flush_and_close();

    let files = log_files(dir.path());
    assert!(!files.is_empty());
    let mut lines = Vec::new();
    for name in &files {
        assert!(is_dated(name, "app", "log"), "unexpected file name {name}");
        let text = fs::read_to_string(dir.path().join(name)).unwrap();
        lines.extend(
            text.lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap()),
        );
    }
    assert_eq!(lines.len(), 100, "every line reached the file");
    assert_eq!(lines[99]["i"], 99);
    assert_eq!(lines[0]["namespace"], "file");
}

#[test]
fn file_output_prunes_old_files_beyond_max_files() {
    let dir = tempfile::tempdir().unwrap();
    for day in 1..=4 {
        fs::write(dir.path().join(format!("app.2020-01-0{day}.log")), b"old\n").unwrap();
    }
    fs::write(dir.path().join("other.log"), b"not ours\n").unwrap();
    let mut config = Config::for_env(Env::Production);
    let mut file = FileOutput::new(dir.path(), "app");
    file.rotation = Rotation::Daily;
    file.max_files = Some(2);
    config.output = Output::File(file);
    let log = gochat_clog::new(&Context::new(), config, Options::default()).unwrap();
    log.info("fresh");
    log.flush_and_close();

    let ours: Vec<_> = log_files(dir.path())
        .into_iter()
        .filter(|n| n.starts_with("app."))
        .collect();
    assert_eq!(
        ours.len(),
        2,
        "the current file and one old one remain: {ours:?}"
    );
    assert!(ours.iter().any(|n| !n.starts_with("app.2020")), "{ours:?}");
    assert!(
        dir.path().join("other.log").exists(),
        "files without our prefix are left alone"
    );
}

fn messages(out: &MemoryWriter) -> Vec<String> {
    out.json_lines()
        .expect("every line is JSON")
        .iter()
        .map(|l| {
            l["message"]
                .as_str()
                .expect("every line has a message")
                .to_owned()
        })
        .collect()
}

fn log_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .expect("the log directory exists")
        .map(|e| {
            e.expect("a readable entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// `{prefix}.YYYY-MM-DD.{suffix}`
fn is_dated(name: &str, prefix: &str, suffix: &str) -> bool {
    let Some(date) = name
        .strip_prefix(&format!("{prefix}."))
        .and_then(|rest| rest.strip_suffix(&format!(".{suffix}")))
    else {
        return false;
    };
    date.len() == 10
        && date.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        })
}
