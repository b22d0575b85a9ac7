//! The mq behaviour suite: every case on the in-process broker, on the Kafka broker and on
//! Redis Streams, both from `scripts/engines`.

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use gochat_core::{Context, Env};
use gochat_mq::{
    Backend, Config, Error, HandlerError, KafkaConfig, MemoryConfig, Message, Mq, Options,
    Permanent, Received, RedisConfig, dead_letter,
};
use gochat_testkit::{Engine, Fixture, behaviour_suite, endpoint};
use tokio::{
    sync::mpsc,
    time::{sleep, timeout},
};

use common::{PATIENCE, captured_log, collect, collect_with, collector, gated, take, until};

#[derive(Clone)]
struct Cluster {
    config: Config,
}

impl Cluster {
    /// A separate provider, as another process would have.
    async fn mq(&self) -> Mq {
        self.mq_with(Options::default()).await
    }

    /// A provider and a new topic of `partitions` partitions.
    async fn with_topic(&self, fx: &Fixture, name: &str, partitions: u32) -> (Mq, String) {
        let mq = self.mq().await;
        let topic = fx.name(name);
        mq.admin().create_topic(&topic, partitions).await.unwrap();
        (mq, topic)
    }

    async fn mq_with(&self, options: Options) -> Mq {
        gochat_mq::new(&Context::new(), self.config.clone(), options)
            .await
            .unwrap()
    }
}

fn cluster(backend: Backend) -> Cluster {
    let mut config = Config::for_env(Env::Development);
    config.backend = backend;
    config.consumer.retry_backoff = Duration::from_millis(20);
    config.consumer.retry_backoff_max = Duration::from_millis(100);
    config.consumer.commit_interval = Duration::from_millis(200);
    Cluster { config }
}

async fn memory(fx: Fixture) -> Option<Cluster> {
    Some(cluster(Backend::Memory(MemoryConfig::named(fx.prefix()))))
}

async fn kafka(_fx: Fixture) -> Option<Cluster> {
    let brokers = endpoint(Engine::Kafka).await?;
    let mut kafka = KafkaConfig::with_brokers(Env::Development, &brokers);
    // Seen with tansu 0.6: after a paused partition resumes, its fetch is held for the full
    // `fetch.wait.max.ms` (500 ms) although records are waiting; the pause case took 31 s.
    kafka
        .properties
        .insert("fetch.wait.max.ms".into(), "10".into());
    Some(cluster(Backend::Kafka(Box::new(kafka))))
}

async fn redis(fx: Fixture) -> Option<Cluster> {
    let url = endpoint(Engine::Redis).await?;
    let mut redis = RedisConfig::with_url(Env::Development, &url);
    // Keys of this run only.
    redis.prefix = format!("mq-test:{}", fx.prefix());
    Some(cluster(Backend::Redis(redis)))
}

fn values(messages: &[Received]) -> BTreeSet<String> {
    messages
        .iter()
        .map(|m| m.value_str().unwrap().to_owned())
        .collect()
}

async fn produce_then_consume(cluster: Cluster, fx: Fixture) {
    let (mq, topic) = cluster.with_topic(&fx, "events", 3).await;
    let (subscription, mut rx) = collect(&mq, &fx.name("group"), &topic).await;
    let producer = mq.producer();
    let mut deliveries = Vec::new();
    for i in 0..20 {
        let message = Message::new(topic.as_str(), format!("v{i}"))
            .key(format!("k{}", i % 5))
            .header("n", i.to_string());
        deliveries.push(producer.send(message).await.unwrap());
    }
    assert!(
        deliveries
            .iter()
            .all(|d| d.topic == topic && (0..3).contains(&d.partition))
    );
    let got = take(&mut rx, 20).await;
    let expected: BTreeSet<String> = (0..20).map(|i| format!("v{i}")).collect();
    assert_eq!(values(&got), expected);
    for message in &got {
        let i: usize = message.value_str().unwrap()[1..].parse().unwrap();
        assert_eq!(message.key_str(), Some(format!("k{}", i % 5).as_str()));
        assert_eq!(message.headers.get_str("n"), Some(i.to_string().as_str()));
        assert_eq!(message.attempt, 1);
        let sent = &deliveries[i];
        assert_eq!(
            (message.partition, message.offset),
            (sent.partition, sent.offset)
        );
    }
    until("the subscription counted 20", || {
        subscription.stats().consumed == 20
    })
    .await;
    assert_eq!(mq.stats().produced, 20);
    subscription.shutdown().await;
    mq.close().await;
    assert!(matches!(
        producer.send(Message::new(topic.as_str(), "late")).await,
        Err(Error::Closed)
    ));
}

