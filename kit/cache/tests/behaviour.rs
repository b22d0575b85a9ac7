//! The cache behaviour suite: every case once per backend: in-process (`…::memory`), and Redis
//! standalone (`…::redis`), as a three-node cluster (`…::redis_cluster`) and through a
//! sentinel (`…::redis_sentinel`).

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use gochat_cache::{Backend, Cache, Config, Error, MemoryConfig, Options, RedisConfig, Reply, Ttl};
use gochat_core::{Context, Env};
use gochat_testkit::{Engine, Fixture, behaviour_suite, endpoint};
use tokio::time::{sleep, timeout};

const PATIENCE: Duration = Duration::from_secs(60);

/// Makes providers on one backend; every key is under the test's own prefix.
#[derive(Clone)]
struct Cluster {
    config: Config,
}

impl Cluster {
    async fn provider(&self) -> Cache {
        gochat_cache::new(&Context::new(), self.config.clone(), Options::default())
            .await
            .expect("a provider")
    }
}

fn cluster(fx: &Fixture, backend: Backend) -> Cluster {
    let mut config = Config::for_env(Env::Development);
    config.key_prefix = format!("{}:", fx.prefix());
    config.backend = backend;
    Cluster { config }
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

/// A cluster of three masters. The prefix is a hash tag (`{gct_…}:`), so every key of a case is
/// in one slot and multi-key commands (MGET, pipelines, scripts) work, as a cluster requires;
/// `a_cluster_spreads_keys_over_every_node` covers keys on every node.
async fn redis_cluster(fx: Fixture) -> Option<Cluster> {
    let url = endpoint(Engine::RedisCluster).await?;
    let mut cluster = cluster(
        &fx,
        Backend::Redis(Box::new(RedisConfig::with_url(Env::Development, url))),
    );
    cluster.config.key_prefix = format!("{{{}}}:", fx.prefix());
    Some(cluster)
}

/// The standalone Redis, found through its sentinel.
async fn redis_sentinel(fx: Fixture) -> Option<Cluster> {
    let url = endpoint(Engine::RedisSentinel).await?;
    Some(cluster(
        &fx,
        Backend::Redis(Box::new(RedisConfig::with_url(Env::Development, url))),
    ))
}

const MINUTE: Option<Duration> = Some(Duration::from_secs(60));

async fn strings_round_trip(cluster: Cluster, _fx: Fixture) {
    let cache = cluster.provider().await;
    let s = cache.string();
    assert_eq!(s.get("missing").await.unwrap(), None);
    s.set("k", "v1", MINUTE).await.unwrap();
    assert_eq!(s.get("k").await.unwrap().as_deref(), Some(&b"v1"[..]));
    assert!(!s.set_nx("k", "v2", MINUTE).await.unwrap());
    assert!(s.set_nx("fresh", "x", MINUTE).await.unwrap());
    assert_eq!(
        s.get_set("k", "v3").await.unwrap().as_deref(),
        Some(&b"v1"[..])
    );
    assert_eq!(s.get("k").await.unwrap().as_deref(), Some(&b"v3"[..]));

    assert_eq!(s.incr("n").await.unwrap(), 1);
    assert_eq!(s.incr_by("n", 10).await.unwrap(), 11);
    assert_eq!(s.decr_by("n", 4).await.unwrap(), 7);
    assert_eq!(s.decr("n").await.unwrap(), 6);
    let err = s.incr("k").await.unwrap_err();
    assert!(matches!(err, Error::NotAnInteger { .. }), "{err}");

    s.mset(&[("a", b"1"), ("b", b"2")]).await.unwrap();
    let got = s.mget(&["a", "nope", "b"]).await.unwrap();
    assert_eq!(got, [Some(b"1".to_vec()), None, Some(b"2".to_vec())]);

    s.set_json("json", &vec![1, 2, 3], None).await.unwrap();
    assert_eq!(
        s.get_json::<Vec<u32>>("json").await.unwrap(),
        Some(vec![1, 2, 3])
    );
    assert!(matches!(
        s.get_json::<Vec<u32>>("k").await,
        Err(Error::Serde { .. })
    ));

    cache.hash().hset("h", "f", "v").await.unwrap();
    let wrong = s.get("h").await.unwrap_err();
    assert!(
        matches!(wrong, Error::WrongType { ref key } if key.ends_with(":h")),
        "{wrong}"
    );
    assert!(matches!(
        s.set("k", "v", Some(Duration::ZERO)).await,
        Err(Error::InvalidArgument(_))
    ));
    cache.close().await;
}

async fn keys_expire_and_report_their_ttl(cluster: Cluster, _fx: Fixture) {
    let cache = cluster.provider().await;
    let (s, k) = (cache.string(), cache.keys());
    s.set("short", "x", Some(Duration::from_millis(300)))
        .await
        .unwrap();
    s.set("forever", "x", None).await.unwrap();
    assert!(
        matches!(k.ttl("short").await.unwrap(), Ttl::Expires(t) if t <= Duration::from_millis(300))
    );
    assert_eq!(k.ttl("forever").await.unwrap(), Ttl::Persistent);
    assert_eq!(k.ttl("nothing").await.unwrap(), Ttl::Missing);
    assert!(k.exists("short").await.unwrap());

    assert!(
        k.expire("forever", Duration::from_millis(200))
            .await
            .unwrap()
    );
    assert!(!k.expire("nothing", Duration::from_secs(1)).await.unwrap());
    sleep(Duration::from_millis(600)).await; // past both TTLs
    assert_eq!(s.get("short").await.unwrap(), None);
    assert!(!k.exists("forever").await.unwrap());

    s.set("a", "1", None).await.unwrap();
    s.set("b", "2", None).await.unwrap();
    assert_eq!(k.del(&["a", "b", "c"]).await.unwrap(), 2);
    assert_eq!(k.del(&[]).await.unwrap(), 0);
    cache.close().await;
}

async fn hashes_round_trip(cluster: Cluster, _fx: Fixture) {
    let cache = cluster.provider().await;
    let h = cache.hash();
    assert!(h.hset("user", "name", "ann").await.unwrap());
    assert!(
        !h.hset("user", "name", "anna").await.unwrap(),
        "an existing field is not new"
    );
    assert_eq!(
        h.hmset("user", &[("city", b"Oslo"), ("age", b"30")])
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        h.hget("user", "name").await.unwrap().as_deref(),
        Some(&b"anna"[..])
    );
    assert_eq!(h.hget("user", "nope").await.unwrap(), None);
    let all = h.hgetall("user").await.unwrap();
    let expected: HashMap<String, Vec<u8>> = [("name", "anna"), ("city", "Oslo"), ("age", "30")]
        .into_iter()
        .map(|(f, v)| (f.to_owned(), v.as_bytes().to_vec()))
        .collect();
    assert_eq!(all, expected);
    assert!(h.hexists("user", "city").await.unwrap());
    assert_eq!(h.hlen("user").await.unwrap(), 3);
    assert_eq!(h.hincrby("user", "age", 2).await.unwrap(), 32);
    assert_eq!(h.hincrby("user", "visits", 1).await.unwrap(), 1);
    assert_eq!(h.hdel("user", &["city", "nope"]).await.unwrap(), 1);
    assert!(h.hgetall("nobody").await.unwrap().is_empty());
    assert_eq!(h.hdel("user", &["name", "age", "visits"]).await.unwrap(), 3);
    assert!(
        !cache.keys().exists("user").await.unwrap(),
        "an emptied hash is gone"
    );
    cache.close().await;
}

async fn sets_round_trip(cluster: Cluster, _fx: Fixture) {
    let cache = cluster.provider().await;
    let s = cache.set();
    assert_eq!(
        s.sadd("online", &[b"ann", b"bob", b"ann"]).await.unwrap(),
        2
    );
    assert!(s.sismember("online", "bob").await.unwrap());
    assert!(!s.sismember("online", "eve").await.unwrap());
    assert_eq!(s.scard("online").await.unwrap(), 2);
    let mut members = s.smembers("online").await.unwrap();
    members.sort();
    assert_eq!(members, [b"ann".to_vec(), b"bob".to_vec()]);
    assert_eq!(s.srem("online", &[b"ann", b"eve"]).await.unwrap(), 1);
    assert_eq!(s.srem("online", &[b"bob"]).await.unwrap(), 1);
    assert!(s.smembers("online").await.unwrap().is_empty());
    assert!(!cache.keys().exists("online").await.unwrap());
    cache.close().await;
}

async fn sorted_sets_round_trip(cluster: Cluster, _fx: Fixture) {
    let cache = cluster.provider().await;
    let z = cache.zset();
    let members: [(f64, &[u8]); 4] = [(3.0, b"c"), (1.0, b"a"), (2.0, b"b"), (4.5, b"d")];
    assert_eq!(z.zadd("board", &members).await.unwrap(), 4);
    assert_eq!(
        z.zadd("board", &[(0.5, b"d")]).await.unwrap(),
        0,
        "an update is not new"
    );
    let names = |v: Vec<(Vec<u8>, f64)>| {
        v.into_iter()
            .map(|(m, _)| String::from_utf8(m).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(z.zrange("board", 0, -1).await.unwrap()),
        ["d", "a", "b", "c"]
    );
    assert_eq!(
        z.zrange("board", 0, 0).await.unwrap(),
        [(b"d".to_vec(), 0.5)]
    );
    assert_eq!(names(z.zrevrange("board", 0, 1).await.unwrap()), ["c", "b"]);
    assert_eq!(names(z.zrange("board", -2, -1).await.unwrap()), ["b", "c"]);
    assert!(z.zrange("board", 5, 9).await.unwrap().is_empty());
    assert_eq!(
        names(z.zrangebyscore("board", 1.0, 2.0).await.unwrap()),
        ["a", "b"]
    );
    assert_eq!(z.zcount("board", 1.0, 3.0).await.unwrap(), 3);
    assert_eq!(z.zscore("board", "b").await.unwrap(), Some(2.0));
    assert_eq!(z.zscore("board", "zz").await.unwrap(), None);
    assert_eq!(z.zcard("board").await.unwrap(), 4);
    assert_eq!(z.zrem("board", &[b"a", b"zz"]).await.unwrap(), 1);
    assert_eq!(
        z.zremrangebyrank("board", 0, 0).await.unwrap(),
        1,
        "drops the lowest (d)"
    );
    assert_eq!(names(z.zrange("board", 0, -1).await.unwrap()), ["b", "c"]);
    assert!(matches!(
        z.zadd("board", &[(f64::NAN, b"x")]).await,
        Err(Error::InvalidArgument(_))
    ));
    cache.close().await;
}

async fn pipelines_run_every_command_and_report_each(cluster: Cluster, _fx: Fixture) {
    let cache = cluster.provider().await;
    let replies = cache
        .pipeline()
        .set("p", "text", MINUTE)
        .incr_by("p", 1) // fails: not an integer
        .incr_by("count", 5)
        .hset("ph", "f", "v")
        .sadd("ps", "m")
        .zadd("pz", 1.0, "m")
        .expire("count", Duration::from_secs(60))
        .get("count")
        .del("ps")
        .exec()
        .await
        .unwrap();
    assert_eq!(replies.len(), 9);
    assert!(
        matches!(&replies[1], Err(Error::NotAnInteger { .. })),
        "{:?}",
        replies[1]
    );
    assert_eq!(replies[2].as_ref().unwrap(), &Reply::Int(5));
    assert_eq!(
        replies[7].as_ref().unwrap(),
        &Reply::Bytes(b"5".to_vec()),
        "later commands still ran"
    );
    assert_eq!(replies[8].as_ref().unwrap(), &Reply::Int(1));
    assert!(cache.pipeline().exec().await.unwrap().is_empty());
    cache.close().await;
}

async fn scripts_run_on_redis_only(cluster: Cluster, _fx: Fixture) {
    let cache = cluster.provider().await;
    let result = cache
        .eval(
            "return redis.call('INCRBY', KEYS[1], ARGV[1])",
            &["scripted"],
            &[b"7"],
        )
        .await;
    match cache.backend_name() {
        "redis" => {
            assert_eq!(result.unwrap(), Reply::Int(7));
            assert_eq!(
                cache.string().get("scripted").await.unwrap().as_deref(),
                Some(&b"7"[..])
            );
        }
        _ => assert!(
            matches!(result, Err(Error::Unsupported { .. })),
            "{result:?}"
        ),
    }
    cache.close().await;
}

async fn locks_exclude_across_providers(cluster: Cluster, _fx: Fixture) {
    let (p1, p2) = (cluster.provider().await, cluster.provider().await);
    let inside = Arc::new(AtomicBool::new(false));
    let entries = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for cache in [p1.clone(), p2.clone(), p1.clone(), p2.clone()] {
        let (inside, entries) = (inside.clone(), entries.clone());
        workers.push(tokio::spawn(async move {
            for _ in 0..3 {
                let guard = cache
                    .lock()
                    .acquire("shared", Duration::from_secs(5))
                    .await
                    .unwrap();
                assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
                entries.fetch_add(1, Ordering::SeqCst);
                sleep(Duration::from_millis(10)).await;
                inside.store(false, Ordering::SeqCst);
                guard.release().await;
            }
        }));
    }
    for worker in workers {
        timeout(PATIENCE, worker)
            .await
            .expect("no deadlock")
            .unwrap();
    }
    assert_eq!(entries.load(Ordering::SeqCst), 12);
    p1.close().await;
    p2.close().await;
}

async fn the_watchdog_keeps_a_lock_past_its_ttl_while_held(cluster: Cluster, _fx: Fixture) {
    let (p1, p2) = (cluster.provider().await, cluster.provider().await);
    let guard = p1
        .lock()
        .acquire("long-job", Duration::from_millis(1_500))
        .await
        .unwrap();
    sleep(Duration::from_secs(4)).await; // more than two TTLs; renewals every 500 ms
    assert!(guard.is_held());
    assert!(
        p2.lock()
            .try_acquire("long-job", Duration::from_secs(1))
            .await
            .unwrap()
            .is_none(),
        "still held"
    );
    guard.release().await;
    let next = p2
        .lock()
        .try_acquire("long-job", Duration::from_secs(1))
        .await
        .unwrap();
    assert!(
        next.is_some(),
        "released, and the watchdog stopped renewing"
    );
    p1.close().await;
    p2.close().await;
}

async fn a_lock_taken_over_is_lost_and_never_released_by_its_old_holder(
    cluster: Cluster,
    _fx: Fixture,
) {
    let (p1, p2) = (cluster.provider().await, cluster.provider().await);
    let old = p1
        .lock()
        .acquire("job", Duration::from_millis(600))
        .await
        .unwrap();
    // The key disappears as if it had expired during a long pause; p2 takes the lock.
    p1.keys().del(&["lock:job"]).await.unwrap();
    let new = p2
        .lock()
        .acquire("job", Duration::from_secs(10))
        .await
        .unwrap();
    timeout(PATIENCE, old.lost())
        .await
        .expect("the old holder learns it lost the lock");
    assert!(!old.is_held());
    old.release().await; // must not delete p2's lock
    assert!(new.is_held());
    assert!(
        p1.lock()
            .try_acquire("job", Duration::from_secs(1))
            .await
            .unwrap()
            .is_none(),
        "p2 still holds it"
    );
    new.release().await;
    p1.close().await;
    p2.close().await;
}

async fn cache_aside_loads_once_for_a_hundred_concurrent_misses(cluster: Cluster, _fx: Fixture) {
    let cache = cluster.provider().await;
    let loads = Arc::new(AtomicUsize::new(0));
    let mut calls = Vec::new();
    for _ in 0..100 {
        let (cache, loads) = (cache.clone(), loads.clone());
        calls.push(tokio::spawn(async move {
            cache
                .get_or_load("hot", Duration::from_secs(60), || async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    sleep(Duration::from_millis(50)).await; // a slow database
                    Ok::<_, std::io::Error>(Some(b"row".to_vec()))
                })
                .await
                .unwrap()
        }));
    }
    for call in calls {
        assert_eq!(
            timeout(PATIENCE, call).await.unwrap().unwrap().as_deref(),
            Some(&b"row"[..])
        );
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1, "single-flight: one load");
    let stats = cache.stats();
    assert_eq!(stats.loads, 1);
    assert_eq!(stats.hits + stats.misses, 100);
    cache.close().await;
}

async fn cache_aside_remembers_missing_rows_and_retries_failures(cluster: Cluster, _fx: Fixture) {
    let cache = cluster.provider().await;
    let loads = AtomicUsize::new(0);
    let missing = || async {
        loads.fetch_add(1, Ordering::SeqCst);
        Ok::<_, std::io::Error>(None)
    };
    assert_eq!(
        cache
            .get_or_load("ghost", Duration::from_secs(60), missing)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        cache
            .get_or_load("ghost", Duration::from_secs(60), missing)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        loads.load(Ordering::SeqCst),
        1,
        "the second lookup hit the negative cache"
    );

    let failing = || async { Err::<Option<Vec<u8>>, _>("database down") };
    let err = cache
        .get_or_load("flaky", Duration::from_secs(60), failing)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Load { reason, .. } if reason == "database down"),
        "{err}"
    );
    let ok = cache
        .get_or_load("flaky", Duration::from_secs(60), || async {
            Ok::<_, String>(Some(b"back".to_vec()))
        })
        .await
        .unwrap();
    assert_eq!(ok.as_deref(), Some(&b"back"[..]), "a failure is not cached");

    let typed: Option<Vec<String>> = cache
        .get_or_load_json("typed", Duration::from_secs(60), || async {
            Ok::<_, String>(Some(vec!["a".to_owned()]))
        })
        .await
        .unwrap();
    assert_eq!(typed, Some(vec!["a".to_owned()]));
    cache.close().await;
}

