//! What only the Redis Streams backend has: partition leases that move on when a member goes
//! silent, and a lost server reported as an error, not a hang or a panic.

mod common;

use std::{collections::BTreeSet, time::Duration};

use gochat_core::{Context, Env};
use gochat_mq::{Backend, Config, Error, Message, Mq, Options, RedisConfig};
use gochat_testkit::{Engine, Fixture, TcpProxy, block_on, endpoint};

use common::{captured_log, collect, gated, take, until};

async fn redis(url: &str, fx: &Fixture, tune: impl FnOnce(&mut RedisConfig)) -> Result<Mq, Error> {
    redis_with(url, fx, tune, Options::default()).await
}

async fn redis_with(
    url: &str,
    fx: &Fixture,
    tune: impl FnOnce(&mut RedisConfig),
    options: Options,
) -> Result<Mq, Error> {
    let mut redis = RedisConfig::with_url(Env::Development, url);
    redis.prefix = format!("mq-test:{}", fx.prefix());
    tune(&mut redis);
    let mut config = Config::for_env(Env::Development);
    config.backend = Backend::Redis(redis);
    config.consumer.commit_interval = Duration::from_millis(100);
    gochat_mq::new(&Context::new(), config, options).await
}

fn quick(redis: &mut RedisConfig) {
    redis.session_timeout = Duration::from_millis(1500);
    redis.heartbeat_interval = Duration::from_millis(100);
    redis.command_timeout = Duration::from_millis(500);
}

#[test]
fn a_member_cut_off_from_redis_loses_its_partitions_to_another() {
    block_on(async {
        let Some(url) = endpoint(Engine::Redis).await else {
            return;
        };
        let fx = Fixture::new("cut_off", "redis");
        let (topic, group) = (fx.name("jobs"), fx.name("workers"));
        let proxy = TcpProxy::start(url.trim_start_matches("redis://"))
            .await
            .unwrap();
        let (log, out) = captured_log();
        let a = redis_with(
            &format!("redis://{}", proxy.addr()),
            &fx,
            quick,
            Options::default().logger(log),
        )
        .await
        .unwrap();
        let b = redis(&url, &fx, quick).await.unwrap();
        b.admin().create_topic(&topic, 2).await.unwrap();

        // Member A takes jobs and never finishes them, then loses Redis: its heartbeats stop.
        let (member_a, _gate, _handled) = gated(&a, &group, &topic).await;
        until("member A owns both partitions", || {
            member_a.assignment().len() == 2
        })
        .await;
        for i in 0..10 {
            let message = Message::new(topic.as_str(), format!("job{i}")).key(format!("k{i}"));
            b.producer().send(message).await.unwrap();
        }
        until("member A started a job", || member_a.stats().consumed > 0).await;
        proxy.cut();
        let lost = a
            .producer()
            .send(Message::new(topic.as_str(), "while cut off"))
            .await;
        assert!(
            matches!(lost, Err(Error::Timeout(_) | Error::Unavailable(_))),
            "{lost:?}"
        );

        // Member B gets every job once A's leases expire, A never having committed one.
        let (member_b, mut rx) = collect(&b, &group, &topic).await;
        let got = take(&mut rx, 10).await;
        let expected: BTreeSet<String> = (0..10).map(|i| format!("job{i}")).collect();
        let values: BTreeSet<String> = got
            .iter()
            .map(|m| m.value_str().unwrap().to_owned())
            .collect();
        assert_eq!(values, expected, "every job reached member B");
        until("member B owns both partitions", || {
            member_b.assignment().len() == 2
        })
        .await;
        until("member A knows it lost them", || {
            member_a.assignment().is_empty()
        })
        .await;
        let lines = out.json_lines().unwrap();
        assert!(
            lines.iter().any(|line| line["message"]
                .as_str()
                .is_some_and(|m| m.contains("leases lost"))),
            "A said why it stopped: {lines:?}"
        );

        // A comes back: it rejoins and gets its share, without taking B's committed work.
        proxy.restore();
        until("the partitions are shared again", || {
            member_a.assignment().len() == 1 && member_b.assignment().len() == 1
        })
        .await;
        member_b.shutdown().await;
        drop(member_a);
    });
}

#[test]
fn no_server_is_a_clear_error_not_a_hang() {
    block_on(async {
        let fx = Fixture::new("no_server", "redis");
        // Nothing listens on port 1.
        let err = redis("redis://127.0.0.1:1", &fx, |r| {
            r.command_timeout = Duration::from_secs(1);
        })
        .await
        .unwrap_err();
        assert!(matches!(err, Error::Unavailable(_)), "{err}");
        assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    });
}

#[test]
fn a_static_member_killed_and_restarted_takes_its_partitions_back_at_once() {
    block_on(async {
        let Some(url) = endpoint(Engine::Redis).await else {
            return;
        };
        let fx = Fixture::new("static_member", "redis");
        let (topic, group) = (fx.name("jobs"), fx.name("workers"));
        // Leases that outlive the test: only a member holding them under its own id gets them.
        let member = |url: String| {
            let mut redis = RedisConfig::with_url(Env::Development, &url);
            redis.prefix = format!("mq-test:{}", fx.prefix());
            redis.session_timeout = Duration::from_secs(600);
            redis.heartbeat_interval = Duration::from_millis(100);
            redis.command_timeout = Duration::from_millis(500);
            let mut config = Config::for_env(Env::Development);
            config.backend = Backend::Redis(redis);
            config.consumer.instance_id = Some(format!("{}-a", fx.prefix()));
            async move {
                gochat_mq::new(&Context::new(), config, Options::default())
                    .await
                    .unwrap()
            }
        };
        let proxy = TcpProxy::start(url.trim_start_matches("redis://"))
            .await
            .unwrap();
        let first = member(format!("redis://{}", proxy.addr())).await;
        first.admin().create_topic(&topic, 2).await.unwrap();
        let (gone, _) = collect(&first, &group, &topic).await;
        until("the member owns both partitions", || {
            gone.assignment().len() == 2
        })
        .await;
        // Killed: cut off from Redis mid-session, never leaving or releasing its leases.
        proxy.cut();
        drop(gone);
        drop(first);

        let again = member(url.clone()).await;
        let (back, mut rx) = collect(&again, &group, &topic).await;
        until("the restarted member owns both partitions", || {
            back.assignment().len() == 2
        })
        .await;
        for i in 0..10 {
            let message = Message::new(topic.as_str(), format!("job{i}")).key(format!("k{i}"));
            again.producer().send(message).await.unwrap();
        }
        let values: BTreeSet<String> = take(&mut rx, 10)
            .await
            .iter()
            .map(|m| m.value_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            values.len(),
            10,
            "every job handled by the restarted member"
        );
        back.shutdown().await;
        again.close().await;
    });
}
