//! The candidate engines for gochat-mq's second distributed backend, side by side in one run:
//! Redis Streams (fred) and NATS JetStream (async-nats), each driven the way a backend would
//! drive it: Redis as `scripts/engines up` starts it, NATS 2.9 with JetStream as this machine
//! kind runs it (`nats-server -a 127.0.0.1 -p 4222 -js`; the tests do not need it).
//!
//! Run with `cargo bench -p gochat-mq --bench engines` (`GOCHAT_TEST_REDIS_URL` and
//! `GOCHAT_TEST_NATS_URL` override `redis://127.0.0.1:6379` and `127.0.0.1:4222`). Rounds
//! alternate the engines so machine noise hits both; the medians go in docs/benchmarks.md.
//!
//! Per engine and round, on a fresh topic of 4 partitions (Redis: a stream per partition;
//! NATS: a subject per partition in one file-backed stream), one group member waiting:
//! - **paced latency**: 2,000 messages at 1,000/s, each sent alone and acknowledged by the
//!   engine; publish→consume latency from a timestamp in the payload.
//! - **burst**: 20,000 messages of 100 bytes, sent in pipelined batches of 256 (Redis: one
//!   pipeline of XADDs; NATS: 256 publishes, then their acks); msgs/s from the first send to the
//!   last message consumed; CPU of this process and of the engine per 1,000 messages
//!   (/proc, 10 ms ticks). The member reads in batches of up to 256 and acks each batch at
//!   once (Redis: XACK of the batch's ids per stream; NATS: ack-all on the batch's last).
//! - **idle**: the engine's CPU over 3 s while the member waits for messages that do not come
//!   (long polling should cost nothing).
//! - **dead member**: a member takes 1,000 messages and dies without acking; how long until
//!   another member of the group has them all, with "dead after" set to 1 s on both (Redis:
//!   XAUTOCLAIM with min-idle 1 s, polled every 100 ms; NATS: `ack_wait` 1 s).

use std::{
    collections::HashMap,
    future::IntoFuture,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use async_nats::jetstream::{
    self, AckKind,
    consumer::{AckPolicy, DeliverPolicy, pull},
    stream,
};
use bytes::Bytes;
use fred::{
    prelude::{Builder, Client, ClientLike, KeysInterface, StreamsInterface},
    types::{Value, config::Config as FredConfig, streams::XID},
};
use futures_util::{FutureExt, StreamExt};
use tokio::sync::Mutex;

const PARTITIONS: usize = 4;
const PACED: usize = 2_000;
const PACE: Duration = Duration::from_millis(1);
const BURST: usize = 20_000;
const BATCH: usize = 256;
const DEAD: usize = 1_000;
const DEAD_AFTER: Duration = Duration::from_secs(1);
const IDLE: Duration = Duration::from_secs(3);
const ROUNDS: usize = 3;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(run());
}

/// One engine's figures in one round.
#[derive(Debug, Default, Clone, Copy)]
struct Row {
    p50_ms: f64,
    p99_ms: f64,
    burst_p50_ms: f64,
    burst_p99_ms: f64,
    msgs_per_s: f64,
    client_cpu_ms_per_k: f64,
    engine_cpu_ms_per_k: f64,
    idle_engine_cpu_pct: f64,
    redelivered_s: f64,
}

