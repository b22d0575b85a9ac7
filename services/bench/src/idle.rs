//! Idle connections: what each costs the server.

use std::time::{Duration, Instant};

use futures_util::StreamExt;

use crate::{client::Setup, report};

/// Lets the server finish what the last connections started.
async fn settle() {
    tokio::time::sleep(Duration::from_secs(3)).await;
}

pub(crate) async fn run(
    setup: &Setup,
    pid: Option<u32>,
    users: usize,
    conns: usize,
    hold: Duration,
) -> Result<(), String> {
    println!("scenario: idle  users={users} connections per user={conns} hold={hold:?}");
    let people = setup.users("idle", users).await?;
    let who = people
        .iter()
        .flat_map(|u| std::iter::repeat_n(u.clone(), conns))
        .map(|u| (u, setup.receive_url.clone()))
        .collect::<Vec<_>>();
    // Memory is read between two equal halves of the connections, so what setup left behind
    // (registrations, the allocator's caches) does not count.
    let half = who.len() / 2;
    let mut second = who;
    let first = second.drain(..half).collect::<Vec<_>>();
    let started = Instant::now();
    let mut sockets = setup.sockets(first).await?;
    settle().await;
    let middle = report::rss_kib(pid);
    sockets.extend(setup.sockets(second).await?);
    let opened = started.elapsed();
    let total = sockets.len();
    println!(
        "opened {total} connections in {:.1} s ({:.0}/s)",
        opened.as_secs_f64(),
        report::rate(total, opened)
    );
    // Each socket is read (so pings are answered) until the hold ends.
    let until = tokio::time::Instant::now() + hold;
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                loop {
                    match tokio::time::timeout_at(until, ws.next()).await {
                        Err(_) => return true,
                        Ok(Some(Ok(_))) => {}
                        Ok(_) => return false,
                    }
                }
            })
        })
        .collect();
    settle().await;
    let after = report::rss_kib(pid);
    if let (Some(middle), Some(after)) = (middle, after) {
        let added = total - half;
        let per = (after.saturating_sub(middle)) as f64 * 1024.0 / added.max(1) as f64;
        println!(
            "server RSS: {:.1} MiB with {half} connections, {:.1} MiB with {total}: {:.0} bytes ({:.2} KiB) per connection",
            middle as f64 / 1024.0,
            after as f64 / 1024.0,
            per,
            per / 1024.0
        );
    } else {
        println!("{}", report::memory(pid, None));
    }
    let mut open = 0;
    for reader in readers {
        if reader.await.unwrap_or(false) {
            open += 1;
        }
    }
    println!("still open after the hold: {open} of {total}");
    Ok(())
}
