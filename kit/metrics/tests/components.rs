//! Every instrumented component, after real operations (in-process backends), shows its
//! series on a Prometheus scrape with values that moved.

use std::time::Duration;

use gochat_core::{Context, Env};
use gochat_metrics::{Config, Metrics, Options};

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in\n{text}"))
}

fn metrics() -> Metrics {
    let mut config = Config::default();
    config.listen = None;
    gochat_metrics::new(&Context::new(), config, Options::default()).unwrap()
}

#[tokio::test]
async fn prometheus_shows_cache_ratelimit_and_breaker_figures() {
    let metrics = metrics();
    let ctx = Context::new();

    let mut cache_config = gochat_cache::Config::for_env(Env::Development);
    cache_config.backend =
        gochat_cache::Backend::Memory(gochat_cache::MemoryConfig::named("metrics-test"));
    let cache = gochat_cache::new(
        &ctx,
        cache_config,
        gochat_cache::Options::default().metrics(metrics.meter("cache")),
    )
    .await
    .unwrap();
    let load = || async { Ok::<_, std::io::Error>(Some(b"v".to_vec())) };
    cache
        .get_or_load("k", Duration::from_secs(60), load)
        .await
        .unwrap();
    cache
        .get_or_load("k", Duration::from_secs(60), load)
        .await
        .unwrap();

    let limits = gochat_ratelimit::Config::default().rule(
        "api",
        gochat_ratelimit::Rule::new(1, Duration::from_secs(60), 1),
    );
    let limiter = gochat_ratelimit::new(
        &ctx,
        limits,
        gochat_ratelimit::Options::default().metrics(metrics.meter("ratelimit")),
    )
    .await
    .unwrap();
    for _ in 0..3 {
        limiter.allow("u", "api").await.unwrap();
    }

    let mut breaker_config = gochat_breaker::Config::default();
    breaker_config.default = gochat_breaker::Policy::Classic {
        failures: 1,
        open_timeout: Duration::from_secs(60),
        half_open_successes: 1,
    };
    let breakers = gochat_breaker::new(
        &ctx,
        breaker_config,
        gochat_breaker::Options::default().metrics(metrics.meter("breaker")),
    )
    .await
    .unwrap();
    let repo = breakers.get("im-repo");
    let failing = repo
        .call_with(|| async { Err::<(), _>("down") }, |_| true)
        .await;
    assert!(failing.is_err());

    let text = metrics.scrape().unwrap();
    assert_eq!(value(&text, "cache_hits_total"), 1.0);
    assert_eq!(value(&text, "cache_misses_total"), 1.0);
    assert_eq!(value(&text, "cache_loads_total"), 1.0);
    for outcome in ["hit", "miss"] {
        assert_eq!(
            value(
                &text,
                &format!(r#"cache_get_or_load_duration_seconds_count{{outcome="{outcome}"}}"#)
            ),
            1.0,
            "{outcome}"
        );
    }
    assert_eq!(
        value(&text, r#"ratelimit_decisions_total{decision="allowed"}"#),
        1.0
    );
    assert_eq!(
        value(&text, r#"ratelimit_decisions_total{decision="denied"}"#),
        2.0
    );
    assert_eq!(
        value(&text, r#"breaker_failures_total{resource="im-repo"}"#),
        1.0
    );
    assert_eq!(
        value(&text, r#"breaker_state{resource="im-repo"}"#),
        2.0,
        "open"
    );
    assert_eq!(
        value(&text, r#"breaker_transitions_total{resource="im-repo"}"#),
        1.0
    );
}

#[tokio::test]
async fn prometheus_shows_mq_and_db_figures() {
    let metrics = metrics();
    let ctx = Context::new();

    let mut mq_config = gochat_mq::Config::for_env(Env::Development);
    mq_config.backend = gochat_mq::Backend::Memory(gochat_mq::MemoryConfig::named("metrics-test"));
    mq_config.consumer.max_retries = 1;
    mq_config.consumer.retry_backoff = Duration::from_millis(1);
    let mq = gochat_mq::new(
        &ctx,
        mq_config,
        gochat_mq::Options::default().metrics(metrics.meter("mq")),
    )
    .await
    .unwrap();
    mq.admin().create_topic("events", 1).await.unwrap();
    // "1" fails once and is retried; "2" fails for good and is dead-lettered.
    let handler = |message: gochat_mq::Received| async move {
        match (message.value_str(), message.attempt) {
            (Some("1"), 1) => Err(gochat_mq::HandlerError::from("try again")),
            (Some("2"), _) => Err(gochat_mq::Permanent("malformed".into()).into()),
            _ => Ok(()),
        }
    };
    let subscription = mq
        .consumer("metrics-test")
        .subscribe(&["events"], handler)
        .await
        .unwrap();
    for i in 0..3 {
        mq.producer()
            .send(gochat_mq::Message::new("events", format!("{i}")))
            .await
            .unwrap();
    }
    tokio::time::timeout(Duration::from_secs(30), async {
        while mq.stats().dead_lettered < 1 || mq.stats().consumed < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the three messages handled");
    subscription.shutdown().await;

    let db = gochat_db::new(
        &ctx,
        gochat_db::Config::with_primary(Env::Development, "sqlite::memory:"),
        gochat_db::Options::default().metrics(metrics.meter("db")),
    )
    .await
    .unwrap();
    use gochat_db::sea_orm::{ConnectionTrait, Statement};
    // Prepared statements go through sea-orm's metric callback (`execute_unprepared` does not).
    let run = |sql: &str| Statement::from_string(db.backend(), sql.to_owned());
    db.connection()
        .execute_raw(run("CREATE TABLE t (n INTEGER)"))
        .await
        .unwrap();
    let failed = db
        .connection()
        .execute_raw(run("INSERT INTO missing VALUES (1)"))
        .await;
    assert!(failed.is_err());

    let mut coord_config = gochat_coord::Config::for_env(Env::Development);
    coord_config.backend =
        gochat_coord::Backend::Memory(gochat_coord::MemoryConfig::named("metrics-test"));
    let coord = gochat_coord::new(
        &ctx,
        coord_config,
        gochat_coord::Options::default().metrics(metrics.meter("coord")),
    )
    .await
    .unwrap();

    let text = metrics.scrape().unwrap();
    // No outage here: the series exist at zero (the etcd outage tests make them move).
    assert_eq!(value(&text, "coord_lease_losses_total"), 0.0);
    assert_eq!(value(&text, "coord_watch_resumes_total"), 0.0);
    drop(coord);
    assert_eq!(
        value(&text, "mq_produced_total"),
        4.0,
        "three, and one to the DLQ"
    );
    assert_eq!(value(&text, "mq_consumed_total"), 3.0);
    assert_eq!(value(&text, "mq_retried_total"), 1.0);
    assert_eq!(value(&text, "mq_dead_lettered_total"), 1.0);
    assert_eq!(value(&text, "mq_lag"), 0.0);
    assert!(value(&text, "db_queries_total") >= 2.0, "{text}");
    assert!(value(&text, "db_failed_queries_total") >= 1.0, "{text}");
    assert!(value(&text, "db_query_seconds_total") > 0.0, "{text}");
    assert!(
        value(&text, r#"db_query_duration_seconds_count{outcome="ok"}"#) >= 1.0,
        "{text}"
    );
    assert!(
        value(&text, r#"db_query_duration_seconds_count{outcome="error"}"#) >= 1.0,
        "{text}"
    );
}