async fn per_key_order_holds_across_a_thousand_messages(cluster: Cluster, fx: Fixture) {
    let (mq, topic) = cluster.with_topic(&fx, "ordered", 4).await;
    let producer = mq.producer();
    let mut pending = Vec::new();
    for i in 0..1000 {
        let key = format!("user-{}", i % 10);
        let message = Message::new(topic.as_str(), format!("{key}:{i}")).key(key);
        pending.push(producer.send_nowait(message).unwrap());
    }
    let deliveries = futures_util::future::try_join_all(pending).await.unwrap();
    let mut partition_of = BTreeMap::new();
    for (i, delivery) in deliveries.iter().enumerate() {
        let first = *partition_of.entry(i % 10).or_insert(delivery.partition);
        assert_eq!(first, delivery.partition, "one key, one partition");
    }

    let (subscription, mut rx) = collect(&mq, &fx.name("group"), &topic).await;
    let got = take(&mut rx, 1000).await;
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for message in &got {
        let (key, n) = message.value_str().unwrap().split_once(':').unwrap();
        let n: i64 = n.parse().unwrap();
        let previous = last.insert(key.to_owned(), n).unwrap_or(-1);
        assert!(n > previous, "{key}: {n} arrived after {previous}");
    }
    assert_eq!(last.len(), 10);
    assert_eq!(values(&got).len(), 1000, "each message once");
    subscription.shutdown().await;
}

async fn per_key_order_holds_across_two_members(cluster: Cluster, fx: Fixture) {
    let (mq, topic) = cluster.with_topic(&fx, "shared", 4).await;
    let group = fx.name("group");
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Received)>();
    let member = |id: usize| {
        let tx = tx.clone();
        move |message: Received| {
            std::future::ready(
                tx.send((id, message))
                    .map_err(|e| HandlerError::from(e.to_string())),
            )
        }
    };
    let other = cluster.mq().await;
    let one = mq
        .consumer(&group)
        .subscribe(&[&topic], member(1))
        .await
        .unwrap();
    let two = other
        .consumer(&group)
        .subscribe(&[&topic], member(2))
        .await
        .unwrap();
    until("each member owns two partitions", || {
        one.assignment().len() == 2 && two.assignment().len() == 2
    })
    .await;
    let producer = mq.producer();
    let pending: Vec<_> = (0..400)
        .map(|i| {
            let key = format!("conversation-{}", i % 8);
            let message = Message::new(topic.as_str(), format!("{key}:{i}")).key(key);
            producer.send_nowait(message).unwrap()
        })
        .collect();
    futures_util::future::try_join_all(pending).await.unwrap();
    let mut last: BTreeMap<String, (usize, i64)> = BTreeMap::new();
    let mut members = BTreeSet::new();
    for _ in 0..400 {
        let (id, message) = timeout(PATIENCE, rx.recv()).await.unwrap().unwrap();
        members.insert(id);
        let (key, n) = message.value_str().unwrap().split_once(':').unwrap();
        let n: i64 = n.parse().unwrap();
        let (owner, previous) = last.insert(key.to_owned(), (id, n)).unwrap_or((id, -1));
        assert!(n > previous, "{key}: {n} arrived after {previous}");
        assert_eq!(owner, id, "{key} was handled by two members");
    }
    assert_eq!(members.len(), 2, "both members handled messages");
    one.shutdown().await;
    two.shutdown().await;
}