async fn run() {
    let redis_url =
        std::env::var("GOCHAT_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let nats_url =
        std::env::var("GOCHAT_TEST_NATS_URL").unwrap_or_else(|_| "127.0.0.1:4222".into());
    let redis = Redis::connect(&redis_url).await;
    let nats = Nats::connect(&nats_url).await;
    let redis_pid = redis.pid().await;
    let nats_pid = find_pid("nats-server").expect("a nats-server process");
    let run = std::process::id();
    let mut rows: HashMap<&str, Vec<Row>> = HashMap::new();
    for round in 0..ROUNDS {
        let topic = format!("bench_{run}_{round}");
        let redis_row = measure(&redis, &format!("{topic}_r"), redis_pid).await;
        let nats_row = measure(&nats, &format!("{topic}_n"), nats_pid).await;
        println!("round {round}: redis {redis_row:?}\nround {round}: nats  {nats_row:?}");
        rows.entry("Redis Streams").or_default().push(redis_row);
        rows.entry("NATS JetStream").or_default().push(nats_row);
        redis.cleanup(&format!("{topic}_r")).await;
        nats.cleanup(&format!("{topic}_n")).await;
    }
    println!(
        "\n| engine | paced p50 / p99 (ms) | burst p50 / p99 (ms) | burst msgs/s | client CPU ms / 1k msgs | engine CPU ms / 1k msgs | engine CPU idle | dead member's messages back after |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for name in ["Redis Streams", "NATS JetStream"] {
        let m = median(&rows[name]);
        println!(
            "| {name} | {:.2} / {:.2} | {:.1} / {:.1} | {:.0} | {:.1} | {:.1} | {:.1} % | {:.2} s |",
            m.p50_ms,
            m.p99_ms,
            m.burst_p50_ms,
            m.burst_p99_ms,
            m.msgs_per_s,
            m.client_cpu_ms_per_k,
            m.engine_cpu_ms_per_k,
            m.idle_engine_cpu_pct,
            m.redelivered_s
        );
    }
}

fn median(rows: &[Row]) -> Row {
    let pick = |f: fn(&Row) -> f64| {
        let mut v: Vec<f64> = rows.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Row {
        p50_ms: pick(|r| r.p50_ms),
        p99_ms: pick(|r| r.p99_ms),
        burst_p50_ms: pick(|r| r.burst_p50_ms),
        burst_p99_ms: pick(|r| r.burst_p99_ms),
        msgs_per_s: pick(|r| r.msgs_per_s),
        client_cpu_ms_per_k: pick(|r| r.client_cpu_ms_per_k),
        engine_cpu_ms_per_k: pick(|r| r.engine_cpu_ms_per_k),
        idle_engine_cpu_pct: pick(|r| r.idle_engine_cpu_pct),
        redelivered_s: pick(|r| r.redelivered_s),
    }
}

/// What the bench needs of an engine.
trait Bus: Sync {
    async fn setup(&self, topic: &str);
    /// Sends `payloads` to their partitions, pipelined, and waits for the engine's acks.
    async fn send(&self, topic: &str, batch: Vec<(usize, Bytes)>);
    /// A group member reading `topic` until `want` messages came; passes each payload to
    /// `seen` and acks per batch.
    async fn consume(&self, topic: &str, group: &str, want: usize, seen: &Seen);
    /// A member that takes `n` messages, never acks, and dies; then another member's wait
    /// until it has them all. Returns the seconds from the dead member's read.
    async fn redelivery(&self, topic: &str, group: &str, n: usize) -> f64;
    async fn cleanup(&self, topic: &str);
}

/// Latencies of consumed messages, in microseconds.
#[derive(Default)]
struct Seen {
    latencies: Mutex<Vec<u64>>,
    count: AtomicU64,
}

impl Seen {
    async fn record(&self, payloads: impl IntoIterator<Item = Bytes>) {
        let now = now_micros();
        let mut latencies = self.latencies.lock().await;
        for payload in payloads {
            let sent = u64::from_le_bytes(payload[..8].try_into().expect("a stamped payload"));
            latencies.push(now.saturating_sub(sent));
            self.count.fetch_add(1, Ordering::SeqCst);
        }
    }

    async fn percentiles(&self) -> (f64, f64) {
        let mut v = self.latencies.lock().await.clone();
        v.sort_unstable();
        let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)] as f64 / 1000.0;
        (at(0.50), at(0.99))
    }
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn stamped() -> Bytes {
    let mut payload = vec![b'x'; 100];
    payload[..8].copy_from_slice(&now_micros().to_le_bytes());
    Bytes::from(payload)
}

async fn measure(bus: &impl Bus, topic: &str, engine_pid: u32) -> Row {
    bus.setup(topic).await;
    let mut row = Row::default();

    // Paced: one message at a time.
    let seen = Seen::default();
    let group = "paced";
    let (_, ()) = tokio::join!(bus.consume(topic, group, PACED, &seen), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut tick = tokio::time::interval(PACE);
        for i in 0..PACED {
            tick.tick().await;
            bus.send(topic, vec![(i % PARTITIONS, stamped())]).await;
        }
    });
    (row.p50_ms, row.p99_ms) = seen.percentiles().await;

    // Burst: pipelined batches; a new group reads from where the paced phase ended.
    let seen = Seen::default();
    let before = (cpu_ticks(None), cpu_ticks(Some(engine_pid)));
    let started = Instant::now();
    let group = "burst";
    let ((), ()) = tokio::join!(bus.consume(topic, group, PACED + BURST, &seen), async {
        for chunk in (0..BURST).collect::<Vec<_>>().chunks(BATCH) {
            let batch = chunk.iter().map(|i| (i % PARTITIONS, stamped())).collect();
            bus.send(topic, batch).await;
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let after = (cpu_ticks(None), cpu_ticks(Some(engine_pid)));
    // The burst group read the paced messages too: count what it read.
    let read = (PACED + BURST) as f64;
    row.msgs_per_s = read / elapsed;
    row.client_cpu_ms_per_k = (after.0 - before.0) as f64 * 10.0 / (read / 1000.0);
    row.engine_cpu_ms_per_k = (after.1 - before.1) as f64 * 10.0 / (read / 1000.0);
    {
        // Only the burst's own messages for its latency.
        let latencies = seen.latencies.lock().await;
        let mut own: Vec<u64> = latencies[PACED.min(latencies.len())..].to_vec();
        drop(latencies);
        own.sort_unstable();
        let at = |q: f64| {
            own.get(((own.len() as f64 * q) as usize).min(own.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0) as f64
                / 1000.0
        };
        (row.burst_p50_ms, row.burst_p99_ms) = (at(0.50), at(0.99));
    }

    // Idle: a member of a new topic waiting for messages that do not come.
    let idle_topic = format!("{topic}_idle");
    bus.setup(&idle_topic).await;
    let seen = Seen::default();
    let before = cpu_ticks(Some(engine_pid));
    let _ = tokio::time::timeout(IDLE, bus.consume(&idle_topic, "idle", 1, &seen)).await;
    let after = cpu_ticks(Some(engine_pid));
    row.idle_engine_cpu_pct = (after - before) as f64 * 10.0 / IDLE.as_millis() as f64 * 100.0;
    bus.cleanup(&idle_topic).await;

    // Dead member.
    let dead_topic = format!("{topic}_dead");
    bus.setup(&dead_topic).await;
    for chunk in (0..DEAD).collect::<Vec<_>>().chunks(BATCH) {
        let batch = chunk.iter().map(|i| (i % PARTITIONS, stamped())).collect();
        bus.send(&dead_topic, batch).await;
    }
    row.redelivered_s = bus.redelivery(&dead_topic, "dead", DEAD).await;
    bus.cleanup(&dead_topic).await;
    row
}

/// utime + stime of a process (this one when `None`), in clock ticks (10 ms).
fn cpu_ticks(pid: Option<u32>) -> u64 {
    let path = pid.map_or_else(
        || "/proc/self/stat".to_owned(),
        |p| format!("/proc/{p}/stat"),
    );
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name, which ends with the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat; 12 and 13 after the name and state.
    field(11) + field(12)
}

fn find_pid(comm: &str) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let name = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            (name.trim() == comm).then_some(pid)
        })
}

struct Redis {
    url: String,
    client: Client,
}

impl Redis {
    async fn connect(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            client: Self::client(url).await,
        }
    }

    async fn client(url: &str) -> Client {
        let client = Builder::from_config(FredConfig::from_url(url).expect("a Redis URL"))
            .build()
            .expect("a Redis client");
        client.init().await.expect("Redis answers");
        client
    }

    async fn pid(&self) -> u32 {
        let info: String = self.client.info(None).await.expect("INFO");
        info.lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .and_then(|p| p.trim().parse().ok())
            .expect("a process_id in INFO")
    }

    fn streams(topic: &str) -> Vec<String> {
        (0..PARTITIONS).map(|p| format!("{topic}:{p}")).collect()
    }

    /// Entries of an XREAD(GROUP) reply as (stream, id, payload); none when it timed out.
    fn entries(response: Value) -> Vec<(String, String, Bytes)> {
        let mut out = Vec::new();
        let Value::Array(streams) = response else {
            return out;
        };
        for stream in streams {
            let Value::Array(mut parts) = stream else {
                continue;
            };
            let (Some(Value::Array(entries)), Some(name)) = (parts.pop(), parts.pop()) else {
                continue;
            };
            let name = name.as_string().unwrap_or_default();
            for entry in entries {
                let Value::Array(mut entry) = entry else {
                    continue;
                };
                let (Some(Value::Array(mut fields)), Some(id)) = (entry.pop(), entry.pop()) else {
                    continue;
                };
                if let (Some(Value::Bytes(v)), Some(id)) = (fields.pop(), id.as_string()) {
                    out.push((name.clone(), id, v));
                }
            }
        }
        out
    }

    async fn ack(client: &Client, group: &str, entries: &[(String, String, Bytes)]) {
        let mut by_stream: HashMap<&str, Vec<&str>> = HashMap::new();
        for (stream, id, _) in entries {
            by_stream.entry(stream).or_default().push(id);
        }
        let pipeline = client.pipeline();
        for (stream, ids) in by_stream {
            let ids: Vec<XID> = ids
                .into_iter()
                .map(|id| XID::Manual(id.to_owned().into()))
                .collect();
            let _: () = pipeline.xack(stream, group, ids).await.expect("queued");
        }
        let _: Vec<Value> = pipeline.all().await.expect("XACK");
    }

    async fn create_group(&self, topic: &str, group: &str) {
        for stream in Self::streams(topic) {
            // BUSYGROUP when it exists already.
            let _: Result<(), _> = self.client.xgroup_create(&stream, group, "0", true).await;
        }
    }
}

