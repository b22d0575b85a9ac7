//! Retention of the in-process broker: partitions bounded by bytes as well as records, the
//! prefix every group has committed dropped, offsets unchanged by either. In-process only:
//! Kafka's retention runs in the broker, on its own schedule.

mod common;

use std::time::Duration;

use gochat_core::{Context, Env};
use gochat_mq::{Backend, Config, MemoryConfig, Message, Mq, Options, Received, Retained, Start};
use gochat_testkit::Fixture;

use common::{captured_log, collect, collector, gated, take, until};

/// A provider on a broker of its own, with `tune` applied to the broker's config.
async fn provider(fx: &Fixture, tune: impl FnOnce(&mut MemoryConfig), options: Options) -> Mq {
    let mut memory = MemoryConfig::named(fx.prefix());
    tune(&mut memory);
    let mut config = Config::for_env(Env::Development);
    config.backend = Backend::Memory(memory);
    config.consumer.commit_interval = Duration::from_millis(20);
    config.consumer.shutdown_grace = Duration::from_millis(200);
    gochat_mq::new(&Context::new(), config, options)
        .await
        .unwrap()
}

/// A one-partition topic.
async fn topic(mq: &Mq, fx: &Fixture, name: &str) -> String {
    let topic = fx.name(name);
    mq.admin().create_topic(&topic, 1).await.unwrap();
    topic
}

/// What partition 0 of `topic` keeps.
fn kept(mq: &Mq, topic: &str) -> Retained {
    mq.admin().retained(topic).unwrap()[0]
}

async fn send(mq: &Mq, topic: &str, value: String) -> i64 {
    mq.producer()
        .send(Message::new(topic, value))
        .await
        .unwrap()
        .offset
}

