//! gochat-mq consumer group: two members share a topic's partitions; a failing message is
//! retried, then dead-lettered; when one member leaves, the other takes over its partitions.
//!
//! Run with `cargo run -p example-mq --bin consumer_group` (in-process broker), or against
//! Kafka with `GOCHAT_MQ_BROKERS=127.0.0.1:9092 cargo run -p example-mq --bin consumer_group`.

use std::time::Duration;

use gochat_core::Context;
use gochat_mq::{HandlerError, Message, Options, Received, dead_letter};

fn member(name: &'static str) -> impl Fn(Received) -> std::future::Ready<Result<(), HandlerError>> {
    move |message: Received| {
        let text = message.value_str().unwrap_or_default().to_owned();
        if text == "poison" {
            println!(
                "{name}: cannot handle offset {} (attempt {})",
                message.offset, message.attempt
            );
            return std::future::ready(Err("poison pill".into()));
        }
        println!(
            "{name}: partition {} offset {} {text:?}",
            message.partition, message.offset
        );
        std::future::ready(Ok(()))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctx = Context::new();
    let mut config = example_mq::config()?;
    config.consumer.retry_backoff = Duration::from_millis(50);
    let mq = gochat_mq::new(&ctx, config, Options::default()).await?;
    let topic = format!("example-jobs-{}", std::process::id());
    mq.admin().ensure_topic(&topic, 4).await?;

    let group = "example-workers";
    let first = mq
        .consumer(group)
        .subscribe(&[&topic], member("first"))
        .await?;
    let second = mq
        .consumer(group)
        .subscribe(&[&topic], member("second"))
        .await?;
    let letters = mq
        .consumer("example-dead-letters")
        .subscribe(&[&format!("{topic}.dlq")], |message: Received| async move {
            let error = message.headers.get_str(dead_letter::ERROR).unwrap_or("?");
            println!("dead letter: {:?} ({error})", message.value_str());
            Ok::<_, HandlerError>(())
        })
        .await?;
    // A rebalance takes a moment: until both members hold partitions.
    wait_for(|| {
        let (a, b) = (first.assignment().len(), second.assignment().len());
        a > 0 && b > 0 && a + b == 4
    })
    .await?;
    println!("first owns {:?}", first.assignment());
    println!("second owns {:?}", second.assignment());

    for n in 0..8 {
        let text = if n == 5 {
            "poison".to_owned()
        } else {
            format!("job {n}")
        };
        mq.producer()
            .send(Message::new(topic.as_str(), text).key(format!("k{n}")))
            .await?;
    }
    wait_for(|| first.stats().consumed + second.stats().consumed == 8).await?;

    println!("second leaves the group");
    second.shutdown().await;
    wait_for(|| first.assignment().len() == 4).await?;
    println!("first now owns {:?}", first.assignment());
    let before = first.stats().consumed;
    mq.producer()
        .send(Message::new(topic.as_str(), "after the rebalance"))
        .await?;
    wait_for(|| first.stats().consumed == before + 1).await?;

    wait_for(|| letters.stats().consumed == 1).await?;
    println!("stats: {:?}", mq.stats());
    mq.close().await;
    Ok(())
}

async fn wait_for(mut done: impl FnMut() -> bool) -> Result<(), &'static str> {
    for _ in 0..1_500 {
        if done() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err("the example did not reach the expected state in 30 s")
}
