//! What CONTRACT.md promises, checked through real HTTP and WebSocket clients. `a` and `b`
//! are two gateways of one system (the same one, standalone): senders use `a`, receivers
//! `b`, so in the cluster every delivery crosses gateways.

use reqwest::Method;
use serde_json::{Value, json};

use super::{Client, unique};

/// Two gateways of one system.
pub(crate) struct Target {
    pub(crate) a: Client,
    pub(crate) b: Client,
}

/// The contract's error code of an error body (0 when it has none).
pub(crate) fn code(body: &Value) -> i64 {
    body["code"].as_i64().unwrap_or_default()
}

/// Register, login, refresh with rotation, logout revoking both tokens and kicking sockets.
pub(crate) async fn accounts(t: &Target) {
    let ann = t.a.user("ann").await;
    let (status, body) =
        t.a.post(
            "/api/v1/users/register",
            None,
            json!({"username": ann.name, "password": "another one"}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (409, 1007),
        "a taken username: {body}"
    );
    let (status, body) =
        t.a.post(
            "/api/v1/users/register",
            None,
            json!({"username": "no spaces allowed", "password": "correct horse"}),
        )
        .await;
    assert_eq!((status, code(&body)), (400, 1001), "{body}");
    let (status, body) =
        t.a.post(
            "/api/v1/auth/login",
            None,
            json!({"username": ann.name, "password": "wrong horse"}),
        )
        .await;
    assert_eq!((status, code(&body)), (401, 1002), "{body}");

    let (status, me) = t.b.get("/api/v1/users/profile", &ann.access).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["user"]["id"], ann.id.as_str());
    let (status, me) =
        t.a.call(
            Method::PUT,
            "/api/v1/users/profile",
            Some(&ann.access),
            Some(json!({"nickname": "Ann", "avatar": "https://example.invalid/a.png"})),
        )
        .await;
    assert_eq!(
        (status, me["user"]["nickname"].as_str()),
        (200, Some("Ann"))
    );
    let bob = t.a.user("bob").await;
    let (status, public) =
        t.a.get(&format!("/api/v1/users/{}", ann.id), &bob.access)
            .await;
    assert_eq!(status, 200);
    assert_eq!(public["nickname"], "Ann");
    assert!(
        public.get("email").is_none(),
        "a public profile has no email: {public}"
    );
    let (status, found) =
        t.b.get(
            &format!("/api/v1/users/search?username={}", ann.name),
            &bob.access,
        )
        .await;
    assert_eq!(
        (status, found["id"].as_str()),
        (200, Some(ann.id.as_str())),
        "{found}"
    );
    let (status, body) =
        t.b.get("/api/v1/users/search?username=nobody_here", &bob.access)
            .await;
    assert_eq!((status, code(&body)), (404, 1003), "{body}");
    let (status, body) =
        t.b.get("/api/v1/users/search?username=no%20spaces", &bob.access)
            .await;
    assert_eq!((status, code(&body)), (400, 1001), "{body}");
    let (status, body) = t.a.get("/api/v1/users/4242", &bob.access).await;
    assert_eq!((status, code(&body)), (404, 1003), "{body}");

    // Refresh rotates: the new pair works, the old refresh token no longer does.
    let (status, pair) =
        t.a.post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": ann.refresh}),
        )
        .await;
    assert_eq!(status, 200, "{pair}");
    let access = pair["access_token"].as_str().unwrap().to_owned();
    let (status, body) =
        t.a.post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": ann.refresh}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (401, 1002),
        "a used refresh token: {body}"
    );
    // Reuse means theft or replay: the whole session ended, the rotated pair with it.
    assert_eq!(t.b.get("/api/v1/users/profile", &access).await.0, 401);
    let ann = t.a.login(&ann.name).await;
    let access = ann.access.clone();
    let pair = json!({"refresh_token": ann.refresh});
    assert_eq!(t.b.get("/api/v1/users/profile", &access).await.0, 200);

    // Logout: sockets of the session close with a kick, on every gateway; both tokens stop.
    let mut on_b = t.b.socket(&ann).await;
    let mut on_a = t.a.socket(&ann).await;
    let mut other_session = t.b.socket(&t.a.login(&ann.name).await).await;
    let (status, _) =
        t.a.call(Method::POST, "/api/v1/auth/logout", Some(&access), None)
            .await;
    assert_eq!(status, 204);
    assert_eq!(on_b.closed().await.as_deref(), Some("logout"));
    assert_eq!(on_a.closed().await.as_deref(), Some("logout"));
    for token in [&ann.access, &access] {
        let (status, body) = t.b.get("/api/v1/users/profile", token).await;
        assert_eq!((status, code(&body)), (401, 1002), "{body}");
    }
    let refresh = pair["refresh_token"].as_str().unwrap();
    let (status, _) =
        t.a.post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(status, 401, "the session's refresh token is revoked too");
    // Another session of the same user is untouched.
    other_session.send(json!({"type": "ping"})).await;
    other_session.expect("pong").await;
}