async fn unfinished_messages_go_to_another_member(cluster: Cluster, fx: Fixture) {
    let topic = fx.name("jobs");
    let group = fx.name("workers");
    let (a, b) = (cluster.mq().await, cluster.mq().await);
    a.admin().create_topic(&topic, 2).await.unwrap();

    // Member A takes messages and never finishes them (as if it hung, then was stopped).
    let started = Arc::new(AtomicUsize::new(0));
    let hung = {
        let started = started.clone();
        move |_: Received| {
            started.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<Result<(), HandlerError>>()
        }
    };
    let mut impatient = cluster.config.consumer.clone();
    impatient.shutdown_grace = Duration::from_millis(200);
    let member_a = a
        .consumer(&group)
        .config(impatient)
        .subscribe(&[&topic], hung)
        .await
        .unwrap();
    for i in 0..10 {
        let message = Message::new(topic.as_str(), format!("job{i}")).key(format!("k{i}"));
        a.producer().send(message).await.unwrap();
    }
    until("member A started a job", || {
        started.load(Ordering::SeqCst) > 0
    })
    .await;

    let (member_b, mut rx) = collect(&b, &group, &topic).await;
    member_a.shutdown().await;

    let got = take(&mut rx, 10).await;
    let expected: BTreeSet<String> = (0..10).map(|i| format!("job{i}")).collect();
    assert_eq!(values(&got), expected, "every job reached member B");
    until("member B owns both partitions", || {
        member_b.assignment().len() == 2
    })
    .await;
    member_b.shutdown().await;
}

/// Asserts that `group` committed all of `topic`: a new member's first message is a marker
/// sent now.
async fn resumes_after_everything(
    mq: &Mq,
    group: &str,
    topic: &str,
    config: Option<gochat_mq::ConsumerConfig>,
) {
    mq.producer()
        .send(Message::new(topic, "marker").key("marker"))
        .await
        .unwrap();
    let (again, mut rx) = collect_with(mq, group, topic, config).await;
    let first = take(&mut rx, 1).await;
    assert_eq!(
        first[0].value_str(),
        Some("marker"),
        "a handled message was delivered again"
    );
    again.shutdown().await;
}

/// The first `n` dead letters of `topic`, read by a group of their own.
async fn dead_letters(
    mq: &Mq,
    fx: &Fixture,
    topic: &str,
    n: usize,
) -> (gochat_mq::Subscription, Vec<Received>) {
    let (letters, mut letters_rx) = collector();
    let reader = mq
        .consumer(&fx.name("dlq-reader"))
        .subscribe(&[&format!("{topic}.dlq")], letters)
        .await
        .unwrap();
    (reader, take(&mut letters_rx, n).await)
}

async fn failing_handler_is_retried_then_dead_lettered(cluster: Cluster, fx: Fixture) {
    let (mq, topic) = cluster.with_topic(&fx, "payments", 1).await;
    let group = fx.name("group");
    let attempts = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = mpsc::unbounded_channel::<Received>();
    let handler = {
        let attempts = attempts.clone();
        move |message: Received| {
            let tx = tx.clone();
            let attempts = attempts.clone();
            async move {
                match message.value_str() {
                    Some("poison") => {
                        attempts.fetch_add(1, Ordering::SeqCst);
                        Err(HandlerError::from("cannot charge card 4242"))
                    }
                    Some("malformed") => Err(Permanent("not JSON".into()).into()),
                    Some("panic") => panic!("handler bug"),
                    _ => tx
                        .send(message)
                        .map_err(|e| HandlerError::from(e.to_string())),
                }
            }
        }
    };
    let mut config = cluster.config.consumer.clone();
    config.max_retries = 2;
    let subscription = mq
        .consumer(&group)
        .config(config)
        .subscribe(&[&topic], handler)
        .await
        .unwrap();
    for value in ["ok1", "poison", "malformed", "panic", "ok2"] {
        let message = Message::new(topic.as_str(), value)
            .key("card")
            .traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        mq.producer().send(message).await.unwrap();
    }
    let handled = take(&mut rx, 2).await;
    assert_eq!(
        handled
            .iter()
            .map(|m| m.value_str().unwrap())
            .collect::<Vec<_>>(),
        ["ok1", "ok2"],
        "order kept around the failures"
    );
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        3,
        "one attempt and two retries"
    );

    let (reader, dead) = dead_letters(&mq, &fx, &topic, 3).await;
    let by_value: BTreeMap<&str, &Received> =
        dead.iter().map(|m| (m.value_str().unwrap(), m)).collect();
    assert_eq!(
        by_value.keys().copied().collect::<Vec<_>>(),
        ["malformed", "panic", "poison"]
    );
    let poison = by_value["poison"];
    let header = |m: &Received, name| m.headers.get_str(name).unwrap().to_owned();
    assert_eq!(
        header(poison, dead_letter::ERROR),
        "cannot charge card 4242"
    );
    assert_eq!(header(poison, dead_letter::ATTEMPTS), "3");
    assert_eq!(header(poison, dead_letter::TOPIC), topic);
    assert_eq!(header(poison, dead_letter::OFFSET), "1");
    assert_eq!(header(poison, dead_letter::GROUP), group);
    assert_eq!(poison.key_str(), Some("card"));
    assert_eq!(
        poison.trace_id(),
        Some("0af7651916cd43dd8448eb211c80319c"),
        "the trace id travels along"
    );
    assert_eq!(
        header(by_value["malformed"], dead_letter::ATTEMPTS),
        "1",
        "permanent: no retry"
    );
    assert!(header(by_value["panic"], dead_letter::ERROR).contains("handler bug"));

    let stats = subscription.stats();
    assert_eq!((stats.dead_lettered, stats.retried), (3, 4));
    subscription.shutdown().await;
    reader.shutdown().await;

    // Everything, dead letters included, was committed: the group resumes after it.
    resumes_after_everything(&mq, &group, &topic, None).await;
}

