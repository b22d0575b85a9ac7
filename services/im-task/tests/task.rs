//! im-task with a real HTTP webhook, every case standalone (SQLite, in-process cache, mq and
//! coord) and on the real engines (PostgreSQL, Redis, Kafka, etcd): large groups in batches,
//! world broadcasts, ended sessions told to every gateway, pushes retried then dead-lettered.

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Json, Router as Http, extract::State, http::StatusCode, routing::post};

use gochat_mq::Received;
use gochat_proto::{
    events::{Downstream, downstream},
    logic::SendMessageRequest,
    prost::Message as _,
    repo::{CreateGroupRequest, CreateUserRequest, repo_service_server::RepoService},
};
use gochat_testkit::{Fixture, behaviour_suite};
use im_task::{Config, TaskWorker, WebhookPush};
use im_testkit::{Cluster, engines, standalone};
use tokio::sync::mpsc;
use tonic::Request;

const PATIENCE: Duration = Duration::from_secs(30);

/// A push gateway: records each body; answers 500 to the first `failures` requests.
#[derive(Clone, Default)]
struct Webhook {
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    failures: Arc<Mutex<usize>>,
}

async fn notify(State(hook): State<Webhook>, Json(body): Json<serde_json::Value>) -> StatusCode {
    {
        let mut failures = hook.failures.lock().unwrap();
        if *failures > 0 {
            *failures -= 1;
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    hook.bodies.lock().unwrap().push(body);
    StatusCode::NO_CONTENT
}

async fn webhook(failures: usize) -> (Webhook, String) {
    let hook = Webhook::default();
    *hook.failures.lock().unwrap() = failures;
    let app = Http::new()
        .route("/notify", post(notify))
        .with_state(hook.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (hook, url)
}

fn worker(s: &im_testkit::Stack, push_url: &str, fanout_batch: usize) -> TaskWorker {
    let mut config = Config::default();
    config.fanout_batch = fanout_batch;
    TaskWorker::new(
        Arc::new(s.repo.clone()),
        im_logic::Router::new(s.cache.clone(), s.mq.clone(), s.topics.clone()),
        s.mq.clone(),
        s.coord.clone(),
        Arc::new(WebhookPush::new(push_url, Duration::from_secs(5)).unwrap()),
        config,
        gochat_clog::Logger::current(),
    )
}

async fn user(s: &im_testkit::Stack, name: &str) -> String {
    s.repo
        .create_user(Request::new(CreateUserRequest {
            username: name.into(),
            password_hash: "x".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .id
}

async fn watch(
    mq: &gochat_mq::Mq,
    topic: &str,
) -> (mpsc::UnboundedReceiver<Downstream>, gochat_mq::Subscription) {
    mq.admin().ensure_topic(topic, 1).await.unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let handler = move |message: Received| {
        let tx = tx.clone();
        async move {
            let frame = Downstream::decode(message.value.as_ref()).unwrap();
            tx.send(frame)
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

fn send(user: &str, conversation: &str, client: &str) -> SendMessageRequest {
    SendMessageRequest {
        user_id: user.into(),
        conversation_id: conversation.into(),
        content: "hello".into(),
        message_type: "text".into(),
        client_msg_id: client.into(),
        ..Default::default()
    }
}

async fn pushed_users(hook: &Webhook, want: usize) -> BTreeSet<String> {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let users: BTreeSet<String> = hook
                .bodies
                .lock()
                .unwrap()
                .iter()
                .flat_map(|b| b["user_ids"].as_array().unwrap().clone())
                .map(|u| u.as_str().unwrap().to_owned())
                .collect();
            if users.len() >= want {
                return users;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the pushes arrived")
}

async fn a_large_group_is_delivered_in_batches_by_gateway_and_offline_members_pushed(
    cluster: Cluster,
    _fx: Fixture,
) {
    let s = cluster.stack(1).await.unwrap();
    let mut users = Vec::new();
    for name in ["owner", "m1", "m2", "m3", "m4"] {
        users.push(user(&s, name).await);
    }
    for (who, gateway) in [(1, "gw-a"), (2, "gw-a"), (3, "gw-b")] {
        s.cache
            .set()
            .sadd(&im_logic::presence_key(&users[who]), &[gateway.as_bytes()])
            .await
            .unwrap();
    }
    let (mut gw_a, _a) = watch(&s.mq, &s.topics.downstream("gw-a")).await;
    let (mut gw_b, _b) = watch(&s.mq, &s.topics.downstream("gw-b")).await;
    let (hook, url) = webhook(0).await;
    let running = worker(&s, &url, 2).run().await.unwrap();

    let group = s
        .repo
        .create_group(Request::new(CreateGroupRequest {
            name: "big".into(),
            owner_id: users[0].clone(),
            member_ids: users[1..].to_vec(),
            max_members: 10,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let ack = s
        .logic
        .send(send(&users[0], &group.conversation_id, "g1"))
        .await
        .unwrap();

    let mut on_a = BTreeSet::new();
    while on_a.len() < 2 {
        let frame = tokio::time::timeout(PATIENCE, gw_a.recv())
            .await
            .unwrap()
            .unwrap();
        let Some(downstream::Frame::Message(m)) = &frame.frame else {
            panic!("{frame:?}")
        };
        assert_eq!(m.message_id, ack.message_id);
        assert!(
            frame.user_ids.len() <= 2,
            "batches of two members: {frame:?}"
        );
        on_a.extend(frame.user_ids);
    }
    assert_eq!(on_a, BTreeSet::from([users[1].clone(), users[2].clone()]));
    let frame = tokio::time::timeout(PATIENCE, gw_b.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(frame.user_ids, vec![users[3].clone()]);
    assert_eq!(
        pushed_users(&hook, 2).await,
        BTreeSet::from([users[0].clone(), users[4].clone()]),
        "the members connected nowhere"
    );
    running.shutdown().await;
}

/// Gateways `gw-a` and `gw-b` registered in coord (deregistered when the registrations are
/// dropped), and what each receives on its downstream topic.
async fn two_gateways(
    s: &im_testkit::Stack,
) -> (
    Vec<gochat_coord::Registration>,
    Vec<(mpsc::UnboundedReceiver<Downstream>, gochat_mq::Subscription)>,
) {
    let mut registrations = Vec::new();
    let mut watches = Vec::new();
    for gateway in ["gw-a", "gw-b"] {
        let registration = s
            .coord
            .registry()
            .register(
                gochat_coord::Instance::new(im_task::GATEWAY_SERVICE, gateway, "127.0.0.1:1"),
                Duration::from_secs(30),
            )
            .await
            .unwrap();
        registrations.push(registration);
        watches.push(watch(&s.mq, &s.topics.downstream(gateway)).await);
    }
    (registrations, watches)
}

async fn the_world_channel_reaches_every_registered_gateway(cluster: Cluster, _fx: Fixture) {
    let s = cluster.stack(1).await.unwrap();
    let ann = user(&s, "ann").await;
    let (_registrations, mut gateways) = two_gateways(&s).await;
    let (_hook, url) = webhook(0).await;
    let running = worker(&s, &url, 100).run().await.unwrap();

    let ack = s.logic.send(send(&ann, "world", "w1")).await.unwrap();
    for (gateway, _) in &mut gateways {
        let frame = tokio::time::timeout(PATIENCE, gateway.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(frame.user_ids.is_empty(), "everyone on the gateway");
        let Some(downstream::Frame::Message(m)) = frame.frame else {
            panic!()
        };
        assert_eq!(m.message_id, ack.message_id);
    }
    running.shutdown().await;
}

/// A logout reaches every gateway, not only those the user's presence names (a socket of
/// the session may have been taken after presence was read): each is told to end it.
async fn an_ended_session_reaches_every_registered_gateway(cluster: Cluster, _fx: Fixture) {
    let s = cluster.stack(1).await.unwrap();
    let (_registrations, mut gateways) = two_gateways(&s).await;
    let (_hook, url) = webhook(0).await;
    let running = worker(&s, &url, 100).run().await.unwrap();
    let account = |username: &str| gochat_proto::logic::RegisterRequest {
        username: username.into(),
        password: "a long enough password".into(),
        ..Default::default()
    };
    let user = s.logic.register(account("cleo")).await.unwrap();
    let pair = s
        .logic
        .login(gochat_proto::logic::LoginRequest {
            username: "cleo".into(),
            password: "a long enough password".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let session = s.logic.logout(&pair.access_token).await.unwrap();

    for (gateway, _) in &mut gateways {
        let frame = tokio::time::timeout(PATIENCE, gateway.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(frame.user_ids, std::slice::from_ref(&user.id));
        let Some(downstream::Frame::Kick(kick)) = frame.frame else {
            panic!("{frame:?}")
        };
        assert_eq!(kick.token_id, session.token_id);
        assert!(kick.revoked_until_ms > gochat_proto::now_ms());
    }
    running.shutdown().await;
}

async fn a_failing_webhook_is_retried_and_a_dead_one_dead_lettered(cluster: Cluster, _fx: Fixture) {
    let s = cluster.stack(1).await.unwrap();
    let (ann, bob) = (user(&s, "ann").await, user(&s, "bob").await);
    let group = s
        .repo
        .create_group(Request::new(CreateGroupRequest {
            name: "pair".into(),
            owner_id: ann.clone(),
            member_ids: vec![bob.clone()],
            max_members: 10,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();

    // Two failures, then success: within max_retries 3, the push arrives.
    let (hook, url) = webhook(2).await;
    let running = worker(&s, &url, 100).run().await.unwrap();
    s.logic
        .send(send(&ann, &group.conversation_id, "p1"))
        .await
        .unwrap();
    assert_eq!(
        pushed_users(&hook, 2).await,
        BTreeSet::from([ann.clone(), bob.clone()])
    );
    running.shutdown().await;

    // A webhook that never answers well: the job ends in the dead-letter topic.
    let dlq = format!("{}.dlq", &s.topics.task());
    s.mq.admin().ensure_topic(&dlq, 1).await.unwrap();
    let (dead_tx, mut dead) = mpsc::unbounded_channel();
    let handler = move |message: Received| {
        let tx = dead_tx.clone();
        async move {
            tx.send(message.value.to_vec())
                .map_err(|e| gochat_mq::HandlerError::from(e.to_string()))
        }
    };
    let _dlq =
        s.mq.consumer("test-dlq")
            .subscribe(&[&dlq], handler)
            .await
            .unwrap();
    let (hook, url) = webhook(usize::MAX).await;
    let running = worker(&s, &url, 100).run().await.unwrap();
    s.logic
        .send(send(&ann, &group.conversation_id, "p2"))
        .await
        .unwrap();
    let job = tokio::time::timeout(PATIENCE, dead.recv())
        .await
        .unwrap()
        .unwrap();
    let job = gochat_proto::events::Task::decode(job.as_slice()).unwrap();
    assert!(
        matches!(job.job, Some(gochat_proto::events::task::Job::Push(_))),
        "{job:?}"
    );
    assert!(hook.bodies.lock().unwrap().is_empty());
    running.shutdown().await;
}

behaviour_suite! {
    backends: [standalone, engines],
    cases: [
        a_large_group_is_delivered_in_batches_by_gateway_and_offline_members_pushed,
        the_world_channel_reaches_every_registered_gateway,
        an_ended_session_reaches_every_registered_gateway,
        a_failing_webhook_is_retried_and_a_dead_one_dead_lettered,
    ],
}