/// A single chat over WebSocket: acks once stored, contiguous seqs, delivery to the peer
/// and to the sender's other devices, resends answered with the first ack.
pub(crate) async fn single_chat(t: &Target) {
    let ann = t.a.user("ann").await;
    let bob = t.a.user("bob").await;
    let conversation = t.a.single(&ann, &bob).await;
    assert_eq!(
        t.b.single(&bob, &ann).await,
        conversation,
        "one conversation per pair"
    );

    let mut ann_phone = t.a.socket(&ann).await;
    let mut ann_laptop = t.b.socket(&ann).await;
    let mut bob_phone = t.b.socket(&bob).await;
    let mut acks = Vec::new();
    for i in 0..10 {
        let id = format!("m{i}");
        ann_phone
            .message(&conversation, &format!("hello {i}"), &id)
            .await;
        let ack = ann_phone.expect("ack").await;
        assert_eq!(ack["data"]["client_msg_id"], id.as_str());
        acks.push(ack["data"].clone());
    }
    let seqs: Vec<i64> = acks.iter().map(|a| a["seq"].as_i64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=10).collect::<Vec<_>>(),
        "acked seqs rise by exactly one"
    );

    let mut delivered = bob_phone.messages(&conversation, 10).await;
    delivered.sort_unstable();
    assert_eq!(delivered, seqs, "the peer got every message");
    let mut mirrored = ann_laptop.messages(&conversation, 10).await;
    mirrored.sort_unstable();
    assert_eq!(
        mirrored, seqs,
        "the sender's other device got every message"
    );

    // A resend (no ack seen, say) gets the first answer and stores nothing new.
    ann_phone.message(&conversation, "hello 3", "m3").await;
    let again = ann_phone.expect("ack").await;
    assert_eq!(again["data"]["message_id"], acks[3]["message_id"]);
    assert_eq!(again["data"]["seq"], 4);
    // to_user_id names the single chat too.
    ann_phone
        .send(json!({"type": "message", "data": {
            "to_user_id": bob.id, "content": "by user id", "message_type": "text",
            "client_msg_id": "by-user",
        }}))
        .await;
    let ack = ann_phone.expect("ack").await;
    assert_eq!(
        (
            ack["data"]["conversation_id"].as_str(),
            ack["data"]["seq"].as_i64()
        ),
        (Some(conversation.as_str()), Some(11))
    );

    let history = t.b.history(&bob, &conversation).await;
    let stored: Vec<i64> = history.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(
        stored,
        (1..=11).collect::<Vec<_>>(),
        "each message stored once"
    );
    assert_eq!(history[0]["from_user_id"], ann.id.as_str());
    assert_eq!(history[0]["content"], "hello 0");
    assert_eq!(history[0]["message_type"], "text");
}

