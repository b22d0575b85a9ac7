//! gochat-mq against raw rdkafka on the same broker, and the in-process backend.
//!
//! Run with `cargo bench -p gochat-mq --bench throughput` (the broker from `scripts/engines
//! up`; `GOCHAT_TEST_KAFKA_BROKERS` overrides `127.0.0.1:9092`). Each round produces, then
//! consumes, the same number of messages through the kit and through a raw rdkafka client
//! configured alike, interleaved so machine noise hits both; the medians and kit/raw ratios
//! go in docs/benchmarks.md.
//!
//! Produce: `send_nowait` of every message, then await all (raw: `send_result`, the same).
//! Consume: a new group reads the topic from the start; timed from the first message to the
//! last, so the group join (seconds on some brokers) is not counted. The kit's handler counts;
//! the kit also tracks and commits offsets, the raw consumer commits nothing.
//!
//! The broker runs on the same two cores, so rates are mostly the broker's. The client's own
//! cost is the CPU time this process used per message (all threads, librdkafka's included),
//! read from /proc/self/stat at 10 ms resolution.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use gochat_core::{Context, Env};
use gochat_mq::{Backend, Config, HandlerError, KafkaConfig, MemoryConfig, Message, Mq, Received};
use rdkafka::{
    ClientConfig, Message as _,
    consumer::{Consumer as _, StreamConsumer},
    producer::{FutureProducer, FutureRecord},
};
use tokio::sync::Notify;

const MESSAGES: u64 = 20_000;
const PARTITIONS: u32 = 4;
const ROUNDS: usize = 5;
const PAYLOAD: [u8; 100] = [b'x'; 100];

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(run());
}

async fn run() {
    let brokers =
        std::env::var("GOCHAT_TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let run = std::process::id();
    let kafka = KafkaConfig::with_brokers(Env::Development, &brokers);
    let kit = provider(Backend::Kafka(Box::new(kafka.clone()))).await;
    let memory = provider(Backend::Memory(MemoryConfig::named("bench"))).await;
    let raw: FutureProducer = raw_config(&brokers)
        .set("acks", "1")
        .set("linger.ms", "5")
        .set("batch.size", "1048576")
        .set("compression.type", "none")
        .set("partitioner", "murmur2_random")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("a raw producer");

    let mut rows: Vec<[f64; 10]> = Vec::new();
    for round in 0..ROUNDS {
        let (kit_topic, raw_topic, mem_topic) = (
            format!("bench_{run}_{round}_kit"),
            format!("bench_{run}_{round}_raw"),
            format!("bench_{run}_{round}_mem"),
        );
        for (mq, topic) in [
            (&kit, &kit_topic),
            (&kit, &raw_topic),
            (&memory, &mem_topic),
        ] {
            mq.admin()
                .create_topic(topic, PARTITIONS)
                .await
                .expect("topic");
        }
        let produce_raw = produce_raw(&raw, &raw_topic).await;
        let produce_kit = produce_through(&kit, &kit_topic).await;
        let produce_mem = produce_through(&memory, &mem_topic).await;
        let consume_raw = consume_raw(&brokers, &raw_topic).await;
        let consume_kit = consume_through(&kit, &kit_topic).await;
        let consume_mem = consume_through(&memory, &mem_topic).await;
        let row = [
            produce_kit.0,
            produce_raw.0,
            produce_mem.0,
            consume_kit.0,
            consume_raw.0,
            consume_mem.0,
            produce_kit.1,
            produce_raw.1,
            consume_kit.1,
            consume_raw.1,
        ];
        println!(
            "round {round}: produce kit {:.0} raw {:.0} memory {:.0} msgs/s; consume kit {:.0} raw {:.0} memory {:.0} msgs/s; client CPU µs/msg: produce kit {:.1} raw {:.1}, consume kit {:.1} raw {:.1}",
            row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9]
        );
        rows.push(row);
    }
    let median = |i: usize| {
        let mut column: Vec<f64> = rows.iter().map(|r| r[i]).collect();
        column.sort_by(f64::total_cmp);
        column[column.len() / 2]
    };
    let ratios = |kit: usize, raw: usize| -> Vec<String> {
        rows.iter()
            .map(|r| format!("{:.2}", r[kit] / r[raw]))
            .collect()
    };
    println!(
        "\n{MESSAGES} messages of {} bytes, {PARTITIONS} partitions, {ROUNDS} rounds (medians)",
        PAYLOAD.len()
    );
    println!(
        "| | kit msgs/s | raw rdkafka msgs/s | kit/raw (median) | kit/raw per round | memory msgs/s | client CPU µs/msg kit | raw | raw/kit (median) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, kit, raw, mem, kit_cpu, raw_cpu) in
        [("produce", 0, 1, 2, 6, 7), ("consume", 3, 4, 5, 8, 9)]
    {
        println!(
            "| {name} | {:.0} | {:.0} | {:.2} | {} | {:.0} | {:.1} | {:.1} | {:.2} |",
            median(kit),
            median(raw),
            median(kit) / median(raw),
            ratios(kit, raw).join(" "),
            median(mem),
            median(kit_cpu),
            median(raw_cpu),
            median(raw_cpu) / median(kit_cpu),
        );
    }
}

async fn provider(backend: Backend) -> Mq {
    let mut config = Config::for_env(Env::Development);
    config.backend = backend;
    gochat_mq::new(&Context::new(), config, Default::default())
        .await
        .expect("an mq provider")
}

fn raw_config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("client.id", "gochat");
    config
}

