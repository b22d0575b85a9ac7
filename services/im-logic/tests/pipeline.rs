//! The pipeline, every case twice: standalone (SQLite, in-process cache and mq) and on the
//! real engines (PostgreSQL with sharded messages, Redis, the Kafka-protocol broker): seq,
//! dedup, ack-after-store, routing, authorization, tokens, receipts, limits, the breaker.

use std::time::Duration;

use gochat_core::{Context, Env};
use gochat_mq::Received;
use gochat_proto::{
    events::{Downstream, Task, downstream, task},
    logic::{LoginRequest, RegisterRequest, SendMessageRequest},
    prost::Message as _,
    repo::{
        AddMembersRequest, CreateGroupRequest, GetMessagesRequest, GetOrCreateSingleRequest,
        repo_service_server::RepoService,
    },
};
use gochat_testkit::{Fixture, behaviour_suite};
use im_logic::Logic;
use im_testkit::{Cluster, engines, standalone};
use tokio::sync::mpsc;
use tonic::Request;

const PATIENCE: Duration = Duration::from_secs(30);

async fn register(logic: &Logic, name: &str) -> String {
    logic
        .register(RegisterRequest {
            username: name.into(),
            password: "correct horse".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .id
}

fn send(user: &str, conversation: &str, client: &str) -> SendMessageRequest {
    SendMessageRequest {
        user_id: user.into(),
        conversation_id: conversation.into(),
        content: format!("hi from {client}"),
        message_type: "text".into(),
        client_msg_id: client.into(),
        ..Default::default()
    }
}

/// Collects what is published on `topic`.
async fn watch(
    mq: &gochat_mq::Mq,
    topic: &str,
) -> (mpsc::UnboundedReceiver<Vec<u8>>, gochat_mq::Subscription) {
    mq.admin().ensure_topic(topic, 1).await.unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let handler = move |message: Received| {
        let tx = tx.clone();
        async move {
            tx.send(message.value.to_vec())
                .map_err(|e| gochat_mq::HandlerError::from(e.to_string()))
        }
    };
    let subscription = mq
        .consumer(&format!("test-{topic}"))
        .subscribe(&[topic], handler)
        .await
        .unwrap();
    (rx, subscription)
}

async fn seqs_are_contiguous_under_twenty_concurrent_senders_and_acked_only_when_stored(
    cluster: Cluster,
    _fx: Fixture,
) {
    let s = cluster.stack(500).await.unwrap();
    let mut users = Vec::new();
    for i in 0..20 {
        users.push(register(&s.logic, &format!("user{i}")).await);
    }
    let group = s
        .repo
        .create_group(Request::new(CreateGroupRequest {
            name: "all".into(),
            owner_id: users[0].clone(),
            member_ids: users.clone(),
            max_members: 100,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let mut sends = Vec::new();
    for (i, user) in users.iter().enumerate() {
        for j in 0..5 {
            let (logic, repo) = (s.logic.clone(), s.repo.clone());
            let request = send(user, &group.conversation_id, &format!("{i}-{j}"));
            sends.push(tokio::spawn(async move {
                let ack = logic.send(request).await.unwrap();
                // Acked means stored: the message is in the history already.
                let page = repo
                    .get_messages(Request::new(GetMessagesRequest {
                        conversation_id: ack.conversation_id.clone(),
                        after_seq: Some(ack.seq - 1),
                        limit: 1,
                        ..Default::default()
                    }))
                    .await
                    .unwrap()
                    .into_inner();
                assert_eq!(page.messages[0].message_id, ack.message_id);
                ack.seq
            }));
        }
    }
    let mut seqs = Vec::new();
    for send in sends {
        seqs.push(send.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=100).collect::<Vec<i64>>(), "1 to 100, each once");
}

async fn a_resend_gets_the_first_ack_and_no_second_message(cluster: Cluster, _fx: Fixture) {
    let s = cluster.stack(500).await.unwrap();
    let (ann, bob) = (
        register(&s.logic, "ann").await,
        register(&s.logic, "bob").await,
    );
    let mut first = send(&ann, "", "same-id");
    first.to_user_id = bob.clone();
    let a = s.logic.send(first.clone()).await.unwrap();
    let b = s.logic.send(first).await.unwrap();
    assert_eq!(a, b);
    let page = s
        .repo
        .get_messages(Request::new(GetMessagesRequest {
            conversation_id: a.conversation_id,
            limit: 10,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.messages.len(), 1);
}

/// The same message sent ten times at once (a client retrying on several sockets): the
/// resends land in one batch or in several, and either way one message is stored, every send
/// gets its ack, and the resends take no seq.
async fn resends_at_once_are_stored_once_and_take_no_seq(cluster: Cluster, _fx: Fixture) {
    let s = cluster.stack(500).await.unwrap();
    let (ann, bob) = (
        register(&s.logic, "ann").await,
        register(&s.logic, "bob").await,
    );
    let mut message = send(&ann, "", "again");
    message.to_user_id = bob.clone();
    let mut sends = Vec::new();
    for _ in 0..10 {
        let (logic, message) = (s.logic.clone(), message.clone());
        sends.push(tokio::spawn(async move { logic.send(message).await }));
    }
    let mut acks = Vec::new();
    for send in sends {
        acks.push(send.await.unwrap().unwrap());
    }
    assert!(acks.iter().all(|ack| *ack == acks[0]), "{acks:?}");
    assert_eq!(acks[0].seq, 1);
    let mut next = send(&ann, "", "next");
    next.to_user_id = bob;
    assert_eq!(s.logic.send(next).await.unwrap().seq, 2);
    let page = s
        .repo
        .get_messages(Request::new(GetMessagesRequest {
            conversation_id: acks[0].conversation_id.clone(),
            limit: 10,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = page
        .messages
        .iter()
        .map(|m| m.client_msg_id.as_str())
        .collect();
    assert_eq!(ids, ["again", "next"]);
}

async fn non_members_and_bad_messages_are_refused(cluster: Cluster, _fx: Fixture) {
    let s = cluster.stack(500).await.unwrap();
    let (ann, bob, eve) = (
        register(&s.logic, "ann").await,
        register(&s.logic, "bob").await,
        register(&s.logic, "eve").await,
    );
    let chat = s
        .repo
        .get_or_create_single(Request::new(GetOrCreateSingleRequest {
            user_id: ann.clone(),
            peer_user_id: bob,
        }))
        .await
        .unwrap()
        .into_inner()
        .id;
    let denied = s.logic.send(send(&eve, &chat, "x")).await.unwrap_err();
    assert!(matches!(denied, im_logic::Error::Forbidden(_)), "{denied}");
    let missing = s.logic.send(send(&eve, "404", "x")).await.unwrap_err();
    assert!(
        matches!(missing, im_logic::Error::Forbidden(_)),
        "{missing}"
    );
    let mut long = send(&ann, &chat, "y");
    long.content = "x".repeat(4097);
    assert!(matches!(
        s.logic.send(long).await.unwrap_err(),
        im_logic::Error::InvalidArgument(_)
    ));
    let mut odd = send(&ann, &chat, "z");
    odd.message_type = "sticker".into();
    assert!(matches!(
        s.logic.send(odd).await.unwrap_err(),
        im_logic::Error::InvalidArgument(_)
    ));
    // Everyone may write the world channel.
    assert_eq!(s.logic.send(send(&eve, "world", "w")).await.unwrap().seq, 1);
}

async fn small_chats_go_to_gateways_large_groups_to_im_task_and_offline_members_to_push(
    cluster: Cluster,
    _fx: Fixture,
) {
    let s = cluster.stack(2).await.unwrap();
    let (ann, bob, cat) = (
        register(&s.logic, "ann").await,
        register(&s.logic, "bob").await,
        register(&s.logic, "cat").await,
    );
    // bob is online at gateway gw-1; ann and cat are connected nowhere.
    s.cache
        .set()
        .sadd(&im_logic::presence_key(&bob), &[b"gw-1"])
        .await
        .unwrap();
    let (mut gateway, _g) = watch(&s.mq, &s.topics.downstream("gw-1")).await;
    let (mut tasks, _t) = watch(&s.mq, &s.topics.task()).await;

    let mut single = send(&ann, "", "s1");
    single.to_user_id = bob.clone();
    let ack = s.logic.send(single).await.unwrap();
    let pushed = Downstream::decode(
        tokio::time::timeout(PATIENCE, gateway.recv())
            .await
            .unwrap()
            .unwrap()
            .as_slice(),
    )
    .unwrap();
    assert_eq!(pushed.user_ids, vec![bob.clone()]);
    let Some(downstream::Frame::Message(delivered)) = pushed.frame else {
        panic!("not a message frame: {pushed:?}");
    };
    assert_eq!(delivered.message_id, ack.message_id);
    // ann (the sender) has no connection: her other devices get it by push.
    let job = Task::decode(
        tokio::time::timeout(PATIENCE, tasks.recv())
            .await
            .unwrap()
            .unwrap()
            .as_slice(),
    )
    .unwrap();
    let Some(task::Job::Push(push)) = job.job else {
        panic!("not a push: {job:?}");
    };
    assert_eq!(push.user_ids, vec![ann.clone()]);

    // Three members > small_group_limit 2: one fanout job, nothing straight to gateways.
    let group = s
        .repo
        .create_group(Request::new(CreateGroupRequest {
            name: "big".into(),
            owner_id: ann.clone(),
            member_ids: vec![bob.clone()],
            max_members: 10,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    s.repo
        .add_members(Request::new(AddMembersRequest {
            conversation_id: group.conversation_id.clone(),
            user_ids: vec![cat],
            role: 0,
            self_join: false,
        }))
        .await
        .unwrap();
    let big = s
        .logic
        .send(send(&ann, &group.conversation_id, "g1"))
        .await
        .unwrap();
    let job = Task::decode(
        tokio::time::timeout(PATIENCE, tasks.recv())
            .await
            .unwrap()
            .unwrap()
            .as_slice(),
    )
    .unwrap();
    let Some(task::Job::Fanout(fanout)) = job.job else {
        panic!("not a fanout: {job:?}");
    };
    assert_eq!(fanout.message.unwrap().message_id, big.message_id);
    assert!(
        gateway.try_recv().is_err(),
        "the large group did not go to a gateway directly"
    );
}

async fn refresh_rotates_and_logout_revokes_the_whole_session(cluster: Cluster, _fx: Fixture) {
    let s = cluster.stack(500).await.unwrap();
    register(&s.logic, "ann").await;
    let login = || {
        s.logic.login(LoginRequest {
            username: "ann".into(),
            password: "correct horse".into(),
            ..Default::default()
        })
    };
    let wrong = s
        .logic
        .login(LoginRequest {
            username: "ann".into(),
            password: "wrong horse".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(wrong, im_logic::Error::Unauthorized(_)));

    // Padding, case and width name the same account.
    for name in ["ann ", " ANN", "\u{ff41}nn"] {
        s.logic
            .login(LoginRequest {
                username: name.into(),
                password: "correct horse".into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }

    let pair = login().await.unwrap();
    let rotated = s.logic.refresh(&pair.refresh_token).await.unwrap();
    assert!(
        s.logic.refresh(&pair.refresh_token).await.is_err(),
        "a refresh token works once"
    );
    // Reuse ended the session: the rotated pair (the victim's or the thief's) is dead too.
    assert!(s.logic.validate_token(&rotated.access_token).await.is_err());
    assert!(s.logic.refresh(&rotated.refresh_token).await.is_err());
    let pair = login().await.unwrap();
    let session = s.logic.validate_token(&pair.access_token).await.unwrap();
    let rotated = s.logic.refresh(&pair.refresh_token).await.unwrap();
    assert!(
        s.logic.refresh(&pair.access_token).await.is_err(),
        "an access token is not a refresh token"
    );
    assert_eq!(
        s.logic
            .validate_token(&rotated.access_token)
            .await
            .unwrap()
            .token_id,
        session.token_id,
        "the same session"
    );

    let other = login().await.unwrap();
    s.logic.logout(&rotated.access_token).await.unwrap();
    for token in [&rotated.access_token, &pair.access_token] {
        assert!(s.logic.validate_token(token).await.is_err());
    }
    assert!(s.logic.refresh(&rotated.refresh_token).await.is_err());
    assert!(
        s.logic.validate_token(&other.access_token).await.is_ok(),
        "another session stays"
    );
}

async fn group_rules_history_and_read_pointers(cluster: Cluster, _fx: Fixture) {
    use gochat_proto::logic::{
        AddGroupMembersRequest, CreateGroupRequest, GroupRequest, HistoryRequest, MarkReadRequest,
        RemoveGroupMemberRequest,
    };
    let s = cluster.stack(500).await.unwrap();
    let (ann, bob, cat) = (
        register(&s.logic, "ann").await,
        register(&s.logic, "bob").await,
        register(&s.logic, "cat").await,
    );
    let group = s
        .logic
        .create_group(CreateGroupRequest {
            user_id: ann.clone(),
            name: "team".into(),
            member_ids: vec![bob.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    let request = |user: &str| GroupRequest {
        user_id: user.to_owned(),
        group_id: group.id.clone(),
    };
    // A plain member may not add others; the owner may; anyone may join; the owner cannot leave.
    let add = |by: &str, who: &str| AddGroupMembersRequest {
        user_id: by.to_owned(),
        group_id: group.id.clone(),
        user_ids: vec![who.to_owned()],
    };
    assert!(matches!(
        s.logic
            .add_group_members(add(&bob, &cat))
            .await
            .unwrap_err(),
        im_logic::Error::Forbidden(_)
    ));
    s.logic.add_group_members(add(&ann, &cat)).await.unwrap();
    assert!(matches!(
        s.logic.leave_group(request(&ann)).await.unwrap_err(),
        im_logic::Error::Forbidden(_)
    ));
    let info = s.logic.group(request(&cat)).await.unwrap();
    assert_eq!(info.members.len(), 3);
    assert!(matches!(
        s.logic
            .remove_group_member(RemoveGroupMemberRequest {
                user_id: ann.clone(),
                group_id: group.id.clone(),
                member_id: ann.clone(),
            })
            .await
            .unwrap_err(),
        im_logic::Error::Forbidden(_)
    ));
    s.logic.leave_group(request(&cat)).await.unwrap();

    for i in 0..3 {
        s.logic
            .send(send(&ann, &group.conversation_id, &format!("h{i}")))
            .await
            .unwrap();
    }
    let history = |user: &str, limit: i32| HistoryRequest {
        user_id: user.to_owned(),
        conversation_id: group.conversation_id.clone(),
        limit,
        ..Default::default()
    };
    let page = s.logic.history(history(&bob, 2)).await.unwrap();
    assert_eq!(
        page.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert!(page.has_more);
    assert!(
        matches!(
            s.logic.history(history(&cat, 2)).await.unwrap_err(),
            im_logic::Error::Forbidden(_)
        ),
        "cat left"
    );
    assert!(matches!(
        s.logic.history(history(&bob, 101)).await.unwrap_err(),
        im_logic::Error::InvalidArgument(_)
    ));

    let read = |seq: i64| MarkReadRequest {
        user_id: bob.clone(),
        conversation_id: group.conversation_id.clone(),
        seq,
        ..Default::default()
    };
    // Per-user settings: bob's own name for the group, pinned; others' views are untouched.
    let settings = |user: &str, name: &str| gochat_proto::logic::UpdateConversationRequest {
        user_id: user.to_owned(),
        conversation_id: group.conversation_id.clone(),
        name: Some(name.to_owned()),
        pinned: Some(true),
        ..Default::default()
    };
    let mine = s
        .logic
        .update_conversation(settings(&bob, "work"))
        .await
        .unwrap();
    assert_eq!((mine.name.as_str(), mine.pinned), ("work", true));
    let views = s.logic.conversations(&ann).await.unwrap().conversations;
    assert_eq!(
        views[0].member.as_ref().unwrap().name,
        "",
        "ann's view is her own"
    );
    assert!(matches!(
        s.logic
            .update_conversation(settings(&bob, &"x".repeat(65)))
            .await
            .unwrap_err(),
        im_logic::Error::InvalidArgument(_)
    ));
    assert!(matches!(
        s.logic
            .update_conversation(settings(&cat, "left"))
            .await
            .unwrap_err(),
        im_logic::Error::Forbidden(_)
    ));

    s.logic.mark_read(read(2)).await.unwrap();
    assert_eq!(
        s.logic.mark_read(read(1)).await.unwrap().read_seq,
        2,
        "never back"
    );
    assert_eq!(s.logic.unread(&bob).await.unwrap().total, 1);
}

async fn websocket_frames_through_im_upstream_get_an_ack_or_an_error_frame(
    cluster: Cluster,
    _fx: Fixture,
) {
    use gochat_proto::events::Upstream;
    let s = cluster.stack(500).await.unwrap();
    let (ann, eve) = (
        register(&s.logic, "ann").await,
        register(&s.logic, "eve").await,
    );
    let (mut gateway, _g) = watch(&s.mq, &s.topics.downstream("gw-7")).await;
    s.mq.admin()
        .ensure_topic(&s.topics.upstream(), 1)
        .await
        .unwrap();
    let upstream = s.logic.consume_upstream().await.unwrap();

    let frame = |user: &str, conversation: &str, client: &str| {
        let mut request = send(user, conversation, client);
        request.gateway_id = "gw-7".into();
        Upstream {
            send: Some(request),
            connection_id: format!("conn-{user}"),
        }
        .encode_to_vec()
    };
    let chat = s
        .repo
        .get_or_create_single(Request::new(GetOrCreateSingleRequest {
            user_id: ann.clone(),
            peer_user_id: register(&s.logic, "bob").await,
        }))
        .await
        .unwrap()
        .into_inner()
        .id;
    let producer = s.mq.producer();
    for payload in [frame(&ann, &chat, "ws-1"), frame(&eve, &chat, "ws-2")] {
        producer
            .send(gochat_mq::Message::new(s.topics.upstream(), payload))
            .await
            .unwrap();
    }
    let mut answers = Vec::new();
    while answers.len() < 2 {
        let raw = tokio::time::timeout(PATIENCE, gateway.recv())
            .await
            .unwrap()
            .unwrap();
        let mut down = Downstream::decode(raw.as_slice()).unwrap();
        // A record carries a batch's answers to one gateway: the first, the rest in `more`.
        let more = std::mem::take(&mut down.more);
        for one in std::iter::once(down).chain(more) {
            // Deliveries of ann's message to online members may pass by too: keep the answers.
            match one.frame {
                Some(downstream::Frame::Ack(ack)) => {
                    answers.push(("ack", ack.connection_id, ack.ack.unwrap().seq));
                }
                Some(downstream::Frame::Error(error)) => {
                    answers.push(("error", error.connection_id, i64::from(error.code)));
                }
                _ => {}
            }
        }
    }
    answers.sort();
    assert_eq!(
        answers,
        vec![
            ("ack", format!("conn-{ann}"), 1),
            ("error", format!("conn-{eve}"), 1005),
        ]
    );
    upstream.shutdown().await;
}

async fn logins_and_sends_are_rate_limited_per_user(cluster: Cluster, _fx: Fixture) {
    use gochat_ratelimit::Rule;
    let s = cluster.stack(500).await.unwrap();
    let ann = register(&s.logic, "ann").await;
    let hour = Duration::from_secs(3600);
    let limits = gochat_ratelimit::Config::for_env(Env::Development)
        .rule(im_logic::LOGIN_RULE, Rule::new(1, hour, 2))
        .rule(im_logic::LOGIN_ADDR_RULE, Rule::new(1, hour, 7))
        .rule(im_logic::REGISTER_ADDR_RULE, Rule::new(1, hour, 1))
        .rule(im_logic::SEND_RULE, Rule::new(1, hour, 4))
        .rule(im_logic::WORLD_RULE, Rule::new(1, hour, 3));
    let logic = limited(&s, limits).await;

    for i in 0..3 {
        logic
            .send(send(&ann, "world", &format!("r{i}")))
            .await
            .unwrap();
    }
    let limited = logic.send(send(&ann, "world", "r3")).await.unwrap_err();
    assert_eq!(limited.code(), 1006, "{limited}");
    assert!(
        matches!(&limited, im_logic::Error::RateLimited { what, .. } if what == im_logic::WORLD_RULE),
        "the world channel has its own, lower limit: {limited}"
    );
    assert!(matches!(
        limited,
        im_logic::Error::RateLimited {
            retry_after: Some(_),
            ..
        }
    ));

    // One bucket per account whatever the padding, case or width of its name.
    let login = |name: &'static str, addr: &'static str| {
        logic.login(LoginRequest {
            username: name.into(),
            password: "wrong".into(),
            client_addr: addr.into(),
        })
    };
    assert_eq!(login("ann", "10.0.0.1").await.unwrap_err().code(), 1002);
    assert_eq!(login("ANN ", "10.0.0.1").await.unwrap_err().code(), 1002);
    for padded in [" ann", "Ann", "\u{ff41}nn "] {
        assert_eq!(
            login(padded, "10.0.0.1").await.unwrap_err().code(),
            1006,
            "guessing is slowed down: {padded:?}"
        );
    }
    // One address trying many accounts is limited too (7 attempts, then 1006).
    for name in ["bob", "cat"] {
        assert_eq!(login(name, "10.0.0.1").await.unwrap_err().code(), 1002);
    }
    assert_eq!(login("dan", "10.0.0.1").await.unwrap_err().code(), 1006);
    assert_eq!(login("dan", "10.0.0.2").await.unwrap_err().code(), 1002);

    let register = |name: &'static str| {
        logic.register(RegisterRequest {
            username: name.into(),
            password: "correct horse".into(),
            client_addr: "10.0.0.3".into(),
            ..Default::default()
        })
    };
    register("eve").await.unwrap();
    assert_eq!(
        register("fay").await.unwrap_err().code(),
        1006,
        "one address cannot register without bound"
    );
}

async fn a_failing_repository_opens_the_breaker_and_calls_fail_fast(
    cluster: Cluster,
    _fx: Fixture,
) {
    let s = cluster.stack(500).await.unwrap();
    let ann = register(&s.logic, "ann").await;
    let breakers = gochat_breaker::new(
        &Context::new(),
        gochat_breaker::Config::for_env(Env::Development),
        Default::default(),
    )
    .await
    .unwrap();
    let mut deps = s.deps.clone();
    deps.repo = im_logic::guarded(deps.repo.clone(), breakers.get("im-repo"));
    let logic = Logic::new(&Context::new(), deps, s.config.clone()).unwrap();
    assert_eq!(logic.profile(&ann).await.unwrap().username, "ann");
    // A profile that does not exist is a refusal, not a failure: the breaker stays closed.
    for _ in 0..10 {
        assert_eq!(logic.profile("404").await.unwrap_err().code(), 1003);
    }

    s.repo.close().await; // the database is gone
    let mut errors = Vec::new();
    for _ in 0..10 {
        errors.push(
            logic
                .profile(&format!("{ann}-x"))
                .await
                .unwrap_err()
                .to_string(),
        );
    }
    assert!(
        errors.iter().any(|e| e.contains("is open")),
        "the breaker opened after repeated failures: {errors:?}"
    );
    assert!(
        logic
            .profile(&ann)
            .await
            .unwrap_err()
            .to_string()
            .contains("is open"),
        "and now fails fast"
    );
}

async fn a_read_receipt_reaches_the_peer_and_the_readers_other_devices(
    cluster: Cluster,
    _fx: Fixture,
) {
    use gochat_proto::logic::MarkReadRequest;
    let s = cluster.stack(500).await.unwrap();
    let (ann, bob) = (
        register(&s.logic, "ann").await,
        register(&s.logic, "bob").await,
    );
    for (user, gateway) in [(&ann, "gw-r1"), (&bob, "gw-r2")] {
        s.cache
            .set()
            .sadd(&im_logic::presence_key(user), &[gateway.as_bytes()])
            .await
            .unwrap();
    }
    let (mut ann_gateway, _a) = watch(&s.mq, &s.topics.downstream("gw-r1")).await;
    let (mut bob_gateway, _b) = watch(&s.mq, &s.topics.downstream("gw-r2")).await;
    let mut first = send(&ann, "", "m1");
    first.to_user_id = bob.clone();
    let ack = s.logic.send(first).await.unwrap();

    s.logic
        .mark_read(MarkReadRequest {
            user_id: bob.clone(),
            conversation_id: ack.conversation_id.clone(),
            seq: ack.seq,
            connection_id: "bob-phone".into(),
        })
        .await
        .unwrap();
    // Each gateway sees the message, then the receipt.
    for gateway in [&mut ann_gateway, &mut bob_gateway] {
        let receipt = loop {
            let raw = tokio::time::timeout(PATIENCE, gateway.recv())
                .await
                .unwrap()
                .unwrap();
            if let Some(downstream::Frame::Read(read)) =
                Downstream::decode(raw.as_slice()).unwrap().frame
            {
                break read;
            }
        };
        assert_eq!(
            (receipt.user_id.as_str(), receipt.seq),
            (bob.as_str(), ack.seq)
        );
        assert_eq!(receipt.except_connection_id, "bob-phone");
    }
}

async fn logic_over_grpc_answers_as_it_does_in_process(cluster: Cluster, _fx: Fixture) {
    use gochat_proto::{
        RemoteLogic,
        logic::{
            LoginRequest as Login, UserRef, ValidateTokenRequest,
            logic_service_server::{LogicService, LogicServiceServer},
        },
    };
    use tonic::transport::{Endpoint, Server, server::TcpIncoming};

    let s = cluster.stack(500).await.unwrap();
    let ann = register(&s.logic, "ann").await;
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let address = incoming.local_addr().unwrap();
    tokio::spawn(
        Server::builder()
            .add_service(LogicServiceServer::new(s.logic.clone()))
            .serve_with_incoming(incoming),
    );
    let channel = Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let remote = RemoteLogic::new(channel);

    let pair = remote
        .login(Request::new(Login {
            username: "ann".into(),
            password: "correct horse".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let session = remote
        .validate_token(Request::new(ValidateTokenRequest {
            access_token: pair.access_token,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(session.user_id, ann);
    let ack = remote
        .send_message(Request::new(send(&ann, "world", "over-grpc")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ack.seq, 1);
    // Refusals keep their gRPC code across the wire (the gateway maps them to 1001…1007).
    let denied = remote
        .send_message(Request::new(send(&ann, "404", "x")))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let profile = remote
        .get_profile(Request::new(UserRef { user_id: ann }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(profile.username, "ann");
}

async fn presence_is_read_for_a_batch_of_users_at_once(cluster: Cluster, _fx: Fixture) {
    use gochat_proto::logic::PresenceRequest;
    let s = cluster.stack(500).await.unwrap();
    let (ann, bob, cat) = (
        register(&s.logic, "ann").await,
        register(&s.logic, "bob").await,
        register(&s.logic, "cat").await,
    );
    for (user, gateway) in [(&ann, "gw-1"), (&ann, "gw-2"), (&bob, "gw-2")] {
        s.cache
            .set()
            .sadd(&im_logic::presence_key(user), &[gateway.as_bytes()])
            .await
            .unwrap();
    }
    let online = s
        .logic
        .presence(PresenceRequest {
            user_ids: vec![ann.clone(), bob.clone(), cat.clone()],
        })
        .await
        .unwrap()
        .online;
    let mut ann_gateways = online[&ann].gateway_ids.clone();
    ann_gateways.sort();
    assert_eq!(ann_gateways, vec!["gw-1", "gw-2"]);
    assert_eq!(online[&bob].gateway_ids, vec!["gw-2"]);
    assert!(!online.contains_key(&cat), "connected nowhere");
    assert!(
        s.logic
            .presence(PresenceRequest::default())
            .await
            .unwrap()
            .online
            .is_empty()
    );
}

/// A second im-logic on the stack's dependencies, limited by `limits`.
async fn limited(s: &im_testkit::Stack, limits: gochat_ratelimit::Config) -> Logic {
    let limiter = gochat_ratelimit::new(&Context::new(), limits, Default::default())
        .await
        .unwrap();
    Logic::new(
        &Context::new(),
        s.deps.clone().limiter(limiter),
        s.config.clone(),
    )
    .unwrap()
}

async fn large_groups_have_their_own_send_limit(cluster: Cluster, _fx: Fixture) {
    use gochat_ratelimit::Rule;
    // small_group_limit 2: a group of three is large.
    let s = cluster.stack(2).await.unwrap();
    let (ann, bob, cat) = (
        register(&s.logic, "ann").await,
        register(&s.logic, "bob").await,
        register(&s.logic, "cat").await,
    );
    let hour = Duration::from_secs(3600);
    let limits = gochat_ratelimit::Config::for_env(Env::Development)
        .rule(im_logic::SEND_RULE, Rule::new(1, hour, 100))
        .rule(im_logic::GROUP_ADD_RULE, Rule::new(1, hour, 100))
        .rule(im_logic::LARGE_GROUP_RULE, Rule::new(1, hour, 2));
    let logic = limited(&s, limits).await;
    let group = |name: &str, members: Vec<String>| {
        logic.create_group(gochat_proto::logic::CreateGroupRequest {
            user_id: ann.clone(),
            name: name.into(),
            member_ids: members,
            ..Default::default()
        })
    };
    let small = group("pair", vec![bob.clone()]).await.unwrap();
    let large = group("crowd", vec![bob.clone(), cat.clone()])
        .await
        .unwrap();
    for i in 0..2 {
        logic
            .send(send(&ann, &large.conversation_id, &format!("l{i}")))
            .await
            .unwrap();
    }
    let limited = logic
        .send(send(&ann, &large.conversation_id, "l2"))
        .await
        .unwrap_err();
    assert!(
        matches!(&limited, im_logic::Error::RateLimited { what, .. } if what == im_logic::LARGE_GROUP_RULE),
        "{limited}"
    );
    for i in 0..3 {
        logic
            .send(send(&ann, &small.conversation_id, &format!("s{i}")))
            .await
            .unwrap();
    }
}

behaviour_suite! {
    backends: [standalone, engines],
    cases: [
        seqs_are_contiguous_under_twenty_concurrent_senders_and_acked_only_when_stored,
        a_resend_gets_the_first_ack_and_no_second_message,
        resends_at_once_are_stored_once_and_take_no_seq,
        non_members_and_bad_messages_are_refused,
        small_chats_go_to_gateways_large_groups_to_im_task_and_offline_members_to_push,
        refresh_rotates_and_logout_revokes_the_whole_session,
        group_rules_history_and_read_pointers,
        websocket_frames_through_im_upstream_get_an_ack_or_an_error_frame,
        logins_and_sends_are_rate_limited_per_user,
        a_failing_repository_opens_the_breaker_and_calls_fail_fast,
        a_read_receipt_reaches_the_peer_and_the_readers_other_devices,
        logic_over_grpc_answers_as_it_does_in_process,
        presence_is_read_for_a_batch_of_users_at_once,
        large_groups_have_their_own_send_limit,
    ],
}
