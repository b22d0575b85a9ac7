//! One large group: how long a message takes to reach every online member.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::{
    client::{Setup, Ws, json, micros_since, receive},
    report,
};

/// Member ids per request (a request body is at most 64 KiB).
const BATCH: usize = 1500;
/// How long after the last send the bench waits for stragglers.
const GRACE: Duration = Duration::from_secs(20);

pub(crate) async fn run(
    setup: &Setup,
    pid: Option<u32>,
    members: usize,
    messages: usize,
    rate: u32,
) -> Result<(), String> {
    println!("scenario: group  members={members} messages={messages} rate={rate}/s");
    let owner = setup.users("go", 1).await?.remove(0);
    let others = setup.users("gm", members.saturating_sub(1)).await?;
    let ids: Vec<&str> = others.iter().map(|u| u.id.as_str()).collect();
    let mut batches = ids.chunks(BATCH);
    let first = batches.next().unwrap_or_default();
    let created = setup
        .post(
            "/api/v1/groups/create",
            Some(&owner.token),
            json!({"name": "bench", "member_ids": first}),
        )
        .await
        .map_err(|e| format!("{e} (a group this large needs GOCHAT_REPO__MAX_GROUP_MEMBERS)"))?;
    let group = created["group"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let conversation = created["conversation_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for batch in batches {
        let path = format!("/api/v1/groups/{group}/members");
        setup
            .post(&path, Some(&owner.token), json!({"user_ids": batch}))
            .await?;
    }
    let receivers = setup
        .sockets(
            others
                .into_iter()
                .map(|u| (u, setup.receive_url.clone()))
                .collect(),
        )
        .await?;
    let mut sender = setup
        .sockets(vec![(owner, setup.send_url.clone())])
        .await?
        .remove(0);
    let before = report::rss_kib(pid);

    let origin = Instant::now();
    let stop = tokio::time::Instant::now()
        + Duration::from_secs_f64(messages as f64 / f64::from(rate.max(1)))
        + GRACE;
    let receiving: Vec<_> = receivers
        .into_iter()
        .map(|ws| tokio::spawn(receiver(ws, messages, origin, stop)))
        .collect();
    let mut acks = Vec::new();
    let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    for k in 0..messages {
        let at = micros_since(origin);
        let frame = json!({"type": "message", "data": {
            "conversation_id": conversation, "content": format!("{k}:{at}"),
            "message_type": "text", "client_msg_id": k.to_string(),
        }});
        sender
            .send(Message::text(frame.to_string()))
            .await
            .map_err(|e| e.to_string())?;
        acks.push(ack(&mut sender, origin, at).await?);
        tokio::time::sleep(period).await;
    }
    let mut all = Vec::new();
    let mut slowest: BTreeMap<usize, u64> = BTreeMap::new();
    for task in receiving {
        for (k, latency) in task.await.map_err(|e| e.to_string())? {
            all.push(latency);
            let worst = slowest.entry(k).or_default();
            *worst = (*worst).max(latency);
        }
    }
    let expected = messages * members.saturating_sub(1);
    println!(
        "sent {messages}  acked {}  delivered {}  expected {expected}",
        acks.len(),
        all.len()
    );
    println!(
        "{}",
        report::latency("send → ack                        ", acks)
    );
    println!(
        "{}",
        report::latency("send → delivery (each member)     ", all)
    );
    println!(
        "{}",
        report::latency(
            "send → delivered to every member  ",
            slowest.into_values().collect()
        )
    );
    println!("{}", report::memory(pid, before));
    Ok(())
}

/// Waits for the ack of the message sent at `at`; its latency (µs).
async fn ack(ws: &mut Ws, origin: Instant, at: u64) -> Result<u64, String> {
    loop {
        let frame = tokio::time::timeout(GRACE, ws.next())
            .await
            .map_err(|_| "no ack within 20 s".to_owned())?;
        let Some(Ok(frame)) = frame else {
            return Err("the sender's socket closed".to_owned());
        };
        if let Some(v) = json(&frame) {
            match v["type"].as_str() {
                Some("ack") => return Ok(micros_since(origin).saturating_sub(at)),
                Some("error") => return Err(format!("refused: {v}")),
                _ => {}
            }
        }
    }
}

/// Reads the group's messages; `(message index, latency µs)` of each.
async fn receiver(
    ws: Ws,
    expected: usize,
    origin: Instant,
    stop: tokio::time::Instant,
) -> Vec<(usize, u64)> {
    receive(ws, expected, stop, |content| {
        let (k, at) = content.split_once(':')?;
        let (k, at) = (k.parse::<usize>().ok()?, at.parse::<u64>().ok()?);
        Some((k, micros_since(origin).saturating_sub(at)))
    })
    .await
}
