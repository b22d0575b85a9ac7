//! The security controls a client can reach (docs/security.md), checked from outside on the
//! binary and on the cluster: each scenario failed before its control existed.

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

use super::{
    Client, User,
    scenarios::{Target, code},
    unique,
};

async fn login(c: &Client, name: &str, password: &str) -> (u16, Value) {
    c.post(
        "/api/v1/auth/login",
        None,
        json!({"username": name, "password": password}),
    )
    .await
}

/// Padding, case and full-width letters name one account, so they share one login bucket:
/// guessing through variants is limited like guessing the plain name.
pub(crate) async fn usernames_are_normalised(t: &Target) {
    let name = unique("pad");
    let (status, body) =
        t.a.post(
            "/api/v1/users/register",
            None,
            json!({"username": format!("  {}\t", name.to_uppercase()), "password": "correct horse"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["user"]["username"], name.as_str(), "stored normalised");
    let (status, body) =
        t.a.post(
            "/api/v1/users/register",
            None,
            json!({"username": format!("{name} "), "password": "correct horse"}),
        )
        .await;
    assert_eq!((status, code(&body)), (409, 1007), "a padded twin: {body}");
    let wide: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' => char::from_u32(u32::from(c) - 0x61 + 0xff41).unwrap_or(c),
            c => c,
        })
        .collect();
    let (status, body) = login(&t.b, &wide, "correct horse").await;
    assert_eq!(
        status, 200,
        "full-width letters are the same account: {body}"
    );

    let variants = [
        name.clone(),
        format!(" {name}"),
        format!("{name} "),
        name.to_uppercase(),
        wide,
    ];
    let mut limited = None;
    for attempt in 0..40 {
        let (status, body) = login(&t.b, &variants[attempt % variants.len()], "wrong horse").await;
        if status == 429 {
            assert_eq!(code(&body), 1006, "{body}");
            limited = Some(attempt);
            break;
        }
        assert_eq!((status, code(&body)), (401, 1002), "{body}");
    }
    assert!(
        limited.is_some_and(|n| n <= 12),
        "padded guesses share the account's bucket: limited after {limited:?}"
    );
}

/// 300 registrations from one address, 64 at a time: some are refused with 1006 (the
/// per-address limit, or the bounded hashing queue), none fails otherwise.
pub(crate) async fn register_floods_are_refused(t: &Target) {
    let run = unique("fl");
    let mut statuses = Vec::new();
    for chunk in (0..300).collect::<Vec<_>>().chunks(64) {
        let calls = chunk.iter().map(|i| {
            let name = format!("{run}x{i}");
            async move {
                let (status, body) =
                    t.a.post(
                        "/api/v1/users/register",
                        None,
                        json!({"username": name, "password": "correct horse"}),
                    )
                    .await;
                (status, code(&body))
            }
        });
        statuses.extend(join_all(calls).await);
    }
    let refused = statuses.iter().filter(|s| **s == (429, 1006)).count();
    let created = statuses.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(refused + created, 300, "only 201 or 429/1006: {statuses:?}");
    assert!(refused > 0, "a flood from one address is refused in part");
}

