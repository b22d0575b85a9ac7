//! The coord behaviour suite: every case once per backend (`…::memory`, `…::etcd`).

use std::{
    collections::BTreeSet,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use gochat_coord::{
    Backend, Config, ConfigEvent, Coord, Error, EtcdConfig, Instance, MemoryConfig, Options,
    RegistryEvent, WatchStream,
};
use gochat_core::{Context, Env};
use gochat_testkit::{Engine, Fixture, behaviour_suite, endpoint};
use serde::{Deserialize, Serialize};
use tokio::time::timeout;

/// Bounds that stop a hang; never a speed assertion.
const PATIENCE: Duration = Duration::from_secs(60);

/// Makes providers on one backend (cases that need two processes make two).
#[derive(Clone)]
struct Cluster {
    config: Config,
    ctx: Context,
}

impl Cluster {
    async fn provider(&self) -> Coord {
        gochat_coord::new(&self.ctx, self.config.clone(), Options::default())
            .await
            .expect("a provider on a running backend")
    }
}

fn config(fx: &Fixture, backend: Backend) -> Config {
    let mut config = Config::for_env(Env::Development);
    config.root = fx.prefix().trim_end_matches('_').to_owned();
    config.backend = backend;
    config
}

async fn memory(fx: Fixture) -> Option<Cluster> {
    let backend = Backend::Memory(MemoryConfig::named(fx.prefix()));
    Some(Cluster {
        config: config(&fx, backend),
        ctx: Context::new(),
    })
}

async fn etcd(fx: Fixture) -> Option<Cluster> {
    let endpoints = endpoint(Engine::Etcd).await?;
    let backend = Backend::Etcd(Box::new(EtcdConfig::with_endpoints(
        Env::Development,
        &endpoints,
    )));
    Some(Cluster {
        config: config(&fx, backend),
        ctx: Context::new(),
    })
}

async fn next<T>(stream: &mut WatchStream<T>) -> T {
    timeout(PATIENCE, stream.next())
        .await
        .expect("an event in time")
        .expect("the watch is open")
}

async fn register_discover_deregister(cluster: Cluster, _fx: Fixture) {
    let coord = cluster.provider().await;
    let registry = coord.registry();
    let ttl = Duration::from_secs(10);
    let a = registry
        .register(Instance::new("im-repo", "a", "127.0.0.1:7001"), ttl)
        .await
        .unwrap();
    let _b = registry
        .register(
            Instance::new("im-repo", "b", "127.0.0.1:7002").with_metadata("zone", "z1"),
            ttl,
        )
        .await
        .unwrap();
    assert!(a.is_registered());
    let mut found = registry.discover("im-repo").await.unwrap();
    found.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(found.len(), 2);
    assert_eq!(found[1].metadata["zone"], "z1");
    assert!(registry.discover("im-other").await.unwrap().is_empty());

    a.deregister().await;
    let left = registry.discover("im-repo").await.unwrap();
    assert_eq!(
        left.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        ["b"]
    );
    coord.close().await;
}

async fn watch_sees_add_update_remove(cluster: Cluster, _fx: Fixture) {
    let coord = cluster.provider().await;
    let registry = coord.registry();
    let ttl = Duration::from_secs(10);
    let _before = registry
        .register(Instance::new("svc", "first", "h:1"), ttl)
        .await
        .unwrap();
    let mut events = registry.watch("svc").unwrap();
    assert!(matches!(next(&mut events).await, RegistryEvent::Added(i) if i.id == "first"));

    let second = registry
        .register(Instance::new("svc", "second", "h:2"), ttl)
        .await
        .unwrap();
    assert!(matches!(next(&mut events).await, RegistryEvent::Added(i) if i.id == "second"));
    let again = registry
        .register(Instance::new("svc", "second", "h:3"), ttl)
        .await
        .unwrap();
    assert!(matches!(next(&mut events).await, RegistryEvent::Updated(i) if i.addr == "h:3"));
    drop(second);
    again.deregister().await;
    assert!(matches!(next(&mut events).await, RegistryEvent::Removed { id } if id == "second"));
    coord.close().await;
}

/// A process that dies without deregistering: its instance disappears when the lease expires.
async fn lease_expiry_removes_a_crashed_instance(cluster: Cluster, _fx: Fixture) {
    let observer = cluster.provider().await;
    let mut events = observer.registry().watch("crashy").unwrap();

    let config = cluster.config.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let coord = gochat_coord::new(&Context::new(), config, Options::default())
                .await
                .unwrap();
            let registration = coord
                .registry()
                .register(
                    Instance::new("crashy", "doomed", "h:1"),
                    Duration::from_secs(2),
                )
                .await
                .unwrap();
            std::mem::forget(registration);
        });
        // Dropping the runtime kills its tasks mid-flight: no keep-alive, no revoke.
        runtime.shutdown_background();
    })
    .join()
    .unwrap();

    assert!(matches!(next(&mut events).await, RegistryEvent::Added(i) if i.id == "doomed"));
    assert!(matches!(next(&mut events).await, RegistryEvent::Removed { id } if id == "doomed"));
    assert!(
        observer
            .registry()
            .discover("crashy")
            .await
            .unwrap()
            .is_empty()
    );
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Limits {
    per_second: u32,
}