async fn two_groups_each_get_every_message(cluster: Cluster, fx: Fixture) {
    let (mq, topic) = cluster.with_topic(&fx, "broadcast", 2).await;
    let (first, mut first_rx) = collector();
    let (second, mut second_rx) = collector();
    let one = mq
        .consumer(&fx.name("one"))
        .subscribe(&[&topic], first)
        .await
        .unwrap();
    let two = mq
        .consumer(&fx.name("two"))
        .subscribe(&[&topic], second)
        .await
        .unwrap();
    for i in 0..30 {
        mq.producer()
            .send(Message::new(topic.as_str(), format!("m{i}")).key(format!("{i}")))
            .await
            .unwrap();
    }
    let expected: BTreeSet<String> = (0..30).map(|i| format!("m{i}")).collect();
    assert_eq!(values(&take(&mut first_rx, 30).await), expected);
    assert_eq!(values(&take(&mut second_rx, 30).await), expected);
    one.shutdown().await;
    two.shutdown().await;
}

/// `per_partition` above 1: a slow message holds back only its own key. Others of its
/// partition are handled meanwhile, in order per key; the commit stays before the slow one
/// until it is done, and after it nothing handled is delivered again.
async fn keys_run_side_by_side_within_a_partition(cluster: Cluster, fx: Fixture) {
    let (mq, topic) = cluster.with_topic(&fx, "side-by-side", 1).await;
    let group = fx.name("group");
    let mut config = cluster.config.consumer.clone();
    config.per_partition = 8;
    // The held handler never finishes: the shutdown below gives up on it at once.
    config.shutdown_grace = Duration::from_millis(100);
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let (tx, mut rx) = mpsc::unbounded_channel::<Received>();
    let handler = {
        let gate = gate.clone();
        move |message: Received| {
            let (gate, tx) = (gate.clone(), tx.clone());
            async move {
                if message.key_str() == Some("slow") {
                    gate.acquire()
                        .await
                        .map(tokio::sync::SemaphorePermit::forget)
                        .ok();
                }
                tx.send(message)
                    .map_err(|e| HandlerError::from(e.to_string()))
            }
        }
    };
    let subscription = mq
        .consumer(&group)
        .config(config.clone())
        .subscribe(&[&topic], handler)
        .await
        .unwrap();
    let producer = mq.producer();
    let mut sent = Vec::new();
    for i in 0..30 {
        let key = if i % 10 == 0 {
            "slow".to_owned()
        } else {
            format!("fast-{}", i % 3)
        };
        let message = Message::new(topic.as_str(), format!("{key}:{i}")).key(key);
        sent.push(producer.send_nowait(message).unwrap());
    }
    futures_util::future::try_join_all(sent).await.unwrap();
    // Every fast message arrives while the first slow one (offset 0) is held.
    let fast = take(&mut rx, 27).await;
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for message in &fast {
        let (key, n) = message.value_str().unwrap().split_once(':').unwrap();
        assert_ne!(key, "slow", "a later slow message overtook the first");
        let n: i64 = n.parse().unwrap();
        let previous = last.insert(key.to_owned(), n).unwrap_or(-1);
        assert!(n > previous, "{key}: {n} arrived after {previous}");
    }
    // Stopped while offset 0 is still held: nothing after it was committed, however much
    // of the rest is done, so a new member starts again at 0 — the slow ones in their order.
    subscription.shutdown().await;
    gate.add_permits(100);
    let (again, mut rx) = collect_with(&mq, &group, &topic, Some(config)).await;
    let got = take(&mut rx, 30).await;
    assert_eq!(got[0].offset, 0, "the commit passed an unfinished message");
    let slow: Vec<&str> = got
        .iter()
        .filter(|m| m.key_str() == Some("slow"))
        .map(|m| m.value_str().unwrap())
        .collect();
    assert_eq!(slow, ["slow:0", "slow:10", "slow:20"]);
    again.shutdown().await;
}

