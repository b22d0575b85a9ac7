//! The rate-limit behaviour suite: every case on the local backend and on Redis (through a
//! proxy the outage case cuts).

use std::time::Duration;

use gochat_cache::{Backend as CacheBackend, RedisConfig};
use gochat_coord::MemoryConfig;
use gochat_core::{Context, Env};
use gochat_ratelimit::{BackendKind, Config, Error, Options, RateLimiter, Rule, UnknownRule};
use gochat_testkit::{Engine, Fixture, TcpProxy, behaviour_suite, endpoint};
use tokio::time::{sleep, timeout};

const PATIENCE: Duration = Duration::from_secs(60);
/// Slow refill: within a case, only the burst counts.
const BURST_4: Rule = Rule::new(1, Duration::from_secs(60), 4);

struct Cluster {
    config: Config,
    cache: Option<gochat_cache::Cache>,
    proxy: Option<TcpProxy>,
}

impl Cluster {
    async fn limiter(&self, config: Config, coord: Option<gochat_coord::Coord>) -> RateLimiter {
        let mut options = Options::default();
        if let Some(cache) = &self.cache {
            options = options.cache(cache.clone());
        }
        if let Some(coord) = coord {
            options = options.coord(coord);
        }
        gochat_ratelimit::new(&Context::new(), config, options)
            .await
            .unwrap()
    }
}

fn base(backend: BackendKind) -> Config {
    let mut config = Config::for_env(Env::Development).rule("burst4", BURST_4);
    config.backend = backend;
    config.redis_retry = Duration::from_millis(200);
    config
}

async fn local(_fx: Fixture) -> Option<Cluster> {
    Some(Cluster {
        config: base(BackendKind::Local),
        cache: None,
        proxy: None,
    })
}

async fn redis(fx: Fixture) -> Option<Cluster> {
    let url = endpoint(Engine::Redis).await?;
    let proxy = TcpProxy::start(url.trim_start_matches("redis://"))
        .await
        .unwrap();
    let mut redis = RedisConfig::with_url(Env::Development, format!("redis://{}", proxy.addr()));
    redis.command_timeout = Duration::from_millis(300);
    redis.connect_timeout = Duration::from_millis(300);
    redis.reconnect_max_delay = Duration::from_millis(200);
    let mut cache = gochat_cache::Config::for_env(Env::Development);
    cache.key_prefix = format!("{}:", fx.prefix());
    cache.backend = CacheBackend::Redis(Box::new(redis));
    let cache = gochat_cache::new(&Context::new(), cache, Default::default())
        .await
        .unwrap();
    Some(Cluster {
        config: base(BackendKind::Redis),
        cache: Some(cache),
        proxy: Some(proxy),
    })
}

async fn rate_and_burst_are_honoured(cluster: Cluster, _fx: Fixture) {
    // 4 per second: a token every 250 ms (slow enough that a loaded machine makes the three
    // checks below within one interval), bursts of 3.
    let config = cluster
        .config
        .clone()
        .rule("fast", Rule::new(4, Duration::from_secs(1), 3));
    let limiter = cluster.limiter(config, None).await;
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let decision = limiter.allow("user:1", "fast").await.unwrap();
        assert!(decision.allowed);
        remaining.push(decision.remaining);
    }
    assert_eq!(remaining, [2, 1, 0]);
    let denied = limiter.allow("user:1", "fast").await.unwrap();
    assert!(!denied.allowed);
    let wait = denied.retry_after.unwrap();
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_millis(250),
        "{wait:?}"
    );
    assert!(
        limiter.allow("user:2", "fast").await.unwrap().allowed,
        "another key, another bucket"
    );

    sleep(wait + Duration::from_millis(5)).await;
    let again = limiter.allow("user:1", "fast").await.unwrap();
    assert!(again.allowed, "a token is back after retry_after");
    assert!(matches!(
        limiter.allow_n("user:3", "fast", 4).await,
        Err(Error::ExceedsBurst {
            asked: 4,
            burst: 3,
            ..
        })
    ));
    let batch = limiter.allow_n("user:3", "fast", 3).await.unwrap();
    assert!(batch.allowed && batch.remaining == 0);
    assert_eq!(limiter.stats().allowed, 6);
}

