//! Snowflake and UUIDv7 generation, with static and leased worker ids.

use std::{collections::HashSet, sync::Arc};

use gochat_coord::{Backend, Coord, EtcdConfig, MemoryConfig};
use gochat_core::{Context, Env, HealthStatus};
use gochat_testkit::{Engine, Fixture, behaviour_suite, endpoint};
use gochat_uid::{Config, Error, Options, SnowflakeId, Uid, Worker};

async fn static_uid(worker: u16) -> Uid {
    let mut config = Config::for_env(Env::Development);
    config.worker = Worker::Static(worker);
    gochat_uid::new(&Context::new(), config, Options::default())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snowflake_a_million_ids_from_four_threads_are_unique_and_rise_per_thread() {
    let uid = static_uid(3).await;
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let uid = uid.clone();
            std::thread::spawn(move || {
                let ids: Vec<SnowflakeId> =
                    (0..250_000).map(|_| uid.snowflake().unwrap()).collect();
                assert!(
                    ids.windows(2).all(|w| w[0] < w[1]),
                    "ids rise in the order one thread gets them"
                );
                ids
            })
        })
        .collect();
    let mut all = HashSet::with_capacity(1_000_000);
    for thread in threads {
        for id in thread.join().unwrap() {
            assert_eq!(id.decode().worker, 3);
            assert!(all.insert(id), "duplicate {id}");
        }
    }
    assert_eq!(all.len(), 1_000_000);
}

#[tokio::test]
async fn uuid_v7_ids_are_version_7_and_time_ordered() {
    let uid = static_uid(0).await;
    let ids: Vec<_> = (0..10_000).map(|_| uid.uuid()).collect();
    assert!(ids.iter().all(|u| u.get_version_num() == 7));
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "UUIDv7 from one process sort by time"
    );
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
}

#[tokio::test]
async fn snowflake_bad_configs_are_named() {
    let mut config = Config::for_env(Env::Development);
    config.worker = Worker::Static(1024);
    let err = gochat_uid::new(&Context::new(), config, Options::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("worker.static"), "{err}");

    let mut config = Config::for_env(Env::Production);
    config.worker = Worker::Leased {
        service: "svc".into(),
    };
    let err = gochat_uid::new(&Context::new(), config, Options::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Config(c) if c.field == "worker.leased"),
        "{err}"
    );
}

/// Providers leasing worker ids from one coord cluster.
#[derive(Clone)]
struct Cluster {
    coord_config: gochat_coord::Config,
    service: String,
}

impl Cluster {
    async fn uid(&self) -> (Uid, Coord) {
        let coord = gochat_coord::new(
            &Context::new(),
            self.coord_config.clone(),
            Default::default(),
        )
        .await
        .unwrap();
        let mut config = Config::for_env(Env::Production);
        config.worker = Worker::Leased {
            service: self.service.clone(),
        };
        let uid = gochat_uid::new(
            &Context::new(),
            config,
            Options::default().coord(coord.clone()),
        )
        .await
        .unwrap();
        (uid, coord)
    }
}

fn cluster(fx: &Fixture, backend: Backend) -> Cluster {
    let mut coord_config = gochat_coord::Config::for_env(Env::Production);
    coord_config.root = fx.prefix().trim_end_matches('_').to_owned();
    coord_config.backend = backend;
    Cluster {
        coord_config,
        service: "im-logic".to_owned(),
    }
}

async fn memory(fx: Fixture) -> Option<Cluster> {
    Some(cluster(
        &fx,
        Backend::Memory(MemoryConfig::named(fx.prefix())),
    ))
}

async fn etcd(fx: Fixture) -> Option<Cluster> {
    let endpoints = endpoint(Engine::Etcd).await?;
    Some(cluster(
        &fx,
        Backend::Etcd(Box::new(EtcdConfig::with_endpoints(
            Env::Production,
            &endpoints,
        ))),
    ))
}

async fn snowflake_leased_workers_never_collide(cluster: Cluster, _fx: Fixture) {
    let (a, coord_a) = cluster.uid().await;
    let (b, coord_b) = cluster.uid().await;
    assert_ne!(a.worker_id(), b.worker_id(), "leased worker ids are unique");
    let make = |uid: Uid| {
        std::thread::spawn(move || {
            (0..100_000)
                .map(|_| uid.snowflake().unwrap())
                .collect::<Vec<_>>()
        })
    };
    let (ids_a, ids_b) = (make(a.clone()), make(b.clone()));
    let ids_a: HashSet<_> = ids_a.join().unwrap().into_iter().collect();
    let ids_b: Vec<_> = ids_b.join().unwrap();
    assert_eq!(ids_a.len(), 100_000);
    assert!(
        ids_b.iter().all(|id| !ids_a.contains(id)),
        "no id made by both workers"
    );
    a.close().await;
    b.close().await;
    coord_a.close().await;
    coord_b.close().await;
}

async fn snowflake_a_closed_generator_gives_its_worker_id_back(cluster: Cluster, _fx: Fixture) {
    let (a, coord_a) = cluster.uid().await;
    let worker = a.worker_id();
    assert_eq!(a.health().await.status, HealthStatus::Up);
    a.close().await;
    assert!(
        matches!(a.snowflake(), Err(Error::WorkerIdLost(w)) if w == worker),
        "no ids after close"
    );
    let (b, coord_b) = cluster.uid().await;
    assert_eq!(
        b.worker_id(),
        worker,
        "the lowest free id is the one given back"
    );
    let shared = Arc::new(b);
    assert!(shared.snowflake().is_ok());
    shared.close().await;
    coord_a.close().await;
    coord_b.close().await;
}

behaviour_suite! {
    backends: [memory, etcd],
    cases: [snowflake_leased_workers_never_collide, snowflake_a_closed_generator_gives_its_worker_id_back],
}