/// History pages by seq; unread counts; read receipts to the peer and the reader's other
/// devices; read pointers only move forward.
pub(crate) async fn history_and_receipts(t: &Target) {
    let ann = t.a.user("ann").await;
    let bob = t.a.user("bob").await;
    let conversation = t.a.single(&ann, &bob).await;
    for i in 0..25 {
        let ack = t.a.send(&ann, &conversation, &format!("m{i}")).await;
        assert_eq!(ack["seq"], i + 1);
    }
    let page = |q: &str| format!("/api/v1/messages/history?conversation_id={conversation}&{q}");
    let (status, newest) = t.b.get(&page("limit=10"), &bob.access).await;
    assert_eq!(status, 200, "{newest}");
    let seqs = |p: &Value| -> Vec<i64> {
        p["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(seqs(&newest), (16..=25).collect::<Vec<_>>());
    assert_eq!(newest["has_more"], true);
    let (_, older) = t.b.get(&page("before_seq=16&limit=10"), &bob.access).await;
    assert_eq!(seqs(&older), (6..=15).collect::<Vec<_>>());
    let (_, gap) = t.b.get(&page("after_seq=20&limit=10"), &bob.access).await;
    assert_eq!(
        (seqs(&gap), gap["has_more"].as_bool()),
        ((21..=25).collect(), Some(false))
    );
    let (status, body) = t.b.get(&page("limit=101"), &bob.access).await;
    assert_eq!((status, code(&body)), (400, 1001), "{body}");
    let (status, body) = t.b.get(&page("before_seq=ten"), &bob.access).await;
    assert_eq!((status, code(&body)), (400, 1001), "{body}");

    let (status, unread) = t.b.get("/api/v1/messages/unread", &bob.access).await;
    assert_eq!(status, 200, "{unread}");
    assert_eq!(unread["total"], 25);
    let (_, listed) = t.b.get("/api/v1/conversations", &bob.access).await;
    let listed = &listed["conversations"][0];
    assert_eq!(
        (listed["id"].as_str(), listed["type"].as_str()),
        (Some(conversation.as_str()), Some("single"))
    );
    assert_eq!(
        (listed["last_seq"].as_i64(), listed["unread"].as_i64()),
        (Some(25), Some(25))
    );
    assert_eq!(listed["last_message"]["content"], "m24");

    let mut ann_socket = t.a.socket(&ann).await;
    let mut bob_phone = t.b.socket(&bob).await;
    let mut bob_laptop = t.a.socket(&bob).await;
    bob_phone
        .send(json!({"type": "read", "data": {"conversation_id": conversation, "seq": 20}}))
        .await;
    let receipt = ann_socket.expect("read").await;
    assert_eq!(
        receipt["data"],
        json!({"conversation_id": conversation, "user_id": bob.id, "seq": 20})
    );
    let mirrored = bob_laptop.expect("read").await;
    assert_eq!(mirrored["data"]["seq"], 20);
    let (status, _) =
        t.b.post(
            "/api/v1/messages/read",
            Some(&bob.access),
            json!({"conversation_id": conversation, "seq": 5}),
        )
        .await;
    assert_eq!(status, 204);
    let (_, unread) = t.b.get("/api/v1/messages/unread", &bob.access).await;
    assert_eq!(
        unread["total"], 5,
        "a read pointer never moves back: {unread}"
    );

    // Per-user settings of a conversation.
    let (status, changed) =
        t.b.call(
            Method::PUT,
            &format!("/api/v1/conversations/{conversation}"),
            Some(&bob.access),
            Some(json!({"name": "Ann", "pinned": true, "muted": true})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (
            changed["conversation"]["name"].as_str(),
            changed["conversation"]["pinned"].as_bool()
        ),
        (Some("Ann"), Some(true))
    );
}

/// Groups: members and roles, delivery to every online member, refusals for the others.
pub(crate) async fn groups(t: &Target) {
    let ann = t.a.user("ann").await;
    let bob = t.a.user("bob").await;
    let cat = t.a.user("cat").await;
    let dan = t.a.user("dan").await;
    let (status, created) =
        t.a.post(
            "/api/v1/groups/create",
            Some(&ann.access),
            json!({"name": "Team", "description": "us", "member_ids": [bob.id, cat.id]}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let group = created["group"]["id"].as_str().unwrap().to_owned();
    let conversation = created["conversation_id"].as_str().unwrap().to_owned();
    assert_eq!(created["group"]["member_count"], 3);

    let (_, seen) =
        t.b.get(&format!("/api/v1/groups/{group}"), &dan.access)
            .await;
    assert_eq!(seen["group"]["owner_id"], ann.id.as_str());
    assert!(
        seen.get("members").is_none(),
        "a non-member sees no members: {seen}"
    );
    let (status, body) = t
        .b
        .post("/api/v1/messages/send", Some(&dan.access),
            json!({"conversation_id": conversation, "content": "hi", "message_type": "text", "client_msg_id": "x"}))
        .await;
    assert_eq!(
        (status, code(&body)),
        (403, 1005),
        "a non-member may not write: {body}"
    );
    let (status, body) =
        t.b.get(
            &format!("/api/v1/messages/history?conversation_id={conversation}"),
            &dan.access,
        )
        .await;
    assert_eq!((status, code(&body)), (403, 1005), "nor read: {body}");
    let (status, body) =
        t.b.post(
            &format!("/api/v1/groups/{group}/members"),
            Some(&bob.access),
            json!({"user_ids": [dan.id]}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (403, 1005),
        "only owners and admins add: {body}"
    );
    let (status, _) =
        t.b.call(
            Method::POST,
            &format!("/api/v1/groups/{group}/join"),
            Some(&dan.access),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, seen) =
        t.b.get(&format!("/api/v1/groups/{group}"), &dan.access)
            .await;
    assert_eq!(seen["members"].as_array().map(Vec::len), Some(4), "{seen}");

    let mut sockets = Vec::new();
    for user in [&bob, &cat, &dan] {
        sockets.push(t.b.socket(user).await);
    }
    let mut sender = t.a.socket(&ann).await;
    sender.message(&conversation, "hello team", "g1").await;
    let ack = sender.expect("ack").await;
    assert_eq!(ack["data"]["seq"], 1);
    for socket in &mut sockets {
        let frame = socket.expect("message").await;
        assert_eq!(
            (
                frame["data"]["content"].as_str(),
                frame["data"]["from_user_id"].as_str()
            ),
            (Some("hello team"), Some(ann.id.as_str()))
        );
    }

    let (status, body) =
        t.a.call(
            Method::DELETE,
            &format!("/api/v1/groups/{group}/members/{}", ann.id),
            Some(&bob.access),
            None,
        )
        .await;
    assert_eq!((status, code(&body)), (403, 1005), "{body}");
    let (status, body) =
        t.a.call(
            Method::POST,
            &format!("/api/v1/groups/{group}/leave"),
            Some(&ann.access),
            None,
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (403, 1005),
        "the owner cannot leave: {body}"
    );
    let (status, _) =
        t.a.call(
            Method::DELETE,
            &format!("/api/v1/groups/{group}/members/{}", dan.id),
            Some(&ann.access),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) =
        t.a.call(
            Method::POST,
            &format!("/api/v1/groups/{group}/leave"),
            Some(&cat.access),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, seen) =
        t.a.get(&format!("/api/v1/groups/{group}"), &ann.access)
            .await;
    assert_eq!(seen["group"]["member_count"], 2, "{seen}");
}

/// The world channel reaches every online user, on every gateway.
pub(crate) async fn world(t: &Target) {
    let ann = t.a.user("ann").await;
    let bob = t.a.user("bob").await;
    let cat = t.a.user("cat").await;
    let mut on_a = t.a.socket(&bob).await;
    let mut on_b = t.b.socket(&cat).await;
    let content = unique("world hello ");
    let ack = t.a.send(&ann, "world", &content).await;
    let seq = ack["seq"].as_i64().unwrap();
    for socket in [&mut on_a, &mut on_b] {
        loop {
            let frame = socket.expect("message").await;
            if frame["data"]["content"] == content.as_str() {
                assert_eq!(
                    (
                        frame["data"]["conversation_id"].as_str(),
                        frame["data"]["seq"].as_i64()
                    ),
                    (Some("world"), Some(seq))
                );
                break;
            }
        }
    }
    let history = t.b.history(&cat, "world").await;
    assert!(history.iter().any(|m| m["content"] == content.as_str()));
}

/// Bad requests get a 1001 (or 1002 without a token) and never take anything down.
pub(crate) async fn bad_input(t: &Target) {
    let ann = t.a.user("ann").await;
    let bob = t.a.user("bob").await;
    let conversation = t.a.single(&ann, &bob).await;
    let (status, body) = t.a.get("/api/v1/users/profile", "not-a-token").await;
    assert_eq!((status, code(&body)), (401, 1002), "{body}");
    let (status, body) =
        t.a.call(Method::GET, "/api/v1/conversations", None, None)
            .await;
    assert_eq!((status, code(&body)), (401, 1002), "{body}");
    let send = "/api/v1/messages/send";
    for (raw, what) in [
        ("{\"conversation_id\": ", "malformed JSON"),
        (
            "{\"conversation_id\": 5, \"content\": \"x\", \"client_msg_id\": \"a\"}",
            "a mistyped field",
        ),
        ("[]", "not an object"),
    ] {
        let (status, body) =
            t.a.raw(
                Method::POST,
                send,
                Some(&ann.access),
                Some(raw.to_owned().into()),
            )
            .await;
        assert_eq!((status, code(&body)), (400, 1001), "{what}: {body}");
    }
    let huge = json!({"conversation_id": conversation, "content": "x".repeat(70 * 1024), "client_msg_id": "big"});
    let (status, body) = t.a.post(send, Some(&ann.access), huge).await;
    assert_eq!(
        (status, code(&body)),
        (400, 1001),
        "a body over 64 KiB: {body}"
    );
    let long = json!({"conversation_id": conversation, "content": "x".repeat(5000), "message_type": "text", "client_msg_id": "long"});
    let (status, body) = t.a.post(send, Some(&ann.access), long).await;
    assert_eq!(
        (status, code(&body)),
        (400, 1001),
        "content over 4 KiB: {body}"
    );
    let bad_type = json!({"conversation_id": conversation, "content": "x", "message_type": "video", "client_msg_id": "t"});
    let (status, body) = t.a.post(send, Some(&ann.access), bad_type).await;
    assert_eq!((status, code(&body)), (400, 1001), "{body}");
    let (status, body) =
        t.a.call(
            Method::GET,
            "/api/v1/no/such/thing",
            Some(&ann.access),
            None,
        )
        .await;
    assert_eq!((status, code(&body)), (404, 1003), "{body}");

    // WebSocket: a bad token is refused at the handshake.
    let refused = tokio_tungstenite::connect_async(format!(
        "{}/ws?token=nope",
        t.a.base.replace("http", "ws")
    ))
    .await;
    assert!(refused.is_err(), "a socket with a bad token");
    // Bad frames get an error frame and the socket stays open.
    let mut socket = t.a.socket(&ann).await;
    for bad in [
        "nope",
        "{\"type\":\"dance\"}",
        "{\"type\":\"message\",\"data\":{\"content\":1}}",
    ] {
        socket.send_text(bad.to_owned()).await;
        let error = socket.expect("error").await;
        assert_eq!(error["data"]["code"], 1001, "{bad}: {error}");
    }
    socket
        .message(&conversation, &"x".repeat(5000), "too-long")
        .await;
    let error = socket.expect("error").await;
    assert_eq!(
        (
            error["data"]["code"].as_i64(),
            error["data"]["client_msg_id"].as_str()
        ),
        (Some(1001), Some("too-long"))
    );
    socket.message("4242", "who is there", "nobody").await;
    let error = socket.expect("error").await;
    assert!(
        matches!(error["data"]["code"].as_i64(), Some(1003 | 1005)),
        "{error}"
    );
    socket.send(json!({"type": "ping"})).await;
    socket.expect("pong").await;
    // A frame over the limit: an error frame, then a kick.
    socket
        .message(&conversation, &"x".repeat(70 * 1024), "huge")
        .await;
    let error = socket.expect("error").await;
    assert_eq!(error["data"]["code"], 1001);
    assert_eq!(socket.closed().await.as_deref(), Some("frame too large"));
    // The server is fine.
    let ack = t.b.send(&ann, &conversation, "still here").await;
    assert_eq!(ack["seq"], 1);
    let (status, _) = t.b.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, 200);
}

/// Both conversation lists page with `?cursor=&limit=`, the unread total counts every
/// conversation on every page, and nobody can be put into groups without bound.
pub(crate) async fn conversation_lists_are_paged(t: &Target) {
    let ann = t.a.user("ann").await;
    let bob = t.a.user("bob").await;
    let cat = t.a.user("cat").await;
    // bob: seven groups of ann's and the single chat with her, one message in each, in turn.
    let mut chats = Vec::new();
    for i in 0..7 {
        let (status, created) =
            t.a.post(
                "/api/v1/groups/create",
                Some(&ann.access),
                json!({"name": format!("g{i}"), "member_ids": [bob.id]}),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        chats.push(created["conversation_id"].as_str().unwrap().to_owned());
    }
    chats.push(t.a.single(&ann, &bob).await);
    for chat in &chats {
        t.a.send(&ann, chat, "hello").await;
    }
    let walk = async |path: &str, limit: usize| {
        let mut pages = Vec::new();
        let mut cursor = String::new();
        loop {
            let (status, page) =
                t.b.get(
                    &format!("{path}?limit={limit}&cursor={cursor}"),
                    &bob.access,
                )
                .await;
            assert_eq!(status, 200, "{page}");
            let Some(next) = page["next_cursor"].as_str().map(str::to_owned) else {
                pages.push(page);
                return pages;
            };
            assert_eq!(page["conversations"].as_array().unwrap().len(), limit);
            pages.push(page);
            cursor = next;
        }
    };
    let pages = walk("/api/v1/conversations", 3).await;
    assert_eq!(pages.len(), 3, "8 conversations, 3 a page: {pages:?}");
    let listed: Vec<Value> = pages
        .iter()
        .flat_map(|p| p["conversations"].as_array().unwrap().clone())
        .collect();
    let times: Vec<&str> = listed
        .iter()
        .map(|c| c["last_message"]["created_at"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "by latest message: {times:?}"
    );
    let mut ids: Vec<&str> = listed.iter().map(|c| c["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    let mut expected: Vec<&str> = chats.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(ids, expected, "each conversation once");
    let pages = walk("/api/v1/messages/unread", 3).await;
    let mut sum = 0;
    for page in &pages {
        assert_eq!(page["total"], 8, "the total over every page: {page}");
        sum += page["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["unread"].as_i64().unwrap())
            .sum::<i64>();
    }
    assert_eq!(sum, 8);
    let (_, all) = t.b.get("/api/v1/conversations", &bob.access).await;
    assert!(
        all.get("next_cursor").is_none(),
        "one page by default: {all}"
    );
    for bad in [
        "/api/v1/conversations?limit=201",
        "/api/v1/conversations?limit=0",
        "/api/v1/conversations?cursor=zz",
        "/api/v1/messages/unread?limit=201",
        "/api/v1/messages/unread?cursor=not-a-cursor",
    ] {
        let (status, body) = t.b.get(bad, &bob.access).await;
        assert_eq!((status, code(&body)), (400, 1001), "{bad}: {body}");
    }

    // cat is put into groups until the hourly cap (60) refuses: on create and on add.
    let mut added = 0;
    let refused = loop {
        let (status, body) =
            t.a.post(
                "/api/v1/groups/create",
                Some(&ann.access),
                json!({"name": "spam", "member_ids": [cat.id]}),
            )
            .await;
        if status != 201 {
            break (status, body);
        }
        added += 1;
        assert!(added <= 61, "no cap on being put into groups");
    };
    assert_eq!((refused.0, code(&refused.1)), (429, 1006), "{}", refused.1);
    assert!(added >= 60, "the cap is 60 an hour: {added}");
    let (status, created) =
        t.a.post(
            "/api/v1/groups/create",
            Some(&ann.access),
            json!({"name": "empty", "member_ids": []}),
        )
        .await;
    assert_eq!(status, 201, "the owner alone is never capped: {created}");
    let group = created["group"]["id"].as_str().unwrap();
    let (status, body) =
        t.a.post(
            &format!("/api/v1/groups/{group}/members"),
            Some(&ann.access),
            json!({"user_ids": [cat.id]}),
        )
        .await;
    assert_eq!((status, code(&body)), (429, 1006), "{body}");
    let (status, _) =
        t.a.post(
            &format!("/api/v1/groups/{group}/members"),
            Some(&ann.access),
            json!({"user_ids": [bob.id]}),
        )
        .await;
    assert_eq!(status, 204, "the cap is per added user");
}
