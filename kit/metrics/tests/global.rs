//! Components built without `Options::metrics` report through the global meter provider
//! (its own test binary: it installs process-wide state).

use std::time::Duration;

use gochat_core::{Context, Env};
use gochat_metrics::{Config, Options};

#[tokio::test]
async fn prometheus_shows_a_component_that_reports_through_the_global_provider() {
    let mut config = Config::default();
    config.listen = None;
    let metrics = gochat_metrics::new(&Context::new(), config, Options::default()).unwrap();
    metrics.install_global();

    let mut cache_config = gochat_cache::Config::for_env(Env::Development);
    cache_config.backend =
        gochat_cache::Backend::Memory(gochat_cache::MemoryConfig::named("global-meter"));
    let cache = gochat_cache::new(&Context::new(), cache_config, Default::default())
        .await
        .unwrap();
    let load = || async { Ok::<_, std::convert::Infallible>(Some(b"v".to_vec())) };
    for _ in 0..2 {
        cache
            .get_or_load("k", Duration::from_secs(60), load)
            .await
            .unwrap();
    }

    let text = metrics.scrape().unwrap();
    assert!(text.contains("cache_hits_total 1\n"), "{text}");
    assert!(text.contains("cache_misses_total 1\n"), "{text}");
}