async fn config_values_round_trip(cluster: Cluster, _fx: Fixture) {
    let coord = cluster.provider().await;
    let scope = coord.config().scope("im-logic", "ratelimit").unwrap();
    assert_eq!(scope.get::<Limits>("send").await.unwrap(), None);
    scope.put("send", &Limits { per_second: 5 }).await.unwrap();
    scope.put("login", &Limits { per_second: 1 }).await.unwrap();
    assert_eq!(
        scope.get("send").await.unwrap(),
        Some(Limits { per_second: 5 })
    );
    let names: Vec<String> = scope
        .list::<Limits>()
        .await
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["login", "send"]);

    scope.put("broken", &"not limits").await.unwrap();
    let err = scope.get::<Limits>("broken").await.unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err}");
    assert!(err.to_string().contains("broken"), "{err}");

    assert!(scope.delete("send").await.unwrap());
    assert!(!scope.delete("send").await.unwrap());
    assert_eq!(scope.get::<Limits>("send").await.unwrap(), None);
    assert!(
        coord.config().scope("_registry", "x").is_err(),
        "system areas are reserved"
    );
    coord.close().await;
}

async fn config_watch_streams_typed_changes(cluster: Cluster, _fx: Fixture) {
    let coord = cluster.provider().await;
    let scope = coord.config().scope("im-task", "push").unwrap();
    scope.put("a", &Limits { per_second: 1 }).await.unwrap();
    let mut events = scope.watch::<Limits>().unwrap();
    assert_eq!(
        next(&mut events).await,
        ConfigEvent::Set {
            name: "a".into(),
            value: Limits { per_second: 1 }
        }
    );
    scope.put("b", &"garbage").await.unwrap();
    assert!(matches!(next(&mut events).await, ConfigEvent::Invalid { name, .. } if name == "b"));
    scope.delete("a").await.unwrap();
    assert_eq!(
        next(&mut events).await,
        ConfigEvent::Deleted { name: "a".into() }
    );
    coord.close().await;
}

async fn watched_hot_reloads_and_rejects_bad_updates(cluster: Cluster, _fx: Fixture) {
    let coord = cluster.provider().await;
    let scope = coord.config().scope("im-gateway", "ratelimit").unwrap();
    scope.put("send", &Limits { per_second: 10 }).await.unwrap();
    let validate = |l: &Limits| {
        if l.per_second == 0 {
            Err("must be above zero".to_owned())
        } else {
            Ok(())
        }
    };
    let mut limits = scope
        .watched("send", Limits { per_second: 1 }, validate)
        .await
        .unwrap();
    assert_eq!(
        *limits.get(),
        Limits { per_second: 10 },
        "starts from the stored value"
    );

    scope.put("send", &Limits { per_second: 20 }).await.unwrap();
    assert_eq!(
        *timeout(PATIENCE, limits.changed()).await.unwrap(),
        Limits { per_second: 20 }
    );

    // Two bad updates (fails validation; wrong type), then a good one: the first change seen
    // is the good one, and in between the value stayed.
    scope.put("send", &Limits { per_second: 0 }).await.unwrap();
    scope.put("send", &"not limits").await.unwrap();
    scope.put("send", &Limits { per_second: 30 }).await.unwrap();
    assert_eq!(
        *timeout(PATIENCE, limits.changed()).await.unwrap(),
        Limits { per_second: 30 }
    );

    scope.delete("send").await.unwrap();
    assert_eq!(
        *timeout(PATIENCE, limits.changed()).await.unwrap(),
        Limits { per_second: 1 },
        "deleted: default"
    );
    coord.close().await;
}

