//! Single chats: senders at a total rate, receivers on the other gateway.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt, stream};
use serde_json::json;
use tokio::time::{MissedTickBehavior, interval, sleep_until};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    client::{Setup, Ws, json, micros_since, receive},
    report,
};

/// How long after the last send the bench waits for stragglers.
const GRACE: Duration = Duration::from_secs(10);

pub(crate) async fn run(
    setup: &Setup,
    pid: Option<u32>,
    pairs: usize,
    rate: u32,
    duration: Duration,
) -> Result<(), String> {
    println!("scenario: chat  pairs={pairs} rate={rate}/s duration={duration:?}");
    let senders = setup.users("s", pairs).await?;
    let receivers = setup.users("r", pairs).await?;
    let conversations = stream::iter(senders.iter().zip(&receivers))
        .map(|(s, r)| async move {
            let body = json!({"peer_user_id": r.id});
            let answer = setup
                .post("/api/v1/conversations/create", Some(&s.token), body)
                .await?;
            Ok::<_, String>(
                answer["conversation"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .buffered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let send_sockets = setup
        .sockets(
            senders
                .into_iter()
                .map(|u| (u, setup.send_url.clone()))
                .collect(),
        )
        .await?;
    let receive_sockets = setup
        .sockets(
            receivers
                .into_iter()
                .map(|u| (u, setup.receive_url.clone()))
                .collect(),
        )
        .await?;
    let before = report::rss_kib(pid);

    let per_sender = f64::from(rate) / pairs as f64;
    let period = Duration::from_secs_f64(1.0 / per_sender.max(1e-6));
    let quota = (per_sender * duration.as_secs_f64()).round().max(1.0) as usize;
    let origin = Instant::now();
    let stop = tokio::time::Instant::now() + duration + GRACE;
    let sending: Vec<_> = send_sockets
        .into_iter()
        .zip(conversations)
        .map(|(ws, conversation)| {
            tokio::spawn(sender(ws, conversation, quota, period, origin, stop))
        })
        .collect();
    let receiving: Vec<_> = receive_sockets
        .into_iter()
        .map(|ws| tokio::spawn(receiver(ws, quota, origin, stop)))
        .collect();
    let (mut sent, mut acks, mut deliveries) = (0, Vec::new(), Vec::new());
    for task in sending {
        let (n, latencies) = task.await.map_err(|e| e.to_string())?;
        sent += n;
        acks.extend(latencies);
    }
    let sending_took = origin.elapsed();
    for task in receiving {
        deliveries.extend(task.await.map_err(|e| e.to_string())?);
    }
    println!(
        "sent {sent}  acked {}  delivered {}  expected {sent}",
        acks.len(),
        deliveries.len()
    );
    println!(
        "throughput: {:.0} acked messages/s over {:.1} s (target {rate}/s)",
        report::rate(acks.len(), sending_took.min(duration + GRACE)),
        sending_took.as_secs_f64()
    );
    println!("{}", report::latency("send → ack     ", acks));
    println!("{}", report::latency("send → delivery", deliveries));
    println!("{}", report::memory(pid, before));
    Ok(())
}

/// Sends `quota` messages, one per `period`; the count sent and each ack's latency (µs).
async fn sender(
    ws: Ws,
    conversation: String,
    quota: usize,
    period: Duration,
    origin: Instant,
    stop: tokio::time::Instant,
) -> (usize, Vec<u64>) {
    let (mut sink, mut frames) = ws.split();
    let mut tick = interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut pending: HashMap<String, u64> = HashMap::new();
    let (mut sent, mut acks) = (0, Vec::with_capacity(quota));
    loop {
        tokio::select! {
            _ = tick.tick(), if sent < quota => {
                let at = micros_since(origin);
                let id = sent.to_string();
                let frame = json!({"type": "message", "data": {
                    "conversation_id": conversation, "content": at.to_string(),
                    "message_type": "text", "client_msg_id": id,
                }});
                if sink.send(Message::text(frame.to_string())).await.is_err() {
                    break;
                }
                pending.insert(id, at);
                sent += 1;
            }
            frame = frames.next() => {
                let Some(Ok(frame)) = frame else { break };
                if let Some(v) = json(&frame)
                    && v["type"] == "ack"
                    && let Some(at) = v["data"]["client_msg_id"].as_str().and_then(|id| pending.remove(id))
                {
                    acks.push(micros_since(origin).saturating_sub(at));
                    if acks.len() == quota {
                        break;
                    }
                }
            }
            () = sleep_until(stop) => break,
        }
    }
    (sent, acks)
}

/// Reads messages until `expected` arrived; each one's latency (µs).
async fn receiver(
    ws: Ws,
    expected: usize,
    origin: Instant,
    stop: tokio::time::Instant,
) -> Vec<u64> {
    receive(ws, expected, stop, |content| {
        let at = content.parse::<u64>().ok()?;
        Some(micros_since(origin).saturating_sub(at))
    })
    .await
}
