//! A scoped logger sees spans whose callsite another thread reached first. Alone in its test
//! binary on purpose: it needs a process where this is the only logger.

use gochat_clog::{Config, MemoryWriter, Options};
use gochat_core::{Context, Env};

fn probe() -> tracing::Span {
    tracing::info_span!("probe", trace_id = "interest-probe")
}

#[test]
fn spans_first_reached_on_another_thread_still_reach_a_scoped_logger() {
    let out = MemoryWriter::new();
    let log = gochat_clog::new(
        &Context::new(),
        Config::for_env(Env::Production),
        Options::default().writer(out.clone()),
    )
    .unwrap();
    // First reached outside the logger's scope, where no subscriber wants it.
    assert!(std::thread::spawn(probe).join().unwrap().is_disabled());
    log.in_scope(|| {
        let span = probe();
        assert!(!span.is_disabled(), "the callsite was disabled for good");
        let _entered = span.enter();
        tracing::info!("inside");
    });
    let lines = out.json_lines().unwrap();
    assert_eq!(lines[0]["trace_id"], "interest-probe", "{lines:?}");
}