async fn cache_aside_never_caches_a_load_that_raced_an_invalidation(
    cluster: Cluster,
    _fx: Fixture,
) {
    // Two processes: one loads the old row slowly; the other writes and invalidates meanwhile.
    let (reader, writer) = (cluster.provider().await, cluster.provider().await);
    let (started, read_started) = tokio::sync::oneshot::channel();
    let (go, may_finish) = tokio::sync::oneshot::channel::<()>();
    let slow = {
        let reader = reader.clone();
        tokio::spawn(async move {
            reader
                .get_or_load("member:7", Duration::from_secs(600), || async move {
                    let _ = started.send(());
                    let _ = may_finish.await;
                    Ok::<_, std::io::Error>(Some(b"old row".to_vec()))
                })
                .await
                .unwrap()
        })
    };
    timeout(PATIENCE, read_started).await.unwrap().unwrap();
    writer.keys().del(&["member:7"]).await.unwrap();
    go.send(()).unwrap();
    let answered = timeout(PATIENCE, slow).await.unwrap().unwrap();
    assert_eq!(
        answered.as_deref(),
        Some(&b"old row"[..]),
        "its caller gets it"
    );
    let next = writer
        .get_or_load("member:7", Duration::from_secs(600), || async {
            Ok::<_, std::io::Error>(Some(b"new row".to_vec()))
        })
        .await
        .unwrap();
    assert_eq!(
        next.as_deref(),
        Some(&b"new row"[..]),
        "the raced load did not put the old row back"
    );
    // Without a race, the load is cached as before.
    let again = reader
        .get_or_load("member:7", Duration::from_secs(600), || async {
            Ok::<_, std::io::Error>(Some(b"not read".to_vec()))
        })
        .await
        .unwrap();
    assert_eq!(again.as_deref(), Some(&b"new row"[..]));
    reader.close().await;
    writer.close().await;
}

