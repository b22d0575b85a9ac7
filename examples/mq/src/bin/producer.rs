//! gochat-mq producer: awaited and pipelined sends; one key, one partition, in order.
//!
//! Run with `cargo run -p example-mq --bin producer` (in-process broker), or against Kafka
//! with `GOCHAT_MQ_BROKERS=127.0.0.1:9092 cargo run -p example-mq --bin producer`.

use gochat_core::Context;
use gochat_mq::{Message, Options};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctx = Context::new();
    let mq = gochat_mq::new(&ctx, example_mq::config()?, Options::default()).await?;
    let topic = format!("example-orders-{}", std::process::id());
    mq.admin().ensure_topic(&topic, 3).await?;
    let producer = mq.producer();

    // One at a time: each send waits for the broker.
    for customer in ["alice", "bob", "carol"] {
        let message = Message::json(topic.as_str(), &format!("{customer} opened a cart"))?
            .key(customer)
            .header("event", "cart.opened");
        let delivery = producer.send(message).await?;
        println!(
            "{customer}: partition {} offset {}",
            delivery.partition, delivery.offset
        );
    }

    // Pipelined: enqueue many, then await them all.
    let mut pending = Vec::new();
    for n in 0..100 {
        let customer = ["alice", "bob", "carol"][n % 3];
        let message = Message::new(topic.as_str(), format!("item {n}")).key(customer);
        pending.push((customer, producer.send_nowait(message)?));
    }
    let mut partitions = std::collections::BTreeMap::new();
    for (customer, sent) in pending {
        let delivery = sent.await?;
        partitions
            .entry(customer)
            .or_insert_with(Vec::new)
            .push(delivery.partition);
    }
    for (customer, seen) in &partitions {
        let first = seen[0];
        assert!(seen.iter().all(|p| *p == first), "one key, one partition");
        println!("{customer}: {} items, all on partition {first}", seen.len());
    }
    println!("stats: {:?}", mq.stats());
    mq.close().await;
    Ok(())
}