async fn unknown_rules_are_denied_or_defaulted(cluster: Cluster, _fx: Fixture) {
    let limiter = cluster.limiter(cluster.config.clone(), None).await;
    let denied = limiter.allow("user:1", "typo").await.unwrap();
    assert!(!denied.allowed && denied.retry_after.is_none());
    let mut config = cluster.config.clone();
    config.unknown_rule = UnknownRule::Default(Rule::new(1, Duration::from_secs(60), 2));
    let limiter = cluster.limiter(config, None).await;
    assert!(limiter.allow("user:1", "typo").await.unwrap().allowed);
    assert!(limiter.allow("user:1", "typo").await.unwrap().allowed);
    assert!(!limiter.allow("user:1", "typo").await.unwrap().allowed);
    assert_eq!(limiter.stats().unknown_rule, 3);
}

async fn a_rule_from_coord_is_hot_reloaded(cluster: Cluster, fx: Fixture) {
    let mut coord_config = gochat_coord::Config::for_env(Env::Development);
    coord_config.backend = gochat_coord::Backend::Memory(MemoryConfig::named(fx.prefix()));
    let coord = gochat_coord::new(&Context::new(), coord_config, Default::default())
        .await
        .unwrap();
    let mut config = cluster.config.clone();
    config.coord_service = Some("im-gateway".to_owned());
    let limiter = cluster.limiter(config, Some(coord.clone())).await;
    let scope = coord.config().scope("im-gateway", "ratelimit").unwrap();

    scope
        .put("burst4", &Rule::new(1, Duration::from_secs(60), 1))
        .await
        .unwrap();
    timeout(PATIENCE, async {
        while limiter.rule("burst4").map(|r| r.burst) != Some(1) {
            sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the new rule arrives");
    assert!(limiter.allow("user:1", "burst4").await.unwrap().allowed);
    assert!(
        !limiter.allow("user:1", "burst4").await.unwrap().allowed,
        "burst 1 now"
    );

    scope.delete("burst4").await.unwrap();
    timeout(PATIENCE, async {
        while limiter.rule("burst4") != Some(BURST_4) {
            sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("deleting it restores the configured rule");
    assert!(limiter.allow("user:9", "burst4").await.unwrap().allowed);
}

async fn a_redis_outage_falls_back_locally_and_recovers(cluster: Cluster, _fx: Fixture) {
    let mut config = cluster.config.clone();
    config.instances = 2;
    let limiter = cluster.limiter(config, None).await;
    let first = limiter.allow("user:1", "burst4").await.unwrap();
    assert!(first.allowed && first.remaining == 3);
    let Some(proxy) = &cluster.proxy else {
        assert!(
            first.local,
            "the local backend decides locally, whatever happens to Redis"
        );
        return;
    };
    assert!(!first.local, "decided by Redis");
    assert_eq!(
        limiter.allow("user:1", "burst4").await.unwrap().remaining,
        2
    );

    proxy.cut();
    // This instance's share of burst 4 over 2 instances: 2.
    let fallback: Vec<_> = [
        limiter.allow("user:1", "burst4").await.unwrap(),
        limiter.allow("user:1", "burst4").await.unwrap(),
        limiter.allow("user:1", "burst4").await.unwrap(),
    ]
    .iter()
    .map(|d| (d.local, d.allowed))
    .collect();
    assert_eq!(fallback, [(true, true), (true, true), (true, false)]);
    assert!(limiter.stats().fallback >= 3);

    proxy.restore();
    let back = timeout(PATIENCE, async {
        loop {
            let decision = limiter.allow("user:2", "burst4").await.unwrap();
            if !decision.local {
                return decision;
            }
            sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("Redis decides again once it answers");
    assert!(back.allowed);
    let shared = limiter.allow("user:1", "burst4").await.unwrap();
    assert_eq!(
        (shared.local, shared.remaining),
        (false, 1),
        "Redis kept user:1's bucket"
    );
}

behaviour_suite! {
    backends: [local, redis],
    cases: [
        rate_and_burst_are_honoured,
        unknown_rules_are_denied_or_defaulted,
        a_rule_from_coord_is_hot_reloaded,
        a_redis_outage_falls_back_locally_and_recovers,
    ],
}