async fn locks_exclude_across_providers(cluster: Cluster, _fx: Fixture) {
    let (p1, p2) = (cluster.provider().await, cluster.provider().await);
    let inside = Arc::new(AtomicBool::new(false));
    let entries = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for coord in [p1.clone(), p2.clone(), p1.clone(), p2.clone()] {
        let (inside, entries) = (inside.clone(), entries.clone());
        workers.push(tokio::spawn(async move {
            for _ in 0..3 {
                let guard = coord
                    .lock()
                    .acquire("shared", Duration::from_secs(10))
                    .await
                    .unwrap();
                assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
                entries.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                assert!(guard.is_held());
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

async fn a_dropped_guard_releases_the_lock(cluster: Cluster, _fx: Fixture) {
    let (p1, p2) = (cluster.provider().await, cluster.provider().await);
    let guard = p1
        .lock()
        .acquire("job", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(guard.name(), "job");
    assert!(
        p2.lock()
            .try_acquire("job", Duration::from_secs(10))
            .await
            .unwrap()
            .is_none()
    );
    let waiter = tokio::spawn({
        let p2 = p2.clone();
        async move {
            p2.lock()
                .acquire("job", Duration::from_secs(10))
                .await
                .unwrap()
        }
    });
    drop(guard);
    let second = timeout(PATIENCE, waiter)
        .await
        .expect("released on drop")
        .unwrap();
    assert!(second.is_held());
    second.release().await;
    assert!(
        p1.lock()
            .try_acquire("job", Duration::from_secs(10))
            .await
            .unwrap()
            .is_some()
    );
    p1.close().await;
    p2.close().await;
}

async fn concurrent_allocators_get_unique_ids_reused_after_release(cluster: Cluster, _fx: Fixture) {
    let (p1, p2) = (cluster.provider().await, cluster.provider().await);
    let mut tasks = Vec::new();
    for n in 0..20 {
        let coord = if n % 2 == 0 { p1.clone() } else { p2.clone() };
        tasks.push(tokio::spawn(async move {
            coord.instance_ids("im-gateway", 64).await.unwrap()
        }));
    }
    let mut held = Vec::new();
    for task in tasks {
        held.push(timeout(PATIENCE, task).await.unwrap().unwrap());
    }
    let ids: BTreeSet<u32> = held.iter().map(gochat_coord::InstanceId::id).collect();
    assert_eq!(
        ids,
        (0..20).collect(),
        "unique, and the lowest free each time"
    );
    assert!(
        held.iter()
            .all(|h| h.is_held() && h.service() == "im-gateway")
    );

    let seven = held.iter().position(|h| h.id() == 7).unwrap();
    held.swap_remove(seven).release().await;
    assert_eq!(
        p2.instance_ids("im-gateway", 64).await.unwrap().id(),
        7,
        "a released id is reused"
    );

    let _only = p1.instance_ids("tiny", 1).await.unwrap();
    let full = p2.instance_ids("tiny", 1).await.unwrap_err();
    assert!(matches!(full, Error::NoFreeId { max: 1, .. }), "{full}");
    p1.close().await;
    p2.close().await;
}

async fn close_releases_everything_and_refuses_work(cluster: Cluster, _fx: Fixture) {
    let (p1, p2) = (cluster.provider().await, cluster.provider().await);
    let _lock = p1
        .lock()
        .acquire("held-at-close", Duration::from_secs(30))
        .await
        .unwrap();
    let _id = p1.instance_ids("closing", 4).await.unwrap();
    let _reg = p1
        .registry()
        .register(
            Instance::new("closing", "x", "h:1"),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert!(p1.health().await.status == gochat_core::HealthStatus::Up);
    p1.close().await;

    assert!(matches!(
        p1.registry().discover("closing").await,
        Err(Error::Closed)
    ));
    assert!(p1.health().await.status == gochat_core::HealthStatus::Down);
    assert!(p2.registry().discover("closing").await.unwrap().is_empty());
    assert_eq!(p2.instance_ids("closing", 4).await.unwrap().id(), 0);
    assert!(
        p2.lock()
            .try_acquire("held-at-close", Duration::from_secs(5))
            .await
            .unwrap()
            .is_some()
    );
    p2.close().await;
}

/// A process holding an instance id dies: the id frees once its lease expires.
async fn a_crashed_holders_id_frees_after_the_ttl(cluster: Cluster, _fx: Fixture) {
    let observer = cluster.provider().await;
    let config = cluster.config.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let coord = gochat_coord::new(&Context::new(), config, Options::default())
                .await
                .unwrap();
            std::mem::forget(coord.instance_ids("crashy", 1).await.unwrap());
        });
        runtime.shutdown_background();
    })
    .join()
    .unwrap();

    let taken = observer.instance_ids("crashy", 1).await.unwrap_err();
    assert!(
        matches!(taken, Error::NoFreeId { .. }),
        "held by the crashed process: {taken}"
    );
    let freed = timeout(PATIENCE, async {
        loop {
            match observer.instance_ids("crashy", 1).await {
                Ok(id) => return id,
                Err(Error::NoFreeId { .. }) => tokio::time::sleep(Duration::from_millis(200)).await,
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await
    .expect("the id frees after INSTANCE_ID_TTL");
    assert_eq!(freed.id(), 0);
    observer.close().await;
}

/// Cancelling the context a provider was built with stops its work and releases its leases.
async fn cancelling_the_context_releases_registrations(cluster: Cluster, _fx: Fixture) {
    let observer = cluster.provider().await;
    let ctx = Context::new();
    let coord = gochat_coord::new(&ctx, cluster.config.clone(), Options::default())
        .await
        .unwrap();
    let _registration = coord
        .registry()
        .register(
            Instance::new("cancelled", "i", "h:1"),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(
        observer
            .registry()
            .discover("cancelled")
            .await
            .unwrap()
            .len(),
        1
    );
    ctx.shutdown(PATIENCE).await.unwrap();
    assert!(
        observer
            .registry()
            .discover("cancelled")
            .await
            .unwrap()
            .is_empty(),
        "revoked at once, not after 30 s"
    );
    assert!(matches!(
        coord.registry().discover("cancelled").await,
        Err(Error::Closed)
    ));
    observer.close().await;
}

async fn bad_arguments_are_errors(cluster: Cluster, _fx: Fixture) {
    let coord = cluster.provider().await;
    let zero = coord.lock().acquire("x", Duration::ZERO).await.unwrap_err();
    assert!(matches!(zero, Error::InvalidArgument(_)), "{zero}");
    let bad_name = coord
        .lock()
        .try_acquire("a b", Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(bad_name, Error::InvalidArgument(_)), "{bad_name}");
    let no_addr = coord
        .registry()
        .register(Instance::new("svc", "i", ""), Duration::from_secs(1))
        .await;
    assert!(matches!(no_addr, Err(Error::InvalidArgument(_))));
    assert!(matches!(
        coord.instance_ids("svc", 0).await,
        Err(Error::InvalidArgument(_))
    ));
    coord.close().await;
}

async fn the_log_level_follows_the_config_centre(cluster: Cluster, _fx: Fixture) {
    let coord = cluster.provider().await;
    let out = gochat_clog::MemoryWriter::new();
    let log = gochat_clog::new(
        &Context::new(),
        gochat_clog::Config::for_env(Env::Production),
        gochat_clog::Options::default().writer(out.clone()),
    )
    .unwrap();
    assert_eq!(log.level().as_deref(), Some("info"));
    let scope = coord.config().scope("im-logic", "log").unwrap();
    scope.put(gochat_coord::LOG_LEVEL, &"warn").await.unwrap();
    let ctx = Context::new();
    scope.follow_log_level(&ctx, &log).unwrap();
    let level_becomes = async |want: &str| {
        let seen = timeout(PATIENCE, async {
            while log.level().as_deref() != Some(want) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(
            seen.is_ok(),
            "the level never became {want}: {:?}",
            log.level()
        );
    };
    level_becomes("warn").await;

    // A rejected level is skipped; the good one after it applies, and it really filters.
    scope.put(gochat_coord::LOG_LEVEL, &"infoo").await.unwrap();
    scope
        .put(gochat_coord::LOG_LEVEL, &"error,behaviour=debug")
        .await
        .unwrap();
    level_becomes("error,behaviour=debug").await;
    gochat_clog::debug!(log.namespace("x"), "shown");
    log.in_scope(|| tracing::warn!(target: "other", "hidden"));
    let lines = out.json_lines().unwrap();
    assert!(lines.iter().any(|l| l["message"] == "shown"), "{lines:?}");
    assert!(!lines.iter().any(|l| l["message"] == "hidden"), "{lines:?}");

    scope.delete(gochat_coord::LOG_LEVEL).await.unwrap();
    level_becomes("info").await;

    // A logger without level control is refused up front.
    assert!(matches!(
        scope.follow_log_level(&ctx, &gochat_clog::Logger::current()),
        Err(Error::InvalidArgument(_))
    ));
    ctx.cancel();
    coord.close().await;
}

behaviour_suite! {
    backends: [memory, etcd],
    cases: [
        register_discover_deregister,
        watch_sees_add_update_remove,
        lease_expiry_removes_a_crashed_instance,
        config_values_round_trip,
        config_watch_streams_typed_changes,
        watched_hot_reloads_and_rejects_bad_updates,
        locks_exclude_across_providers,
        a_dropped_guard_releases_the_lock,
        concurrent_allocators_get_unique_ids_reused_after_release,
        close_releases_everything_and_refuses_work,
        a_crashed_holders_id_frees_after_the_ttl,
        cancelling_the_context_releases_registrations,
        bad_arguments_are_errors,
        the_log_level_follows_the_config_centre,
    ],
}
