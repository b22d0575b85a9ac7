//! Topic administration, on the in-process broker, the Kafka broker and Redis Streams.
//!
//! Its own test binary, so no consumer of this process fetches while a topic is deleted:
//! tansu 0.6 answers such a fetch with a topic id of zero and a leader hint, and librdkafka
//! 2.12 then dereferences a missing topic name and crashes the process (docs/testing.md).

use std::time::Duration;

use gochat_core::{Context, Env, Health};
use gochat_mq::{Backend, Config, Error, KafkaConfig, MemoryConfig, Mq, Options, RedisConfig};
use gochat_testkit::{Engine, Fixture, behaviour_suite, endpoint};
use tokio::time::{sleep, timeout};

const PATIENCE: Duration = Duration::from_secs(90);

async fn provider(backend: Backend) -> Mq {
    let mut config = Config::for_env(Env::Development);
    config.backend = backend;
    gochat_mq::new(&Context::new(), config, Options::default())
        .await
        .unwrap()
}

async fn memory(fx: Fixture) -> Option<Mq> {
    Some(provider(Backend::Memory(MemoryConfig::named(fx.prefix()))).await)
}

async fn kafka(_fx: Fixture) -> Option<Mq> {
    let brokers = endpoint(Engine::Kafka).await?;
    let kafka = KafkaConfig::with_brokers(Env::Development, &brokers);
    Some(provider(Backend::Kafka(Box::new(kafka))).await)
}

async fn redis(fx: Fixture) -> Option<Mq> {
    let url = endpoint(Engine::Redis).await?;
    let mut redis = RedisConfig::with_url(Env::Development, &url);
    redis.prefix = format!("mq-test:{}", fx.prefix());
    Some(provider(Backend::Redis(redis)).await)
}

async fn topics_are_administered(mq: Mq, fx: Fixture) {
    let admin = mq.admin();
    let topic = fx.name("admin");
    admin.create_topic(&topic, 3).await.unwrap();
    assert!(matches!(
        admin.create_topic(&topic, 3).await,
        Err(Error::TopicExists(_))
    ));
    assert!(!admin.ensure_topic(&topic, 3).await.unwrap());
    assert_eq!(admin.partitions(&topic).await.unwrap(), 3);
    let listed = admin.list_topics().await.unwrap();
    assert!(
        listed.iter().any(|t| t.name == topic && t.partitions == 3),
        "{listed:?}"
    );
    assert!(matches!(
        admin.create_topic("", 1).await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        admin.create_topic(&fx.name("none"), 0).await,
        Err(Error::InvalidArgument(_))
    ));
    admin.delete_topic(&topic).await.unwrap();
    until_gone(&mq, &topic).await;
    assert!(matches!(
        admin.partitions(&topic).await,
        Err(Error::UnknownTopic(_))
    ));
    assert_eq!(mq.health().await, Health::up());
}

async fn until_gone(mq: &Mq, topic: &str) {
    timeout(PATIENCE, async {
        while mq.admin().partitions(topic).await.is_ok() {
            sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("a deleted topic disappears");
}

behaviour_suite! {
    backends: [memory, kafka, redis],
    cases: [topics_are_administered],
}