async fn close_releases_locks_and_refuses_work(cluster: Cluster, _fx: Fixture) {
    let (p1, p2) = (cluster.provider().await, cluster.provider().await);
    let _guard = p1
        .lock()
        .acquire("closing", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(p1.health().await.status, gochat_core::HealthStatus::Up);
    p1.close().await;
    assert!(matches!(p1.string().get("x").await, Err(Error::Closed)));
    assert!(
        p2.lock()
            .try_acquire("closing", Duration::from_secs(1))
            .await
            .unwrap()
            .is_some(),
        "released at close"
    );
    p2.close().await;
}

behaviour_suite! {
    backends: [memory, redis, redis_cluster, redis_sentinel],
    cases: [
        strings_round_trip,
        keys_expire_and_report_their_ttl,
        hashes_round_trip,
        sets_round_trip,
        sorted_sets_round_trip,
        pipelines_run_every_command_and_report_each,
        scripts_run_on_redis_only,
        locks_exclude_across_providers,
        the_watchdog_keeps_a_lock_past_its_ttl_while_held,
        a_lock_taken_over_is_lost_and_never_released_by_its_old_holder,
        cache_aside_loads_once_for_a_hundred_concurrent_misses,
        cache_aside_remembers_missing_rows_and_retries_failures,
        cache_aside_never_caches_a_load_that_raced_an_invalidation,
        close_releases_locks_and_refuses_work,
    ],
}

#[test]
fn a_cluster_spreads_keys_over_every_node() {
    gochat_testkit::block_on(async {
        let Some(url) = endpoint(Engine::RedisCluster).await else {
            return;
        };
        let fx = Fixture::new("cluster_spread", "redis_cluster");
        let cluster = cluster(
            &fx,
            Backend::Redis(Box::new(RedisConfig::with_url(Env::Development, url))),
        );
        let cache = cluster.provider().await;
        for n in 0..100 {
            cache
                .string()
                .set(&format!("k{n}"), n.to_string(), MINUTE)
                .await
                .unwrap();
        }
        for n in 0..100 {
            let value = cache.string().get(&format!("k{n}")).await.unwrap();
            assert_eq!(value, Some(n.to_string().into_bytes()), "k{n}");
        }
        // Count this test's keys on each node, through a plain connection to the node.
        let pattern = format!("{}*", cluster.config.key_prefix);
        for port in [7000, 7001, 7002] {
            let node = RedisConfig::with_url(Env::Development, format!("redis://127.0.0.1:{port}"));
            let mut config = Config::for_env(Env::Development);
            config.key_prefix = String::new();
            config.backend = Backend::Redis(Box::new(node));
            let node = gochat_cache::new(&Context::new(), config, Options::default())
                .await
                .unwrap();
            let count = node
                .eval(
                    "return #redis.call('KEYS', ARGV[1])",
                    &[],
                    &[pattern.as_bytes()],
                )
                .await
                .unwrap();
            let Reply::Int(count) = count else {
                panic!("KEYS count: {count:?}")
            };
            assert!(count > 10, "node {port} holds {count} of the 100 keys");
        }
    });
}