fn offsets(messages: &[Received]) -> Vec<i64> {
    messages.iter().map(|m| m.offset).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_by_bytes_under_large_records() {
    const BOUND: usize = 64 << 10;
    const RECORD: usize = 4 << 10;
    let fx = Fixture::new("bounded_by_bytes", "memory");
    let mq = provider(&fx, |m| m.retention_bytes = BOUND, Options::default()).await;
    let topic = topic(&mq, &fx, "large").await;

    // No group reads the topic yet: only the byte bound keeps memory down.
    for i in 0..200 {
        let offset = send(&mq, &topic, format!("{i:>RECORD$}")).await;
        assert_eq!(offset, i, "offsets are not renumbered");
        let kept = kept(&mq, &topic);
        assert!(kept.bytes <= BOUND, "{kept:?} after {i}");
    }
    let before = kept(&mq, &topic);
    let count = before.end - before.start;
    assert_eq!(before.end, 200);
    assert!(
        (8..=16).contains(&count),
        "16 records of 4 KiB fit in 64 KiB: {before:?}"
    );
    assert_eq!(
        i64::try_from(mq.stats().retention_dropped).unwrap(),
        200 - count,
        "every record the bound dropped is counted"
    );

    // A group that comes now reads what is kept, at the offsets it was sent with.
    let (subscription, mut rx) = collect(&mq, &fx.name("late"), &topic).await;
    let got = take(&mut rx, usize::try_from(count).unwrap()).await;
    assert_eq!(offsets(&got), (before.start..200).collect::<Vec<_>>());
    for message in &got {
        assert_eq!(
            message.value_str().unwrap().trim_start(),
            message.offset.to_string()
        );
    }
    // Once it committed them, nothing is left.
    until("the consumed records are dropped", || {
        let kept = kept(&mq, &topic);
        (kept.start, kept.end, kept.bytes) == (200, 200, 0)
    })
    .await;
    subscription.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumed_records_go_once_every_group_committed() {
    let fx = Fixture::new("consumed_prefix", "memory");
    let mq = provider(&fx, |_| {}, Options::default()).await;
    let topic = topic(&mq, &fx, "events").await;
    let (fast, mut fast_rx) = collect(&mq, &fx.name("fast"), &topic).await;
    let (slow, gate, mut slow_rx) = gated(&mq, &fx.name("slow"), &topic).await;
    for i in 0..10 {
        send(&mq, &topic, format!("m{i}")).await;
    }
    take(&mut fast_rx, 10).await;
    until("the fast group committed everything", || {
        fast.stats().lag == 0
    })
    .await;
    until("the slow group's backlog shows", || slow.stats().lag == 10).await;
    let kept_alive = kept(&mq, &topic);
    assert_eq!(
        (kept_alive.start, kept_alive.end),
        (0, 10),
        "the slow group keeps its records"
    );
    assert!(kept_alive.bytes > 0);

    gate.add_permits(4);
    take(&mut slow_rx, 4).await;
    until("the prefix both groups committed is dropped", || {
        kept(&mq, &topic).start == 4
    })
    .await;
    assert_eq!(kept(&mq, &topic).end, 10);
    until("the slow group's lag follows", || slow.stats().lag == 6).await;

    gate.add_permits(6);
    take(&mut slow_rx, 6).await;
    until("everything consumed is dropped", || {
        let kept = kept(&mq, &topic);
        (kept.start, kept.end, kept.bytes) == (10, 10, 0)
    })
    .await;
    assert_eq!(
        mq.stats().retention_dropped,
        0,
        "consumed records are no loss"
    );

    // Offsets go on where they were; a group that subscribes now starts at the oldest kept.
    gate.add_permits(1);
    assert_eq!(send(&mq, &topic, "m10".to_owned()).await, 10);
    let (late, mut late_rx) = collect(&mq, &fx.name("late"), &topic).await;
    let first = take(&mut late_rx, 1).await;
    assert_eq!((first[0].offset, first[0].value_str()), (10, Some("m10")));
    assert_eq!(offsets(&take(&mut fast_rx, 1).await), [10]);
    assert_eq!(offsets(&take(&mut slow_rx, 1).await), [10]);
    until("all three committed offset 10", || {
        kept(&mq, &topic).start == 11
    })
    .await;
    for subscription in [fast, slow, late] {
        subscription.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_that_left_keeps_what_it_has_not_committed() {
    let fx = Fixture::new("group_left", "memory");
    let mq = provider(&fx, |_| {}, Options::default()).await;
    let topic = topic(&mq, &fx, "jobs").await;
    let group = fx.name("workers");
    for i in 0..10 {
        send(&mq, &topic, format!("job{i}")).await;
    }

    // The group handles five jobs, hangs on the sixth and is stopped: it committed 5.
    let (gone, gate, mut gone_rx) = gated(&mq, &group, &topic).await;
    gate.add_permits(5);
    take(&mut gone_rx, 5).await;
    gone.shutdown().await;

    // It was the only group: what it committed is gone, and a group that subscribes now
    // starts at the oldest record kept.
    assert_eq!((kept(&mq, &topic).start, kept(&mq, &topic).end), (5, 10));
    let (other, mut other_rx) = collect(&mq, &fx.name("other"), &topic).await;
    assert_eq!(offsets(&take(&mut other_rx, 5).await), [5, 6, 7, 8, 9]);
    until("the other group committed everything", || {
        other.stats().lag == 0
    })
    .await;
    assert_eq!(
        (kept(&mq, &topic).start, kept(&mq, &topic).end),
        (5, 10),
        "the records the group that left has not committed are kept"
    );

    // Back, the group resumes at its committed offset.
    let (back, mut back_rx) = collect(&mq, &group, &topic).await;
    assert_eq!(offsets(&take(&mut back_rx, 5).await), [5, 6, 7, 8, 9]);
    until("the rest is dropped once it committed", || {
        kept(&mq, &topic).start == 10
    })
    .await;
    back.shutdown().await;
    other.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_unread_records_and_says_so() {
    let fx = Fixture::new("unread_dropped", "memory");
    let (log, out) = captured_log();
    let mq = provider(&fx, |m| m.retention = 5, Options::default().logger(log)).await;
    let topic = topic(&mq, &fx, "flood").await;
    // A group that handles nothing: retention drops its records anyway, as Kafka's would.
    let (stuck, _gate, _rx) = gated(&mq, &fx.name("stuck"), &topic).await;
    for i in 0..20 {
        send(&mq, &topic, format!("m{i}")).await;
    }
    let kept = kept(&mq, &topic);
    assert_eq!((kept.start, kept.end), (15, 20));
    assert_eq!(mq.stats().retention_dropped, 15);
    until("the stuck group's lag counts only what is kept", || {
        stuck.stats().lag == 5
    })
    .await;

    let lines = out.json_lines().unwrap();
    let warnings: Vec<_> = lines
        .iter()
        .filter(|line| {
            line["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("retention dropped"))
        })
        .collect();
    assert_eq!(warnings.len(), 4, "at 1, 2, 4 and 8 records: {warnings:?}");
    let last = warnings[3];
    assert_eq!(last["level"], "WARN", "{last}");
    assert_eq!(last["total"], 8, "{last}");
    assert_eq!(last["topic"], topic.as_str(), "{last}");

    // A group that comes now starts at the oldest record kept.
    let (late, mut late_rx) = collect(&mq, &fx.name("late"), &topic).await;
    assert_eq!(offsets(&take(&mut late_rx, 5).await), [15, 16, 17, 18, 19]);
    late.shutdown().await;
    stuck.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_latest_group_holds_nothing_from_before_it_joined() {
    let fx = Fixture::new("latest_group", "memory");
    let mq = provider(&fx, |_| {}, Options::default()).await;
    let topic = topic(&mq, &fx, "news").await;
    for i in 0..5 {
        send(&mq, &topic, format!("old{i}")).await;
    }
    // A group starting at the end will never read offsets 0…4 …
    let (handler, mut latest_rx) = collector();
    let mut config = Config::default().consumer;
    config.start = Start::Latest;
    config.commit_interval = Duration::from_millis(20);
    let latest = mq
        .consumer(&fx.name("latest"))
        .config(config)
        .subscribe(&[&topic], handler)
        .await
        .unwrap();
    until("the latest group owns the partition", || {
        latest.assignment().len() == 1
    })
    .await;
    // … so once an earliest group has read them, they go, though the latest group has not
    // committed anything.
    let (earliest, mut earliest_rx) = collect(&mq, &fx.name("earliest"), &topic).await;
    take(&mut earliest_rx, 5).await;
    until("what neither group needs is dropped", || {
        kept(&mq, &topic).start == 5
    })
    .await;
    assert_eq!(send(&mq, &topic, "new".to_owned()).await, 5);
    assert_eq!(offsets(&take(&mut latest_rx, 1).await), [5]);
    assert_eq!(offsets(&take(&mut earliest_rx, 1).await), [5]);
    latest.shutdown().await;
    earliest.shutdown().await;
}