impl Bus for Redis {
    async fn setup(&self, topic: &str) {
        self.create_group(topic, "setup").await;
    }

    async fn send(&self, topic: &str, batch: Vec<(usize, Bytes)>) {
        let pipeline = self.client.pipeline();
        for (partition, payload) in batch {
            let _: () = pipeline
                .xadd(
                    format!("{topic}:{partition}"),
                    false,
                    None,
                    "*",
                    ("v", payload),
                )
                .await
                .expect("queued");
        }
        let _: Vec<Value> = pipeline.all().await.expect("XADD");
    }

    async fn consume(&self, topic: &str, group: &str, want: usize, seen: &Seen) {
        self.create_group(topic, group).await;
        let client = Self::client(&self.url).await;
        let streams = Self::streams(topic);
        let ids = vec![">"; PARTITIONS];
        while (seen.count.load(Ordering::SeqCst) as usize) < want {
            let response: Value = client
                .xreadgroup(
                    group,
                    "member",
                    Some(BATCH as u64),
                    Some(2_000),
                    false,
                    streams.clone(),
                    ids.clone(),
                )
                .await
                .expect("XREADGROUP");
            let entries = Self::entries(response);
            if entries.is_empty() {
                continue;
            }
            Self::ack(&client, group, &entries).await;
            seen.record(entries.into_iter().map(|(_, _, v)| v)).await;
        }
        let _ = client.quit().await;
    }