/// A refresh token used twice ends its session: the rotated pair stops working too.
pub(crate) async fn refresh_reuse_ends_the_session(t: &Target) {
    let ann = t.a.user("ann").await;
    let refresh = |token: String| async move {
        t.b.post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": token}),
        )
        .await
    };
    let (status, rotated) = refresh(ann.refresh.clone()).await;
    assert_eq!(status, 200, "{rotated}");
    let (status, body) = refresh(ann.refresh.clone()).await;
    assert_eq!((status, code(&body)), (401, 1002), "reused: {body}");
    let access = rotated["access_token"].as_str().unwrap();
    let (status, body) = t.a.get("/api/v1/users/profile", access).await;
    assert_eq!(
        (status, code(&body)),
        (401, 1002),
        "the session ended: {body}"
    );
    let (status, body) = refresh(rotated["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!((status, code(&body)), (401, 1002), "{body}");
}

/// A resend is answered with its ack and never delivered again, whatever its content.
pub(crate) async fn resends_are_acked_not_routed(t: &Target) {
    let ann = t.a.user("ann").await;
    let bob = t.a.user("bob").await;
    let conversation = t.a.single(&ann, &bob).await;
    let mut receiver = t.b.socket(&bob).await;
    let mut sender = t.a.socket(&ann).await;
    sender.message(&conversation, "original", "same-id").await;
    let first = sender.expect("ack").await;
    let delivered = receiver.expect("message").await;
    assert_eq!(delivered["data"]["content"], "original");
    for i in 0..5 {
        sender
            .message(&conversation, &format!("changed {i}"), "same-id")
            .await;
        let again = sender.expect("ack").await;
        assert_eq!(again["data"], first["data"], "the first answer");
    }
    sender.message(&conversation, "next", "next-id").await;
    sender.expect("ack").await;
    let next = receiver.expect("message").await;
    assert_eq!(
        next["data"]["content"], "next",
        "no resend reached the receiver before the next message: {next}"
    );
    let history = t.a.history(&ann, &conversation).await;
    let contents: Vec<&str> = history
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert_eq!(contents, ["original", "next"]);
}

/// The world channel has a much lower limit than other conversations.
pub(crate) async fn world_is_limited(t: &Target) {
    let ann = t.a.user("ann").await;
    let mut limited = false;
    for i in 0..20 {
        let (status, body) =
            t.a.post(
                "/api/v1/messages/send",
                Some(&ann.access),
                json!({"conversation_id": "world", "content": "spam", "message_type": "text", "client_msg_id": format!("w{i}")}),
            )
            .await;
        if status == 429 {
            assert_eq!(code(&body), 1006, "{body}");
            limited = true;
            break;
        }
        assert_eq!(status, 200, "{body}");
    }
    assert!(limited, "20 world messages at once are limited");
}

async fn join(c: &Client, user: &User, group: &str) -> (u16, Value) {
    c.call(
        Method::POST,
        &format!("/api/v1/groups/{group}/join"),
        Some(&user.access),
        None,
    )
    .await
}

/// Removal bans until an admin adds the member again; a member reads from where they joined;
/// an invite-only group is invisible from outside.
pub(crate) async fn group_removal_bans_and_history_starts_at_join(t: &Target) {
    let ann = t.a.user("ann").await;
    let bob = t.a.user("bob").await;
    let cat = t.a.user("cat").await;
    let (status, created) =
        t.a.post(
            "/api/v1/groups/create",
            Some(&ann.access),
            json!({"name": "Team", "member_ids": [bob.id]}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["group"]["join_mode"], "open");
    assert_eq!(created["group"]["history_visible"], false);
    let group = created["group"]["id"].as_str().unwrap().to_owned();
    let conversation = created["conversation_id"].as_str().unwrap().to_owned();
    t.a.send(&ann, &conversation, "before cat").await;

    // Cat joins later and reads only from then on.
    assert_eq!(join(&t.b, &cat, &group).await.0, 204);
    t.a.send(&ann, &conversation, "after cat").await;
    let seen: Vec<Value> = t.b.history(&cat, &conversation).await;
    let contents: Vec<&str> = seen.iter().filter_map(|m| m["content"].as_str()).collect();
    assert_eq!(contents, ["after cat"], "history starts at the join point");
    assert_eq!(t.b.history(&bob, &conversation).await.len(), 2);

    // Removed: no rejoin, no reading, until an admin adds them.
    let (status, _) =
        t.a.call(
            Method::DELETE,
            &format!("/api/v1/groups/{group}/members/{}", bob.id),
            Some(&ann.access),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, body) = join(&t.b, &bob, &group).await;
    assert_eq!((status, code(&body)), (403, 1005), "banned: {body}");
    let (status, body) =
        t.b.post(
            "/api/v1/messages/send",
            Some(&bob.access),
            json!({"conversation_id": conversation, "content": "still here?", "message_type": "text", "client_msg_id": "gone"}),
        )
        .await;
    assert_eq!((status, code(&body)), (403, 1005), "no writing: {body}");
    let (status, body) =
        t.b.get(
            &format!("/api/v1/messages/history?conversation_id={conversation}"),
            &bob.access,
        )
        .await;
    assert_eq!((status, code(&body)), (403, 1005), "{body}");
    let (status, body) =
        t.a.post(
            &format!("/api/v1/groups/{group}/members"),
            Some(&ann.access),
            json!({"user_ids": [bob.id]}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, _) =
        t.b.get(
            &format!("/api/v1/messages/history?conversation_id={conversation}"),
            &bob.access,
        )
        .await;
    assert_eq!(status, 200, "added back by an admin");

    // An invite-only group: not found from outside, no joining.
    let (status, created) =
        t.a.post(
            "/api/v1/groups/create",
            Some(&ann.access),
            json!({"name": "Private", "join_mode": "invite"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["group"]["join_mode"], "invite");
    let private = created["group"]["id"].as_str().unwrap();
    let (status, body) =
        t.b.get(&format!("/api/v1/groups/{private}"), &cat.access)
            .await;
    assert_eq!((status, code(&body)), (404, 1003), "{body}");
    let (status, body) = join(&t.b, &cat, private).await;
    assert_eq!((status, code(&body)), (404, 1003), "{body}");
    let (status, body) =
        t.a.post(
            "/api/v1/groups/create",
            Some(&ann.access),
            json!({"name": "Odd", "join_mode": "secret"}),
        )
        .await;
    assert_eq!((status, code(&body)), (400, 1001), "{body}");
}

/// A read pointer never passes the conversation's last seq; oversized or malformed profile
/// fields are a 1001.
pub(crate) async fn reads_are_clamped_and_fields_bounded(t: &Target) {
    let ann = t.a.user("ann").await;
    let bob = t.a.user("bob").await;
    let conversation = t.a.single(&ann, &bob).await;
    t.a.send(&bob, &conversation, "one").await;
    let (status, body) =
        t.a.post(
            "/api/v1/messages/read",
            Some(&ann.access),
            json!({"conversation_id": conversation, "seq": 1_000_000}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (_, unread) = t.a.get("/api/v1/messages/unread", &ann.access).await;
    let entry = unread["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["conversation_id"] == conversation.as_str())
        .cloned()
        .unwrap_or(Value::Null);
    assert!(
        entry.is_null() || entry["read_seq"] == 1,
        "clamped to the last seq: {entry}"
    );
    // The next message counts as unread again.
    t.a.send(&bob, &conversation, "two").await;
    let (_, unread) = t.a.get("/api/v1/messages/unread", &ann.access).await;
    assert_eq!(unread["total"], 1, "{unread}");

    let (status, body) =
        t.a.post(
            "/api/v1/groups/create",
            Some(&ann.access),
            json!({"name": "Big", "description": "x".repeat(60_000)}),
        )
        .await;
    assert_eq!((status, code(&body)), (400, 1001), "{body}");
    let (status, body) =
        t.a.post(
            "/api/v1/users/register",
            None,
            json!({"username": unique("em"), "password": "correct horse", "email": "not an email"}),
        )
        .await;
    assert_eq!((status, code(&body)), (400, 1001), "{body}");
}
