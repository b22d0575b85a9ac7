//! What only the Kafka backend has: librdkafka's errors named in our terms, and the
//! in-process broker placing keys where Kafka does.

use std::time::Duration;

use gochat_core::{Context, Env};
use gochat_mq::{Backend, Config, Error, KafkaConfig, MemoryConfig, Message, Mq, Options};
use gochat_testkit::{Engine, Fixture, block_on, endpoint};

async fn kafka(brokers: &str, tune: impl FnOnce(&mut KafkaConfig)) -> Result<Mq, Error> {
    let mut kafka = KafkaConfig::with_brokers(Env::Development, brokers);
    tune(&mut kafka);
    let mut config = Config::for_env(Env::Development);
    config.backend = Backend::Kafka(Box::new(kafka));
    gochat_mq::new(&Context::new(), config, Options::default()).await
}

#[test]
fn the_in_process_broker_places_keys_where_kafka_does() {
    block_on(async {
        let Some(brokers) = endpoint(Engine::Kafka).await else {
            return;
        };
        let fx = Fixture::new("places_keys", "kafka");
        let topic = fx.name("keys");
        let real = kafka(&brokers, |_| {}).await.unwrap();
        real.admin().create_topic(&topic, 6).await.unwrap();
        let mut memory = Config::for_env(Env::Development);
        memory.backend = Backend::Memory(MemoryConfig::named(fx.prefix()));
        let memory = gochat_mq::new(&Context::new(), memory, Options::default())
            .await
            .unwrap();
        memory.admin().create_topic(&topic, 6).await.unwrap();

        let mut used = std::collections::BTreeSet::new();
        for n in 0..60 {
            let message = Message::new(topic.as_str(), "x").key(format!("user-{n}"));
            let on_kafka = real.producer().send(message.clone()).await.unwrap();
            let in_process = memory.producer().send(message).await.unwrap();
            assert_eq!(on_kafka.partition, in_process.partition, "user-{n}");
            used.insert(on_kafka.partition);
        }
        assert_eq!(used.len(), 6, "60 keys spread over every partition");
    });
}

#[test]
fn no_broker_is_a_clear_error_not_a_hang() {
    block_on(async {
        // Nothing listens on port 1.
        let err = kafka("127.0.0.1:1", |k| {
            k.request_timeout = Duration::from_secs(1);
        })
        .await
        .unwrap_err();
        assert!(matches!(err, Error::Unavailable(_)), "{err}");
        assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    });
}

#[test]
fn an_unknown_librdkafka_property_is_a_config_error() {
    block_on(async {
        let err = kafka("127.0.0.1:9092", |k| {
            k.properties.insert("no.such.property".into(), "1".into());
        })
        .await
        .unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
        assert!(err.to_string().contains("no.such.property"), "{err}");
    });
}

#[test]
fn the_production_settings_deliver_and_read_back() {
    block_on(async {
        let Some(brokers) = endpoint(Engine::Kafka).await else {
            return;
        };
        let fx = Fixture::new("production_settings", "kafka");
        let topic = fx.name("prod");
        let mut kafka = KafkaConfig::with_brokers(Env::Production, &brokers);
        // One broker here; production clusters keep the default of 3.
        kafka.replication_factor = 1;
        assert_eq!(
            (kafka.acks, kafka.idempotence, kafka.compression),
            (gochat_mq::Acks::All, true, gochat_mq::Compression::Lz4)
        );
        let mut config = Config::for_env(Env::Production);
        config.backend = Backend::Kafka(Box::new(kafka));
        let mq = gochat_mq::new(&Context::new(), config, Options::default())
            .await
            .unwrap();
        mq.admin().create_topic(&topic, 2).await.unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let subscription = mq
            .consumer(&fx.name("group"))
            .subscribe(&[&topic], move |message: gochat_mq::Received| {
                let sent = tx.send(message.value_str().unwrap_or_default().to_owned());
                std::future::ready(sent.map_err(|e| e.to_string()))
            })
            .await
            .unwrap();
        let text = "compressible ".repeat(100);
        for _ in 0..5 {
            mq.producer()
                .send(Message::new(topic.as_str(), text.clone()).key("k"))
                .await
                .unwrap();
        }
        for _ in 0..5 {
            let got = tokio::time::timeout(Duration::from_secs(90), rx.recv())
                .await
                .expect("a message within 90 s")
                .unwrap();
            assert_eq!(got, text);
        }
        subscription.shutdown().await;
        mq.close().await;
    });
}