async fn graceful_shutdown_commits(cluster: Cluster, fx: Fixture) {
    let (mq, topic) = cluster.with_topic(&fx, "commits", 1).await;
    let group = fx.name("group");
    // No periodic commit: only the shutdown can commit.
    let mut config = cluster.config.consumer.clone();
    config.commit_interval = Duration::from_secs(3600);
    let (subscription, mut rx) = collect_with(&mq, &group, &topic, Some(config.clone())).await;
    for i in 0..10 {
        mq.producer()
            .send(Message::new(topic.as_str(), format!("m{i}")))
            .await
            .unwrap();
    }
    take(&mut rx, 10).await;
    subscription.shutdown().await;

    mq.producer()
        .send(Message::new(topic.as_str(), "marker"))
        .await
        .unwrap();
    let (again, mut rx) = collect_with(&mq, &group, &topic, Some(config)).await;
    let first = take(&mut rx, 1).await;
    assert_eq!(
        first[0].value_str(),
        Some("marker"),
        "nothing handled was delivered again"
    );
    assert_eq!(first[0].offset, 10);
    again.shutdown().await;
}

async fn trace_id_travels_in_a_header(cluster: Cluster, fx: Fixture) {
    let (log, out) = captured_log();
    let mq = cluster
        .mq_with(Options::default().logger(log.clone()))
        .await;
    let topic = fx.name("traced");
    mq.admin().create_topic(&topic, 1).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel::<Option<String>>();
    let handler = {
        let log = log.clone();
        move |message: Received| {
            let (tx, log) = (tx.clone(), log.clone());
            async move {
                gochat_clog::info!(log, "handling {}", message.offset);
                tx.send(message.trace_id().map(str::to_owned))
                    .map_err(|e| HandlerError::from(e.to_string()))
            }
        }
    };
    let subscription = mq
        .consumer(&fx.name("group"))
        .subscribe(&[&topic], handler)
        .await
        .unwrap();

    let producer = mq.producer();
    let pending = log.in_scope(|| {
        let span = log.request_span(Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        let _entered = span.enter();
        producer
            .send_nowait(Message::new(topic.as_str(), "traced"))
            .unwrap()
    });
    pending.await.unwrap();
    let seen = timeout(PATIENCE, rx.recv()).await.unwrap().unwrap();
    assert_eq!(seen.as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    subscription.shutdown().await;
    let lines = out.json_lines().unwrap();
    let handled = lines
        .iter()
        .find(|line| line["message"] == "handling 0")
        .unwrap_or_else(|| panic!("no handler line in {lines:?}"));
    assert_eq!(
        handled["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
        "{handled}"
    );
}

async fn a_full_partition_is_paused_not_dropped(cluster: Cluster, fx: Fixture) {
    let (mq, topic) = cluster.with_topic(&fx, "slow", 1).await;
    for i in 0..200 {
        mq.producer()
            .send_nowait(Message::new(topic.as_str(), format!("{i}")))
            .unwrap()
            .await
            .unwrap();
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Received>();
    let slow = move |message: Received| {
        let tx = tx.clone();
        async move {
            // Slower than the fetch loop waits for room (100 ms): the partition is paused.
            if message.offset % 50 == 0 {
                sleep(Duration::from_millis(250)).await;
            }
            tx.send(message)
                .map_err(|e| HandlerError::from(e.to_string()))
        }
    };
    let mut tiny = cluster.config.consumer.clone();
    tiny.buffer = 4;
    let subscription = mq
        .consumer(&fx.name("group"))
        .config(tiny)
        .subscribe(&[&topic], slow)
        .await
        .unwrap();
    let got = take(&mut rx, 200).await;
    let offsets: Vec<i64> = got.iter().map(|m| m.offset).collect();
    assert_eq!(
        offsets,
        (0..200).collect::<Vec<_>>(),
        "every message once, in order"
    );
    subscription.shutdown().await;
}

async fn a_revoked_partition_commits_what_was_done(cluster: Cluster, fx: Fixture) {
    let (mq, topic) = cluster.with_topic(&fx, "handover", 2).await;
    let group = fx.name("group");
    // No periodic commit: only the revocation can commit what A handled.
    let mut config = cluster.config.consumer.clone();
    config.commit_interval = Duration::from_secs(3600);
    let (a_handler, mut a_rx) = collector();
    let a = mq
        .consumer(&group)
        .config(config.clone())
        .subscribe(&[&topic], a_handler)
        .await
        .unwrap();
    for i in 0..10 {
        let message = Message::new(topic.as_str(), format!("old{i}")).key(format!("k{i}"));
        mq.producer().send(message).await.unwrap();
    }
    take(&mut a_rx, 10).await;

    let (b_handler, mut b_rx) = collector();
    let b = cluster
        .mq()
        .await
        .consumer(&group)
        .config(config)
        .subscribe(&[&topic], b_handler)
        .await
        .unwrap();
    until("the partitions are shared", || {
        a.assignment().len() == 1 && b.assignment().len() == 1
    })
    .await;
    // A marker on each partition.
    let mut marked = BTreeSet::new();
    for i in 0.. {
        let message = Message::new(topic.as_str(), format!("new{i}")).key(format!("m{i}"));
        marked.insert(mq.producer().send(message).await.unwrap().partition);
        if marked.len() == 2 {
            break;
        }
    }
    let first = take(&mut b_rx, 1).await;
    assert!(
        first[0].value_str().unwrap().starts_with("new"),
        "B was handed {:?}, which A had handled before the rebalance",
        first[0].value_str()
    );
    a.shutdown().await;
    b.shutdown().await;
}

async fn lag_counts_what_is_not_committed(cluster: Cluster, fx: Fixture) {
    let (mq, topic) = cluster.with_topic(&fx, "backlog", 1).await;
    for i in 0..20 {
        mq.producer()
            .send(Message::new(topic.as_str(), format!("{i}")))
            .await
            .unwrap();
    }
    let (subscription, gate, _handled) = gated(&mq, &fx.name("group"), &topic).await;
    until("the backlog shows as lag", || {
        subscription.stats().lag == 20
    })
    .await;
    assert_eq!(mq.stats().lag, 20, "the provider sums its subscriptions");
    gate.add_permits(20);
    until("the lag is gone once committed", || {
        subscription.stats().lag == 0
    })
    .await;
    subscription.shutdown().await;
}

/// A batch handler: a partition's messages in offset order, at most `max_batch` at a time,
/// each once; the batch committed after the handler, so a new member resumes after it.
async fn batches_keep_partition_order_and_commit_after(cluster: Cluster, fx: Fixture) {
    let (mq, topic) = cluster.with_topic(&fx, "batched", 2).await;
    let group = fx.name("group");
    let producer = mq.producer();
    let pending: Vec<_> = (0..300)
        .map(|i| {
            let message = Message::new(topic.as_str(), format!("m{i}")).key(format!("k{}", i % 7));
            producer.send_nowait(message).unwrap()
        })
        .collect();
    futures_util::future::try_join_all(pending).await.unwrap();
    let mut config = cluster.config.consumer.clone();
    config.max_batch = 32;
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<Received>>();
    let handler = move |batch: Vec<Received>| {
        std::future::ready(
            tx.send(batch)
                .map_err(|e| HandlerError::from(e.to_string())),
        )
    };
    let subscription = mq
        .consumer(&group)
        .config(config.clone())
        .subscribe_batch(&[&topic], handler)
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    while seen.len() < 300 {
        let batch = timeout(PATIENCE, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("received {} of 300 messages", seen.len()))
            .unwrap();
        assert!(
            (1..=32).contains(&batch.len()),
            "a batch of {}",
            batch.len()
        );
        let partition = batch[0].partition;
        for message in &batch {
            assert_eq!(message.partition, partition, "a batch mixes partitions");
            let previous = last.insert(partition, message.offset).unwrap_or(-1);
            assert!(
                message.offset > previous,
                "partition {partition}: offset {} after {previous}",
                message.offset
            );
            assert_eq!(message.attempt, 1);
        }
        seen.extend(batch);
    }
    assert_eq!(values(&seen).len(), 300, "each message once");
    until("the subscription counted 300", || {
        subscription.stats().consumed == 300
    })
    .await;
    subscription.shutdown().await;

    resumes_after_everything(&mq, &group, &topic, Some(config)).await;
}

/// A failing batch is retried whole, then message by message: only the bad messages are
/// dead-lettered (a retryable one after its retries, a permanent one at once), the others
/// are handled, in order, and everything is committed.
async fn a_failing_batch_dead_letters_only_its_bad_messages(cluster: Cluster, fx: Fixture) {
    let (mq, topic) = cluster.with_topic(&fx, "batch-failures", 1).await;
    let group = fx.name("group");
    let sent = [
        "ok0",
        "ok1",
        "poison",
        "ok2",
        "malformed",
        "ok3",
        "panic",
        "ok4",
    ];
    let producer = mq.producer();
    for value in sent {
        producer
            .send(Message::new(topic.as_str(), value).key("one"))
            .await
            .unwrap();
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Received>();
    let handler = move |batch: Vec<Received>| {
        let tx = tx.clone();
        async move {
            let has = |value: &str| batch.iter().any(|m| m.value_str() == Some(value));
            if has("panic") {
                panic!("handler bug");
            }
            if has("malformed") {
                return Err(Permanent("not JSON".into()).into());
            }
            if has("poison") {
                return Err(HandlerError::from("cannot charge card 4242"));
            }
            for message in batch {
                tx.send(message)
                    .map_err(|e| HandlerError::from(e.to_string()))?;
            }
            Ok::<(), HandlerError>(())
        }
    };
    let mut config = cluster.config.consumer.clone();
    config.max_retries = 1;
    let subscription = mq
        .consumer(&group)
        .config(config)
        .subscribe_batch(&[&topic], handler)
        .await
        .unwrap();
    let handled = take(&mut rx, 5).await;
    assert_eq!(
        handled
            .iter()
            .map(|m| m.value_str().unwrap())
            .collect::<Vec<_>>(),
        ["ok0", "ok1", "ok2", "ok3", "ok4"],
        "every good message once, in order"
    );

    let (reader, dead) = dead_letters(&mq, &fx, &topic, 3).await;
    let by_value: BTreeMap<&str, &Received> =
        dead.iter().map(|m| (m.value_str().unwrap(), m)).collect();
    assert_eq!(
        by_value.keys().copied().collect::<Vec<_>>(),
        ["malformed", "panic", "poison"],
        "only the bad messages are dead-lettered"
    );
    let attempts = |value: &str| {
        by_value[value]
            .headers
            .get_str(dead_letter::ATTEMPTS)
            .unwrap()
    };
    assert_eq!(attempts("poison"), "2", "alone: one attempt and one retry");
    assert_eq!(attempts("malformed"), "1", "permanent: no retry alone");
    assert_eq!(
        by_value["poison"].headers.get_str(dead_letter::OFFSET),
        Some("2")
    );
    until("the subscription counted 3 dead letters", || {
        subscription.stats().dead_lettered == 3
    })
    .await;
    subscription.shutdown().await;
    reader.shutdown().await;

    // Everything, dead letters included, was committed.
    resumes_after_everything(&mq, &group, &topic, None).await;
}

behaviour_suite! {
    backends: [memory, kafka, redis],
    cases: [
        produce_then_consume,
        per_key_order_holds_across_a_thousand_messages,
        per_key_order_holds_across_two_members,
        unfinished_messages_go_to_another_member,
        failing_handler_is_retried_then_dead_lettered,
        two_groups_each_get_every_message,
        keys_run_side_by_side_within_a_partition,
        graceful_shutdown_commits,
        trace_id_travels_in_a_header,
        a_full_partition_is_paused_not_dropped,
        a_revoked_partition_commits_what_was_done,
        lag_counts_what_is_not_committed,
        batches_keep_partition_order_and_commit_after,
        a_failing_batch_dead_letters_only_its_bad_messages,
    ],
}
