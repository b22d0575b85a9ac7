//! `init` installs the process-wide subscriber (one per test binary, hence its own file).

use gochat_clog::{Config, Error, MemoryWriter, Options};
use gochat_core::Env;

#[test]
fn init_routes_tracing_events_and_log_records_through_one_output() {
    let out = MemoryWriter::new();
    let log = gochat_clog::init(
        Config::for_env(Env::Production),
        Options::default().namespace("svc").writer(out.clone()),
    )
    .unwrap();

    tracing::info!(user = "ann", "plain tracing event");
    tracing_log::log::warn!("a log record from a dependency");
    gochat_clog::global()
        .namespace("cache")
        .info("through the global handle");
    log.request_span(None)
        .in_scope(|| tracing::info!("in a request"));

    let lines = out.json_lines().unwrap();
    assert_eq!(lines.len(), 4, "{}", out.contents());
    assert_eq!(lines[0]["user"], "ann");
    assert_eq!(lines[1]["level"], "WARN");
    assert_eq!(lines[1]["message"], "a log record from a dependency");
    assert_eq!(
        lines[1]["target"], "global",
        "log metadata is normalised: {}",
        lines[1]
    );
    assert_eq!(lines[2]["namespace"], "svc.cache");
    assert_eq!(lines[3]["trace_id"].as_str().map(str::len), Some(32));

    gochat_clog::global().set_level("error").unwrap();
    tracing::warn!("filtered now");
    assert_eq!(out.json_lines().unwrap().len(), 4);

    let again = gochat_clog::init(Config::for_env(Env::Production), Options::default());
    assert!(matches!(again, Err(Error::AlreadyInitialized)));
}