fn key(n: u64) -> String {
    format!("key-{}", n % 64)
}

fn per_second(elapsed: Duration) -> f64 {
    MESSAGES as f64 / elapsed.as_secs_f64()
}

/// This process's CPU time (every thread: the client's own and librdkafka's), from
/// /proc/self/stat in clock ticks of 10 ms.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let fields: Vec<&str> = stat[stat.rfind(')').expect("a comm field") + 1..]
        .split_whitespace()
        .collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    ticks as f64 / 100.0
}

/// Client CPU microseconds per message since `since`.
fn cpu_per_message(since: f64) -> f64 {
    (cpu_seconds() - since) * 1e6 / MESSAGES as f64
}

async fn produce_through(mq: &Mq, topic: &str) -> (f64, f64) {
    let cpu = cpu_seconds();
    let producer = mq.producer();
    let start = Instant::now();
    let mut pending = Vec::with_capacity(MESSAGES as usize);
    for n in 0..MESSAGES {
        let message = Message::new(topic, &PAYLOAD[..]).key(key(n));
        pending.push(producer.send_nowait(message).expect("enqueued"));
    }
    for sent in pending {
        sent.await.expect("delivered");
    }
    (per_second(start.elapsed()), cpu_per_message(cpu))
}

async fn produce_raw(producer: &FutureProducer, topic: &str) -> (f64, f64) {
    let cpu = cpu_seconds();
    let start = Instant::now();
    let mut pending = Vec::with_capacity(MESSAGES as usize);
    for n in 0..MESSAGES {
        let key = key(n);
        let record = FutureRecord::to(topic).key(&key).payload(&PAYLOAD[..]);
        pending.push(
            producer
                .send_result(record)
                .map_err(|(e, _)| e)
                .expect("enqueued"),
        );
    }
    for sent in pending {
        sent.await
            .expect("not cancelled")
            .map_err(|(e, _)| e)
            .expect("delivered");
    }
    (per_second(start.elapsed()), cpu_per_message(cpu))
}

async fn consume_through(mq: &Mq, topic: &str) -> (f64, f64) {
    let cpu = cpu_seconds();
    let seen = Arc::new(AtomicU64::new(0));
    let done = Arc::new(Notify::new());
    let first: Arc<std::sync::OnceLock<Instant>> = Arc::default();
    let handler = {
        let (seen, done, first) = (seen.clone(), done.clone(), first.clone());
        move |_: Received| {
            first.get_or_init(Instant::now);
            if seen.fetch_add(1, Ordering::Relaxed) + 1 == MESSAGES {
                done.notify_one();
            }
            std::future::ready(Ok::<_, HandlerError>(()))
        }
    };
    let subscription = mq
        .consumer(&format!("{topic}_group"))
        .subscribe(&[topic], handler)
        .await
        .expect("subscribed");
    done.notified().await;
    let elapsed = first.get().expect("a first message").elapsed();
    let used = cpu_per_message(cpu);
    subscription.shutdown().await;
    (per_second(elapsed), used)
}

async fn consume_raw(brokers: &str, topic: &str) -> (f64, f64) {
    let cpu = cpu_seconds();
    let consumer: StreamConsumer = raw_config(brokers)
        .set("group.id", format!("{topic}_group"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .create()
        .expect("a raw consumer");
    consumer.subscribe(&[topic]).expect("subscribed");
    let mut first = None;
    for _ in 0..MESSAGES {
        let message = consumer.recv().await.expect("a message");
        std::hint::black_box(message.payload());
        first.get_or_insert_with(Instant::now);
    }
    let elapsed = first.expect("a first message").elapsed();
    let used = cpu_per_message(cpu);
    tokio::task::spawn_blocking(move || drop(consumer))
        .await
        .expect("the consumer closed");
    (per_second(elapsed), used)
}
