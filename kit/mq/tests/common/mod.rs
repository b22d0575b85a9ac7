//! Helpers the mq test binaries share: collecting handlers and patient waits.

use std::{sync::Arc, time::Duration};

use gochat_clog::{Logger, MemoryWriter};
use gochat_core::{Context, Env};
use gochat_mq::{ConsumerConfig, HandlerError, Mq, Received, Subscription};
use tokio::{
    sync::{Semaphore, mpsc},
    time::{sleep, timeout},
};

/// Generous bounds so a hang fails instead of blocking CI; never a speed assertion.
pub(crate) const PATIENCE: Duration = Duration::from_secs(90);

/// A handler that passes every message to the returned receiver.
pub(crate) fn collector() -> (
    impl Fn(Received) -> std::future::Ready<Result<(), HandlerError>> + Send + Sync + 'static,
    mpsc::UnboundedReceiver<Received>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let handler = move |message: Received| {
        std::future::ready(
            tx.send(message)
                .map_err(|e| HandlerError::from(e.to_string())),
        )
    };
    (handler, rx)
}

/// A member of `group` reading `topic` whose messages arrive on the returned receiver.
pub(crate) async fn collect(
    mq: &Mq,
    group: &str,
    topic: &str,
) -> (Subscription, mpsc::UnboundedReceiver<Received>) {
    collect_with(mq, group, topic, None).await
}

/// [`collect`] with consumer settings of its own, if given.
pub(crate) async fn collect_with(
    mq: &Mq,
    group: &str,
    topic: &str,
    config: Option<ConsumerConfig>,
) -> (Subscription, mpsc::UnboundedReceiver<Received>) {
    let (handler, rx) = collector();
    let consumer = mq.consumer(group);
    let consumer = match config {
        Some(config) => consumer.config(config),
        None => consumer,
    };
    let subscription = consumer.subscribe(&[topic], handler).await.unwrap();
    (subscription, rx)
}

/// The next `n` messages, or a failure naming how many came.
pub(crate) async fn take(rx: &mut mpsc::UnboundedReceiver<Received>, n: usize) -> Vec<Received> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        match timeout(PATIENCE, rx.recv()).await {
            Ok(Some(message)) => got.push(message),
            _ => panic!("received {} of {n} messages", got.len()),
        }
    }
    got
}

/// Waits until `done` holds.
pub(crate) async fn until(what: &str, mut done: impl FnMut() -> bool) {
    timeout(PATIENCE, async {
        while !done() {
            sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
}

/// A member of `group` that handles a message only when `gate` gives it a permit, passing it
/// on to the receiver.
pub(crate) async fn gated(
    mq: &Mq,
    group: &str,
    topic: &str,
) -> (
    Subscription,
    Arc<Semaphore>,
    mpsc::UnboundedReceiver<Received>,
) {
    let gate = Arc::new(Semaphore::new(0));
    let (tx, rx) = mpsc::unbounded_channel();
    let handler = {
        let gate = gate.clone();
        move |message: Received| {
            let (gate, tx) = (gate.clone(), tx.clone());
            async move {
                gate.acquire()
                    .await
                    .map(tokio::sync::SemaphorePermit::forget)?;
                tx.send(message)
                    .map_err(|e| HandlerError::from(e.to_string()))
            }
        }
    };
    let subscription = mq
        .consumer(group)
        .subscribe(&[topic], handler)
        .await
        .unwrap();
    (subscription, gate, rx)
}

/// A production-format logger writing JSON lines to the returned writer.
pub(crate) fn captured_log() -> (Logger, MemoryWriter) {
    let out = MemoryWriter::new();
    let log = gochat_clog::new(
        &Context::new(),
        gochat_clog::Config::for_env(Env::Production),
        gochat_clog::Options::default().writer(out.clone()),
    )
    .unwrap();
    (log, out)
}