    async fn redelivery(&self, topic: &str, group: &str, n: usize) -> f64 {
        self.create_group(topic, group).await;
        let streams = Self::streams(topic);
        let dead = Self::client(&self.url).await;
        let mut taken = 0;
        while taken < n {
            let response: Value = dead
                .xreadgroup(
                    group,
                    "dead",
                    Some(n as u64),
                    Some(1_000),
                    false,
                    streams.clone(),
                    vec![">"; PARTITIONS],
                )
                .await
                .expect("XREADGROUP");
            taken += Self::entries(response).len();
        }
        let read = Instant::now();
        let _ = dead.quit().await;
        let mut claimed = 0;
        while claimed < n {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let pipeline = self.client.pipeline();
            for stream in &streams {
                let _: () = pipeline
                    .xautoclaim(
                        stream,
                        group,
                        "heir",
                        DEAD_AFTER.as_millis() as u64,
                        "0-0",
                        Some(n as u64),
                        true,
                    )
                    .await
                    .expect("queued");
            }
            let replies: Vec<Value> = pipeline.all().await.expect("XAUTOCLAIM");
            for reply in replies {
                // [next-start, [ids…], [deleted…]] with JUSTID.
                if let Value::Array(parts) = reply
                    && let Some(Value::Array(ids)) = parts.get(1)
                {
                    claimed += ids.len();
                }
            }
        }
        read.elapsed().as_secs_f64()
    }

