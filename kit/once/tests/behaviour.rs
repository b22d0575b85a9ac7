//! The once behaviour suite, on a memory cache and on Redis.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use gochat_cache::{Backend, MemoryConfig, RedisConfig};
use gochat_core::{Context, Env};
use gochat_once::{Config, Error, Once, Options, Outcome};
use gochat_testkit::{Engine, Fixture, behaviour_suite, endpoint};
use tokio::time::{sleep, timeout};

const PATIENCE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

#[derive(Clone)]
struct Cluster {
    cache: gochat_cache::Config,
}

impl Cluster {
    /// A separate provider (its own cache connection), as another process would have.
    async fn once(&self) -> Once {
        let cache = gochat_cache::new(&Context::new(), self.cache.clone(), Default::default())
            .await
            .unwrap();
        gochat_once::new(
            &Context::new(),
            Config::for_env(Env::Development),
            Options::default().cache(cache),
        )
        .await
        .unwrap()
    }
}

fn cluster(fx: &Fixture, backend: Backend) -> Cluster {
    let mut cache = gochat_cache::Config::for_env(Env::Development);
    cache.key_prefix = format!("{}:", fx.prefix());
    cache.backend = backend;
    Cluster { cache }
}

async fn memory(fx: Fixture) -> Option<Cluster> {
    Some(cluster(
        &fx,
        Backend::Memory(MemoryConfig::named(fx.prefix())),
    ))
}

async fn redis(fx: Fixture) -> Option<Cluster> {
    let url = endpoint(Engine::Redis).await?;
    Some(cluster(
        &fx,
        Backend::Redis(Box::new(RedisConfig::with_url(Env::Development, url))),
    ))
}

async fn a_hundred_concurrent_callers_run_it_once(cluster: Cluster, _fx: Fixture) {
    let (a, b) = (cluster.once().await, cluster.once().await);
    let runs = Arc::new(AtomicUsize::new(0));
    let mut callers = Vec::new();
    for n in 0..100 {
        let once = if n % 2 == 0 { a.clone() } else { b.clone() };
        let runs = runs.clone();
        callers.push(tokio::spawn(async move {
            once.do_once("job", HOUR, || async move {
                runs.fetch_add(1, Ordering::SeqCst);
                sleep(Duration::from_millis(50)).await;
                Ok::<_, String>(())
            })
            .await
            .unwrap()
        }));
    }
    let mut ran = 0;
    for caller in callers {
        if timeout(PATIENCE, caller).await.unwrap().unwrap() == Outcome::Ran {
            ran += 1;
        }
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "one execution across two providers"
    );
    assert_eq!(ran, 1, "exactly one caller reports having run it");
}

async fn a_failure_releases_the_key(cluster: Cluster, _fx: Fixture) {
    let once = cluster.once().await;
    let err = once
        .do_once("flaky", HOUR, || async { Err::<(), _>("boom") })
        .await
        .unwrap_err();
    assert_eq!(err.operation(), Some(&"boom"));
    assert!(matches!(err, Error::Operation(_)));
    let outcome = once
        .do_once("flaky", HOUR, || async { Ok::<_, String>(()) })
        .await
        .unwrap();
    assert_eq!(
        outcome,
        Outcome::Ran,
        "the failed run did not poison the key"
    );
    let again = once
        .do_once("flaky", HOUR, || async { Ok::<_, String>(()) })
        .await
        .unwrap();
    assert_eq!(again, Outcome::AlreadyDone);
}

async fn execute_returns_the_cached_result(cluster: Cluster, _fx: Fixture) {
    let (a, b) = (cluster.once().await, cluster.once().await);
    let runs = AtomicUsize::new(0);
    let first: (u64, String) = a
        .execute("ack", HOUR, || async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>((42, "stored".to_owned()))
        })
        .await
        .unwrap();
    let second: (u64, String) = b
        .execute("ack", HOUR, || async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>((43, "again".to_owned()))
        })
        .await
        .unwrap();
    assert_eq!(first, second);
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    let wrong_type = b
        .execute::<Vec<u8>, _, _, String>("ack", HOUR, || async { Ok(vec![]) })
        .await;
    assert!(
        matches!(wrong_type, Err(Error::Decode { .. })),
        "{wrong_type:?}"
    );

    a.forget("ack").await.unwrap();
    let after: (u64, String) = a
        .execute("ack", HOUR, || async {
            Ok::<_, String>((44, "new".to_owned()))
        })
        .await
        .unwrap();
    assert_eq!(after.0, 44, "forgotten keys run again");
}

async fn a_result_expires_after_its_ttl(cluster: Cluster, _fx: Fixture) {
    let once = cluster.once().await;
    let ok = || async { Ok::<_, String>(()) };
    assert_eq!(
        once.do_once("short", Duration::from_millis(200), ok)
            .await
            .unwrap(),
        Outcome::Ran
    );
    sleep(Duration::from_millis(500)).await;
    assert_eq!(
        once.do_once("short", Duration::from_millis(200), ok)
            .await
            .unwrap(),
        Outcome::Ran
    );
    assert!(matches!(
        once.do_once("zero", Duration::ZERO, ok).await,
        Err(Error::InvalidArgument(_))
    ));
}

behaviour_suite! {
    backends: [memory, redis],
    cases: [
        a_hundred_concurrent_callers_run_it_once,
        a_failure_releases_the_key,
        execute_returns_the_cached_result,
        a_result_expires_after_its_ttl,
    ],
}
