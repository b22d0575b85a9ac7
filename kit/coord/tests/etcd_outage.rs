//! etcd goes away and comes back: registrations are re-created, watches resume (re-reading
//! the state when their revision was compacted meanwhile), and a lock whose lease ran out is
//! reported lost. The provider under test reaches etcd through a proxy the test cuts.

use std::{sync::OnceLock, time::Duration};

use gochat_coord::{
    Backend, Config, ConfigEvent, Coord, EtcdConfig, Instance, Options, RegistryEvent, WatchStream,
};
use gochat_core::{Context, Env};
use gochat_testkit::{Engine, Fixture, TcpProxy, block_on, endpoint};
use tokio::time::timeout;

const PATIENCE: Duration = Duration::from_secs(60);

/// Everything coord logs in this test binary, as JSON lines.
fn logs() -> gochat_clog::MemoryWriter {
    static LOGS: OnceLock<gochat_clog::MemoryWriter> = OnceLock::new();
    LOGS.get_or_init(|| {
        let out = gochat_clog::MemoryWriter::new();
        let config = gochat_clog::Config::for_env(Env::Production);
        gochat_clog::init(config, gochat_clog::Options::default().writer(out.clone())).unwrap();
        out
    })
    .clone()
}

async fn provider(fx: &Fixture, endpoints: &str) -> Coord {
    let mut config = Config::for_env(Env::Development);
    config.root = fx.prefix().trim_end_matches('_').to_owned();
    let mut etcd = EtcdConfig::with_endpoints(Env::Development, endpoints);
    etcd.request_timeout = Duration::from_secs(1);
    etcd.dial_timeout = Duration::from_secs(1);
    config.backend = Backend::Etcd(Box::new(etcd));
    gochat_coord::new(&Context::new(), config, Options::default())
        .await
        .unwrap()
}

/// Two providers on one etcd: `direct`, and `cut_off` behind a proxy the test cuts.
struct Setup {
    endpoints: String,
    proxy: TcpProxy,
    direct: Coord,
    cut_off: Coord,
}

async fn setup(case: &'static str) -> Option<Setup> {
    let endpoints = endpoint(Engine::Etcd).await?;
    let fx = Fixture::new(case, "etcd");
    let upstream = endpoints.split(',').next()?.trim_start_matches("http://");
    let proxy = TcpProxy::start(upstream).await.unwrap();
    let direct = provider(&fx, &endpoints).await;
    let cut_off = provider(&fx, &format!("http://{}", proxy.addr())).await;
    Some(Setup {
        endpoints,
        proxy,
        direct,
        cut_off,
    })
}

async fn next<T>(stream: &mut WatchStream<T>) -> T {
    timeout(PATIENCE, stream.next())
        .await
        .expect("an event in time")
        .expect("the watch is open")
}

#[test]
fn registrations_and_watches_recover_after_etcd_is_cut() {
    block_on(async {
        let logs = logs();
        let Some(Setup {
            endpoints,
            proxy,
            direct,
            cut_off,
        }) = setup("etcd_outage_recovery").await
        else {
            return;
        };

        let mut seen_by_direct = direct.registry().watch("svc").unwrap();
        let registration = cut_off
            .registry()
            .register(
                Instance::new("svc", "behind-proxy", "h:1"),
                Duration::from_secs(2),
            )
            .await
            .unwrap();
        assert!(
            matches!(next(&mut seen_by_direct).await, RegistryEvent::Added(i) if i.id == "behind-proxy")
        );

        let scope_direct = direct.config().scope("svc", "flags").unwrap();
        let scope_cut = cut_off.config().scope("svc", "flags").unwrap();
        scope_direct.put("before", &1).await.unwrap();
        let mut seen_by_cut = scope_cut.watch::<u32>().unwrap();
        assert_eq!(
            next(&mut seen_by_cut).await,
            ConfigEvent::Set {
                name: "before".into(),
                value: 1
            }
        );

        proxy.cut();
        // The lease cannot be renewed: etcd expires it and the instance disappears.
        assert!(
            matches!(next(&mut seen_by_direct).await, RegistryEvent::Removed { id } if id == "behind-proxy")
        );
        // Changes made meanwhile, then a compaction, so the resumed watch must re-read.
        scope_direct.put("during", &2).await.unwrap();
        scope_direct.delete("before").await.unwrap();
        compact_now(&endpoints).await;

        proxy.restore();
        assert!(
            matches!(next(&mut seen_by_direct).await, RegistryEvent::Added(i) if i.id == "behind-proxy"),
            "re-registered"
        );
        let mut after = vec![next(&mut seen_by_cut).await, next(&mut seen_by_cut).await];
        let stats = cut_off.stats();
        assert!(
            stats.lease_losses >= 1 && stats.watch_resumes + stats.watch_rereads >= 1,
            "the outage is counted: {stats:?}"
        );
        after.sort_by_key(|e| format!("{e:?}"));
        assert_eq!(
            after,
            [
                ConfigEvent::Deleted {
                    name: "before".into()
                },
                ConfigEvent::Set {
                    name: "during".into(),
                    value: 2
                }
            ]
        );
        let compacted = logs.json_lines().unwrap().into_iter().any(|line| {
            line["namespace"] == "coord"
                && line["message"] == "watch revision compacted; re-reading"
        });
        assert!(
            compacted,
            "the resumed watch found its revision compacted and re-read:\n{}",
            logs.contents()
        );
        timeout(PATIENCE, async {
            while !registration.is_registered() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("the registration reports itself registered again");
        registration.deregister().await;
        assert!(matches!(
            next(&mut seen_by_direct).await,
            RegistryEvent::Removed { .. }
        ));
        cut_off.close().await;
        direct.close().await;
    });
}

#[test]
fn a_lock_whose_lease_runs_out_is_reported_lost() {
    block_on(async {
        let Some(Setup {
            proxy,
            direct,
            cut_off,
            ..
        }) = setup("etcd_outage_lock").await
        else {
            return;
        };

        let guard = cut_off
            .lock()
            .acquire("leader", Duration::from_secs(2))
            .await
            .unwrap();
        let id = cut_off.instance_ids("worker", 8).await.unwrap();
        assert!(guard.is_held() && id.is_held());

        proxy.cut();
        timeout(PATIENCE, guard.lost())
            .await
            .expect("the holder learns the lock is lost");
        assert!(!guard.is_held());
        timeout(PATIENCE, id.lost())
            .await
            .expect("the holder learns the id is lost");
        assert!(!id.is_held());
        // The keep-alive task counts a loss when it gives up, a moment after the holder's own
        // clock said so.
        timeout(PATIENCE, async {
            while cut_off.stats().lease_losses < 2 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("both lost leases are counted");
        // Meanwhile someone else can take the lock once etcd has expired the lease.
        let taken = timeout(
            PATIENCE,
            direct.lock().acquire("leader", Duration::from_secs(5)),
        )
        .await
        .unwrap()
        .unwrap();
        assert!(taken.is_held());

        proxy.restore();
        assert!(
            !guard.is_held(),
            "a lost lock is never silently believed held again"
        );
        taken.release().await;
        cut_off.close().await;
        direct.close().await;
    });
}

/// Compacts etcd's history up to now, as an operator or etcd's auto-compaction would.
async fn compact_now(endpoints: &str) {
    let mut client = etcd_client::Client::connect(endpoints.split(',').collect::<Vec<_>>(), None)
        .await
        .unwrap();
    let revision = client
        .get("compaction-probe", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    client.compact(revision, None).await.unwrap();
}
