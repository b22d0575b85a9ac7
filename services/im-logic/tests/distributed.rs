//! Distributed mode on the real engines: im-repo as a gRPC server on PostgreSQL (messages
//! sharded) and Redis, registered in etcd; im-logic finds it through coord and talks gRPC,
//! with Redis for tokens, seqs and dedup and the Kafka-protocol broker for deliveries.

use std::{sync::Arc, time::Duration};

use gochat_core::{Context, Env};
use gochat_db::sea_orm::{ConnectionTrait, Database};
use gochat_mq::Received;
use gochat_proto::{
    RemoteRepo,
    events::{Downstream, downstream},
    logic::{LoginRequest, RegisterRequest, SendMessageRequest},
    prost::Message as _,
    repo::repo_service_server::RepoServiceServer,
};
use gochat_testkit::{Engine, Fixture, endpoints};
use im_logic::{Config, Deps, Logic};
use tokio::sync::mpsc;
use tonic::transport::{Server, server::TcpIncoming};

const PATIENCE: Duration = Duration::from_secs(60);

fn redis_cache(fx: &Fixture, url: &str) -> gochat_cache::Config {
    let mut config = gochat_cache::Config::for_env(Env::Development);
    config.backend = gochat_cache::Backend::Redis(Box::new(gochat_cache::RedisConfig::with_url(
        Env::Development,
        url.to_owned(),
    )));
    config.key_prefix = format!("{}:", fx.prefix());
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_runs_over_grpc_on_postgres_redis_etcd_and_kafka() {
    let fx = Fixture::new("distributed", "engines");
    let Some([pg, redis, etcd, kafka]) =
        endpoints([Engine::Postgres, Engine::Redis, Engine::Etcd, Engine::Kafka]).await
    else {
        return; // not required in this run: the harness has said which engine is missing
    };
    let ctx = Context::new();

    // im-repo: its own database, messages in four shards, behind a gRPC server.
    let name = fx.name("repo");
    let admin = Database::connect(pg.as_str()).await.unwrap();
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let (base, _) = pg.rsplit_once('/').unwrap();
    let mut db_config = gochat_db::Config::with_primary(Env::Development, format!("{base}/{name}"));
    db_config.sharding.tables.insert("messages".into(), 4);
    let db = gochat_db::new(
        &ctx,
        db_config,
        gochat_db::Options::default()
            .migrator::<im_repo::Migrator>()
            .shard_schema(im_repo::messages_shards()),
    )
    .await
    .unwrap();
    let cache = gochat_cache::new(&ctx, redis_cache(&fx, &redis), Default::default())
        .await
        .unwrap();
    let ids = gochat_uid::new(
        &ctx,
        gochat_uid::Config::for_env(Env::Development),
        Default::default(),
    )
    .await
    .unwrap();
    let repo = im_repo::Repo::new(db, cache.clone(), ids.clone(), im_repo::Config::default())
        .await
        .unwrap();
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let address = incoming.local_addr().unwrap();
    let server_repo = repo.clone();
    tokio::spawn(async move {
        Server::builder()
            .add_service(RepoServiceServer::new(server_repo))
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });

    // coord on etcd: the repo registers, logic discovers it.
    let mut coord_config = gochat_coord::Config::for_env(Env::Development);
    coord_config.root = fx.prefix().trim_end_matches('_').to_owned();
    coord_config.backend = gochat_coord::Backend::Etcd(Box::new(
        gochat_coord::EtcdConfig::with_endpoints(Env::Development, &etcd),
    ));
    let coord = gochat_coord::new(&ctx, coord_config, Default::default())
        .await
        .unwrap();
    let _registration = coord
        .registry()
        .register(
            gochat_coord::Instance::new("im-repo", "repo-1", address.to_string()),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let channel = coord.registry().balanced_channel("im-repo").unwrap();

    let mut kafka_config = gochat_mq::KafkaConfig::with_brokers(Env::Development, &kafka);
    kafka_config
        .properties
        .insert("fetch.wait.max.ms".into(), "10".into());
    let mut mq_config = gochat_mq::Config::for_env(Env::Development);
    mq_config.backend = gochat_mq::Backend::Kafka(Box::new(kafka_config));
    let mq = gochat_mq::new(&ctx, mq_config, Default::default())
        .await
        .unwrap();
    let mut config = Config::default();
    config.jwt_secret = "tK7q9ZpV2mX4bR8nW1cL6yHf3sJd0gAe5uQo".into();
    let deps = Deps::new(
        Arc::new(RemoteRepo::new(channel)),
        cache.clone(),
        ids,
        mq.clone(),
        gochat_clog::Logger::current(),
    );
    let logic = Logic::new(&ctx, deps, config).unwrap();

    // Register (retrying while the balanced channel learns the instance) and log in.
    let mut ann = None;
    for _ in 0..600 {
        match logic
            .register(RegisterRequest {
                username: "ann".into(),
                password: "correct horse".into(),
                ..Default::default()
            })
            .await
        {
            Ok(user) => {
                ann = Some(user.id);
                break;
            }
            Err(e) if e.code() == 1004 => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("{e}"),
        }
    }
    let ann = ann.expect("the repository answered through coord");
    let pair = logic
        .login(LoginRequest {
            username: "ann".into(),
            password: "correct horse".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        logic
            .validate_token(&pair.access_token)
            .await
            .unwrap()
            .user_id,
        ann
    );

    // ann is online on this test's own gateway; her messages to the world channel are acked
    // with contiguous seqs and the resend is deduplicated.
    let gateway = fx.name("gw");
    cache
        .set()
        .sadd(&im_logic::presence_key(&ann), &[gateway.as_bytes()])
        .await
        .unwrap();
    let topic = im_logic::Topics::default().downstream(&gateway);
    mq.admin().ensure_topic(&topic, 1).await.unwrap();
    let (tx, mut delivered) = mpsc::unbounded_channel();
    let handler = move |message: Received| {
        let tx = tx.clone();
        async move {
            tx.send(message.value.to_vec())
                .map_err(|e| gochat_mq::HandlerError::from(e.to_string()))
        }
    };
    let subscription = mq
        .consumer(&fx.name("gw-group"))
        .subscribe(&[&topic], handler)
        .await
        .unwrap();

    let chat = logic
        .create_group(gochat_proto::logic::CreateGroupRequest {
            user_id: ann.clone(),
            name: "solo".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .conversation_id;
    let mut acks = Vec::new();
    for i in 0..10 {
        let request = SendMessageRequest {
            user_id: ann.clone(),
            conversation_id: chat.clone(),
            content: format!("m{i}"),
            message_type: "text".into(),
            client_msg_id: format!("c{i}"),
            ..Default::default()
        };
        acks.push(logic.send(request.clone()).await.unwrap());
        if i == 3 {
            assert_eq!(
                logic.send(request).await.unwrap(),
                acks[3],
                "a resend: the same ack"
            );
        }
    }
    assert_eq!(
        acks.iter().map(|a| a.seq).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<i64>>()
    );
    // The resend is delivered again (at least once; clients drop it by message id).
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 10 {
        let raw = tokio::time::timeout(PATIENCE, delivered.recv())
            .await
            .expect("deliveries through the broker")
            .unwrap();
        if let Some(downstream::Frame::Message(m)) =
            Downstream::decode(raw.as_slice()).unwrap().frame
        {
            seen.insert(m.seq);
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        (1..=10).collect::<Vec<i64>>(),
        "each delivered"
    );

    subscription.shutdown().await;
    repo.close().await;
    coord.close().await;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .unwrap();
}
