//! End-to-end: the `gochat` binary (all four services, one process, SQLite under its data
//! dir), driven through real HTTP and WebSocket clients.

mod support;

use std::{collections::BTreeMap, path::Path};

use support::{
    Client, Proc,
    scenarios::{self, Target},
};

fn start(data_dir: &Path) -> Proc {
    let dir = data_dir.to_str().unwrap();
    Proc::spawn(
        env!("CARGO_BIN_EXE_gochat"),
        &["--http-addr", "127.0.0.1:0", "--data-dir", dir],
        &[],
        "gochat: listening on ",
    )
}

/// One gochat process; both "gateways" of the scenarios are its one gateway.
async fn with_gochat(scenario: impl AsyncFnOnce(&Target)) {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let client = Client::new(server.announced.clone());
    scenario(&Target {
        a: client.clone(),
        b: client,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_refresh_rotation_and_logout_kicks() {
    with_gochat(scenarios::accounts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_chat_acks_contiguous_seqs_multi_device_and_resends() {
    with_gochat(scenarios::single_chat).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_paging_unread_and_read_receipts() {
    with_gochat(scenarios::history_and_receipts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_roles_and_delivery() {
    with_gochat(scenarios::groups).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn world_channel_reaches_everyone() {
    with_gochat(scenarios::world).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_input_is_a_1001_and_harms_nothing() {
    with_gochat(scenarios::bad_input).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_keeps_every_acked_message_and_seq_continues() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let client = Client::new(server.announced.clone());
    let ann = client.user("ann").await;
    let bob = client.user("bob").await;
    let conversation = client.single(&ann, &bob).await;
    let mut socket = client.socket(&ann).await;
    // Many in flight at once, so the kill lands while the batcher is busy.
    for i in 0..40 {
        socket
            .message(&conversation, &format!("m{i}"), &format!("c{i}"))
            .await;
    }
    let mut acked = BTreeMap::new();
    while acked.len() < 30 {
        let ack = socket.expect("ack").await;
        let data = &ack["data"];
        acked.insert(
            data["seq"].as_i64().unwrap(),
            data["message_id"].as_str().unwrap().to_owned(),
        );
    }
    server.kill9();

    let server = start(dir.path());
    let client = Client::new(server.announced.clone());
    let ann = client.login(&ann.name).await;
    let history = client.history(&ann, &conversation).await;
    let stored: BTreeMap<i64, String> = history
        .iter()
        .map(|m| {
            (
                m["seq"].as_i64().unwrap(),
                m["message_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (seq, id) in &acked {
        assert_eq!(
            stored.get(seq),
            Some(id),
            "acked seq {seq} survives kill -9"
        );
    }
    let last = stored.keys().max().copied().unwrap_or(0);
    assert_eq!(
        stored.keys().copied().collect::<Vec<_>>(),
        (1..=last).collect::<Vec<_>>()
    );
    let ack = client.send(&ann, &conversation, "after the restart").await;
    assert_eq!(
        ack["seq"].as_i64(),
        Some(last + 1),
        "seq continues after the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_kicks_sockets_with_a_reason_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let client = Client::new(server.announced.clone());
    let ann = client.user("ann").await;
    let mut socket = client.socket(&ann).await;
    let stopped = tokio::task::spawn_blocking(move || server.terminate());
    assert_eq!(socket.closed().await.as_deref(), Some("shutdown"));
    assert!(
        stopped.await.unwrap(),
        "gochat exits with success on SIGTERM"
    );
}
