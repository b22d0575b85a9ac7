//! The key layout as etcd sees it, read back with a raw etcd client: exactly
//! `/{root}/{env}/{service}/{component}/{name}` for config, never prefixed twice.

use std::time::Duration;

use gochat_coord::{Backend, Config, EtcdConfig, Instance, Options};
use gochat_core::{Context, Env};
use gochat_testkit::{Engine, Fixture, block_on, endpoint};

#[test]
fn keys_in_etcd_are_exactly_the_documented_layout() {
    block_on(async {
        let Some(endpoints) = endpoint(Engine::Etcd).await else {
            return;
        };
        let fx = Fixture::new("etcd_keys", "etcd");
        let root = fx.prefix().trim_end_matches('_').to_owned();
        let mut config = Config::for_env(Env::Production);
        config.root = root.clone();
        config.backend = Backend::Etcd(Box::new(EtcdConfig::with_endpoints(
            Env::Production,
            &endpoints,
        )));
        let coord = gochat_coord::new(&Context::new(), config, Options::default())
            .await
            .unwrap();

        coord
            .config()
            .scope("im-logic", "ratelimit")
            .unwrap()
            .put("rules", &serde_json::json!({"rps": 5}))
            .await
            .unwrap();
        let _registration = coord
            .registry()
            .register(
                Instance::new("im-repo", "repo-1", "10.0.0.1:9000"),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        let _lock = coord
            .lock()
            .acquire("jobs/nightly", Duration::from_secs(10))
            .await
            .unwrap();
        let _id = coord.instance_ids("im-gateway", 4).await.unwrap();

        let mut raw = etcd_client::Client::connect(endpoints.split(',').collect::<Vec<_>>(), None)
            .await
            .unwrap();
        let listed = raw
            .get(
                format!("/{root}/"),
                Some(etcd_client::GetOptions::new().with_prefix()),
            )
            .await
            .unwrap();
        let keys: Vec<String> = listed
            .kvs()
            .iter()
            .map(|kv| kv.key_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            keys,
            [
                format!("/{root}/production/_ids/im-gateway/0"),
                format!("/{root}/production/_locks/jobs/nightly"),
                format!("/{root}/production/_registry/im-repo/repo-1"),
                format!("/{root}/production/im-logic/ratelimit/rules"),
            ]
        );
        let rules = raw
            .get(format!("/{root}/production/im-logic/ratelimit/rules"), None)
            .await
            .unwrap();
        assert_eq!(rules.kvs()[0].value(), br#"{"rps":5}"#);
        coord.close().await;
    });
}