    async fn cleanup(&self, topic: &str) {
        let _: Result<(), _> = self.client.del(Self::streams(topic)).await;
    }
}

struct Nats {
    js: jetstream::Context,
    url: String,
}

impl Nats {
    async fn connect(url: &str) -> Self {
        let client = async_nats::connect(url).await.expect("NATS answers");
        Self {
            js: jetstream::new(client),
            url: url.to_owned(),
        }
    }

    async fn consumer(
        js: &jetstream::Context,
        topic: &str,
        group: &str,
        ack: AckPolicy,
    ) -> jetstream::consumer::Consumer<pull::Config> {
        let stream = js.get_stream(topic).await.expect("the stream");
        stream
            .get_or_create_consumer(
                group,
                pull::Config {
                    durable_name: Some(group.to_owned()),
                    ack_policy: ack,
                    ack_wait: DEAD_AFTER,
                    deliver_policy: DeliverPolicy::All,
                    max_ack_pending: 100_000,
                    ..Default::default()
                },
            )
            .await
            .expect("a consumer")
    }
}

impl Bus for Nats {
    async fn setup(&self, topic: &str) {
        self.js
            .get_or_create_stream(stream::Config {
                name: topic.to_owned(),
                subjects: vec![format!("{topic}.*")],
                ..Default::default()
            })
            .await
            .expect("a stream");
    }

    async fn send(&self, topic: &str, batch: Vec<(usize, Bytes)>) {
        let mut acks = Vec::with_capacity(batch.len());
        for (partition, payload) in batch {
            acks.push(
                self.js
                    .publish(format!("{topic}.{partition}"), payload)
                    .await
                    .expect("published"),
            );
        }
        for ack in
            futures_util::future::join_all(acks.into_iter().map(IntoFuture::into_future)).await
        {
            ack.expect("acked");
        }
    }

    async fn consume(&self, topic: &str, group: &str, want: usize, seen: &Seen) {
        let consumer = Self::consumer(&self.js, topic, group, AckPolicy::All).await;
        // Pull requests of up to 256 kept open; the server pushes each message as it comes.
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(BATCH)
            .messages()
            .await
            .expect("a pull");
        while (seen.count.load(Ordering::SeqCst) as usize) < want {
            let Some(Ok(first)) = messages.next().await else {
                panic!("the NATS pull ended");
            };
            let mut payloads = vec![first.payload.clone()];
            let mut last = first;
            // What is already there joins the batch; one ack-all covers it.
            while payloads.len() < BATCH {
                match messages.next().now_or_never() {
                    Some(Some(Ok(message))) => {
                        payloads.push(message.payload.clone());
                        last = message;
                    }
                    _ => break,
                }
            }
            last.ack_with(AckKind::Ack).await.expect("ack");
            seen.record(payloads).await;
        }
    }

    async fn redelivery(&self, topic: &str, group: &str, n: usize) -> f64 {
        let dead = jetstream::new(async_nats::connect(&self.url).await.expect("NATS answers"));
        let consumer = Self::consumer(&dead, topic, group, AckPolicy::Explicit).await;
        let mut taken = 0;
        while taken < n {
            let mut batch = consumer
                .fetch()
                .max_messages(n)
                .messages()
                .await
                .expect("a pull");
            while let Some(Ok(_)) = batch.next().await {
                taken += 1;
            }
        }
        let read = Instant::now();
        drop(consumer);
        drop(dead);
        let heir = Self::consumer(&self.js, topic, group, AckPolicy::Explicit).await;
        let mut got = 0;
        let mut messages = heir
            .stream()
            .max_messages_per_batch(BATCH)
            .messages()
            .await
            .expect("a pull");
        while got < n {
            match messages.next().await {
                Some(Ok(message)) => {
                    got += 1;
                    message.ack().await.expect("ack");
                }
                Some(Err(e)) => panic!("NATS: {e}"),
                None => break,
            }
        }
        read.elapsed().as_secs_f64()
    }

    async fn cleanup(&self, topic: &str) {
        let _ = self.js.delete_stream(topic).await;
    }
}
