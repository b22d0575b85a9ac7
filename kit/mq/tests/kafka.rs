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

/// Waits (polling, up to 90 s) until `done` holds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..900 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not within 90 s: {what}");
}

fn sorted(mut partitions: Vec<gochat_mq::TopicPartition>) -> Vec<gochat_mq::TopicPartition> {
    partitions.sort_by_key(|p| (p.topic.clone(), p.partition));
    partitions
}

#[test]
fn a_static_member_restarted_takes_its_partitions_back() {
    block_on(async {
        let Some(brokers) = endpoint(Engine::Kafka).await else {
            return;
        };
        let fx = Fixture::new("static_member", "kafka");
        let (topic, group) = (fx.name("static"), fx.name("group"));
        let member = |name: &'static str| {
            let brokers = brokers.clone();
            let id = format!("{}-{name}", fx.prefix());
            async move {
                let mut kafka = KafkaConfig::with_brokers(Env::Development, &brokers);
                kafka.session_timeout = Duration::from_secs(45);
                let mut config = Config::for_env(Env::Development);
                config.backend = Backend::Kafka(Box::new(kafka));
                config.consumer.instance_id = Some(id);
                gochat_mq::new(&Context::new(), config, Options::default())
                    .await
                    .unwrap()
            }
        };
        // Each handled message as (member, partition, value).
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(&str, i32, String)>();
        let handler = |name: &'static str| {
            let tx = tx.clone();
            move |message: gochat_mq::Received| {
                let value = message.value_str().unwrap_or_default().to_owned();
                let sent = tx.send((name, message.partition, value));
                std::future::ready(sent.map_err(|e| e.to_string()))
            }
        };
        let a = member("a").await;
        a.admin().create_topic(&topic, 4).await.unwrap();
        let first = a
            .consumer(&group)
            .subscribe(&[&topic], handler("a"))
            .await
            .unwrap();
        until("a owns every partition", || first.assignment().len() == 4).await;
        let b = member("b").await;
        let other = b
            .consumer(&group)
            .subscribe(&[&topic], handler("b"))
            .await
            .unwrap();
        until("a and b share the partitions", || {
            let (x, y) = (first.assignment().len(), other.assignment().len());
            x > 0 && y > 0 && x + y == 4
        })
        .await;
        let (owned_by_a, owned_by_b) = (sorted(first.assignment()), sorted(other.assignment()));
        let of_a: std::collections::BTreeSet<i32> =
            owned_by_a.iter().map(|p| p.partition).collect();

        // A static member leaves no gap on shutdown: the group keeps its partitions for it.
        first.shutdown().await;
        a.close().await;
        let mut for_b = 0;
        for n in 0..40 {
            let delivery = b
                .producer()
                .send(Message::new(topic.as_str(), format!("m{n}")).key(format!("k{n}")))
                .await
                .unwrap();
            if !of_a.contains(&delivery.partition) {
                for_b += 1;
            }
        }
        assert!(
            for_b > 0 && for_b < 40,
            "40 keys land on both members' partitions"
        );
        // While a is away, b handles its own partitions' messages and none of a's.
        let mut seen = std::collections::BTreeSet::new();
        while seen.len() < for_b {
            let (who, partition, value) = tokio::time::timeout(Duration::from_secs(90), rx.recv())
                .await
                .expect("b's messages within 90 s")
                .unwrap();
            assert_eq!(who, "b");
            assert!(
                !of_a.contains(&partition),
                "{value} of a's partition {partition} taken by b"
            );
            seen.insert(value);
        }

        let again = member("a").await;
        let second = again
            .consumer(&group)
            .subscribe(&[&topic], handler("a"))
            .await
            .unwrap();
        until("the restarted member owns partitions", || {
            !second.assignment().is_empty()
        })
        .await;
        assert_eq!(
            sorted(second.assignment()),
            owned_by_a,
            "the same partitions"
        );
        assert_eq!(sorted(other.assignment()), owned_by_b, "b kept its own");
        while seen.len() < 40 {
            let (who, partition, value) = tokio::time::timeout(Duration::from_secs(90), rx.recv())
                .await
                .expect("every message within 90 s")
                .unwrap();
            if of_a.contains(&partition) {
                assert_eq!(who, "a", "{value}: a's partitions are a's again");
            }
            seen.insert(value);
        }
        second.shutdown().await;
        other.shutdown().await;
        again.close().await;
        b.close().await;
    });
}
