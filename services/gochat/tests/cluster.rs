//! End-to-end: gochat in distributed mode — im-repo, im-logic, im-task and two gateways, each
//! its own process started from its deploy/config/ file, on PostgreSQL (messages in 4
//! shards), Redis and etcd, with the message bus on the Kafka-protocol broker and, again, on
//! Redis Streams (the variables of deploy/config/bus-redis.env). Senders use one gateway,
//! receivers the other. Tokens are signed with Ed25519 and checked by the gateways
//! themselves; internal gRPC runs over mutual TLS with the service token (keys from
//! scripts/keys).

mod support;

use std::path::PathBuf;

use gochat_db::sea_orm::{ConnectionTrait, Database};
use gochat_testkit::{Engine, Fixture, endpoint, endpoints, env_list};
use support::{
    Client, PATIENCE, Proc, assert_acked_stored, by_seq,
    scenarios::{self, Target},
    security, sessions,
};

struct Cluster {
    env: Vec<(String, String)>,
    coord: gochat_coord::Coord,
    repo: Proc,
    logic: Proc,
    _task: Proc,
    gateways: [Proc; 2],
    target: Target,
    keys: tempfile::TempDir,
}

/// Fresh keys from scripts/keys, as an operator makes them.
fn keys() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let script: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "..", "scripts", "keys"]
        .iter()
        .collect();
    let made = std::process::Command::new(script)
        .arg(dir.path().join("keys"))
        .status()
        .unwrap();
    assert!(made.success(), "scripts/keys failed");
    dir
}

fn config(service: &str) -> String {
    let file: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "..", "deploy", "config"]
        .iter()
        .collect();
    file.join(format!("{service}.toml")).display().to_string()
}

fn start(service: &str, env: &[(String, String)]) -> Proc {
    let bin = match service {
        "im-repo" => env!("CARGO_BIN_EXE_im-repo"),
        "im-logic" => env!("CARGO_BIN_EXE_im-logic"),
        "im-task" => env!("CARGO_BIN_EXE_im-task"),
        _ => env!("CARGO_BIN_EXE_im-gateway"),
    };
    let config = config(service);
    let args = [
        "--config",
        config.as_str(),
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
    ];
    let ready = if service == "im-task" {
        "im-task: ready"
    } else {
        &format!("{service}: listening on ")
    };
    // Static members of their groups, as scripts/cluster runs them: a service restarted under
    // its name takes its partitions back without a rebalance.
    let mut env = env.to_vec();
    env.push((
        "GOCHAT_MQ__CONSUMER__INSTANCE_ID".to_owned(),
        service.to_owned(),
    ));
    Proc::spawn(bin, &args, &env, ready)
}

/// The services' message bus.
#[derive(Clone, Copy, Debug)]
enum Bus {
    Kafka,
    Redis,
}

/// The bus variables of deploy/config/bus-redis.env, as an operator would set them.
fn redis_bus_env() -> Vec<(String, String)> {
    let file: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        "deploy",
        "config",
        "bus-redis.env",
    ]
    .iter()
    .collect();
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The cluster on the engines, in a database, key prefix, topic prefix and coord root of its
/// own; `None` when the engines are not required in this run and missing.
async fn cluster(fx: &Fixture, bus: Bus) -> Option<Cluster> {
    let [pg, redis, etcd] = endpoints([Engine::Postgres, Engine::Redis, Engine::Etcd]).await?;
    let bus_env: Vec<(String, String)> = match bus {
        // As scripts/cluster runs it on the local broker: fewer partitions to poll.
        Bus::Kafka => vec![
            (
                "GOCHAT_MQ__BACKEND__KAFKA__BROKERS".to_owned(),
                env_list(&endpoint(Engine::Kafka).await?),
            ),
            ("GOCHAT_LOGIC__TOPIC_PARTITIONS".to_owned(), "8".to_owned()),
            (
                "GOCHAT_GATEWAY__TOPIC_PARTITIONS".to_owned(),
                "8".to_owned(),
            ),
        ],
        Bus::Redis => redis_bus_env()
            .into_iter()
            .map(|(k, v)| match k.as_str() {
                "GOCHAT_MQ__BACKEND__REDIS__URL" => (k, redis.clone()),
                "GOCHAT_MQ__BACKEND__REDIS__PREFIX" => (k, format!("{}mq", fx.prefix())),
                _ => (k, v),
            })
            .collect(),
    };
    let name = fx.name("cluster");
    let admin = Database::connect(pg.as_str()).await.unwrap();
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let (server, _) = pg.rsplit_once('/').unwrap();
    let prefix = fx.prefix().to_owned();
    let keys = keys();
    let path = |name: &str| keys.path().join("keys").join(name).display().to_string();
    let read = |name: &str| std::fs::read_to_string(path(name)).unwrap();
    let env: Vec<(String, String)> = [
        ("GOCHAT_DB__PRIMARY", format!("{server}/{name}")),
        ("GOCHAT_CACHE__BACKEND__REDIS__URL", redis),
        ("GOCHAT_CACHE__KEY_PREFIX", format!("{prefix}:")),
        ("GOCHAT_COORD__BACKEND__ETCD__ENDPOINTS", env_list(&etcd)),
        (
            "GOCHAT_COORD__ROOT",
            prefix.trim_end_matches('_').to_owned(),
        ),
        ("GOCHAT_LOGIC__TOPIC_PREFIX", prefix.clone()),
        ("GOCHAT_GATEWAY__TOPIC_PREFIX", prefix.clone()),
        ("GOCHAT_METRICS__LISTEN", "127.0.0.1:0".to_owned()),
        // Every scenario registers from 127.0.0.1; the flood at the end still meets the limit.
        (
            "GOCHAT_RATELIMIT__RULES__REGISTER_ADDR__BURST",
            "150".to_owned(),
        ),
        // The sessions scenario logs in once per round of its race.
        (
            "GOCHAT_RATELIMIT__RULES__LOGIN_ADDR__BURST",
            "150".to_owned(),
        ),
        // deploy/config ships no secrets: the operator's, here fresh ones per cluster.
        ("GOCHAT_SERVICE_TOKEN", read("service_token")),
        ("GOCHAT_LOGIC__JWT_PRIVATE_KEY", read("jwt.key")),
        (
            "GOCHAT_GATEWAY__JWT_PUBLIC_KEYS",
            env_list(&path("jwt.pub")),
        ),
        ("GOCHAT_GRPC_TLS__CERT", path("service.pem")),
        ("GOCHAT_GRPC_TLS__KEY", path("service.key")),
        ("GOCHAT_GRPC_TLS__CA", path("ca.pem")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .chain(bus_env)
    .collect();
    let mut coord_config = gochat_coord::Config::default();
    coord_config.root = prefix.trim_end_matches('_').to_owned();
    coord_config.backend = gochat_coord::Backend::Etcd(Box::new(
        gochat_coord::EtcdConfig::with_endpoints(gochat_core::Env::Development, &etcd),
    ));
    let coord = gochat_coord::new(
        &gochat_core::Context::new(),
        coord_config,
        Default::default(),
    )
    .await
    .unwrap();
    let repo = start("im-repo", &env);
    let logic = start("im-logic", &env);
    let task = start("im-task", &env);
    let gateways = [start("im-gateway", &env), start("im-gateway", &env)];
    let target = Target {
        a: Client::new(gateways[0].announced.clone()),
        b: Client::new(gateways[1].announced.clone()),
    };
    Some(Cluster {
        env,
        coord,
        repo,
        logic,
        _task: task,
        gateways,
        target,
        keys,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_holds_across_two_gateways_on_the_engines() {
    the_contract_holds(Bus::Kafka, Fixture::new("e2e", "cluster")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_holds_on_the_redis_bus() {
    the_contract_holds(Bus::Redis, Fixture::new("e2e", "cluster_redis_bus")).await;
}

async fn the_contract_holds(bus: Bus, fx: Fixture) {
    let Some(mut cluster) = cluster(&fx, bus).await else {
        return; // not required in this run: the harness has said which engine is missing
    };
    let t = &cluster.target;
    internal_calls_need_the_service_token(&cluster).await;
    scenarios::accounts(t).await;
    scenarios::single_chat(t).await;
    scenarios::history_and_receipts(t).await;
    scenarios::groups(t).await;
    scenarios::world(t).await;
    scenarios::bad_input(t).await;
    scenarios::conversation_lists_are_paged(t).await;
    security::usernames_are_normalised(t).await;
    security::refresh_reuse_ends_the_session(t).await;
    security::resends_are_acked_not_routed(t).await;
    security::world_is_limited(t).await;
    security::group_removal_bans_and_history_starts_at_join(t).await;
    security::reads_are_clamped_and_fields_bounded(t).await;
    sessions::logout_closes_every_socket_of_the_session(t).await;
    sessions::a_frame_of_an_ended_session_is_kicked(t).await;
    sessions::refresh_reuse_closes_the_sessions_sockets(t).await;
    sessions::sockets_racing_a_logout_all_close(t, 8).await;

    // kill -9 of im-logic and im-repo: every acked message survives, seq continues.
    let ann = t.a.user("ann").await;
    let bob = t.a.user("bob").await;
    let conversation = t.a.single(&ann, &bob).await;
    let mut socket = t.a.socket(&ann).await;
    for i in 0..30 {
        socket
            .message(&conversation, &format!("m{i}"), &format!("c{i}"))
            .await;
    }
    let acked = socket.acks(20).await;
    cluster.logic.kill9();
    cluster.repo.kill9();
    cluster.repo = start("im-repo", &cluster.env);
    cluster.logic = start("im-logic", &cluster.env);
    // The dead instances stay registered until their leases run out; calls refused by them
    // are tried again by the clients. Wait until coord lists only the live ones, so every
    // call below is answered by a restarted service.
    for service in ["im-repo", "im-logic"] {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while cluster
            .coord
            .registry()
            .discover(service)
            .await
            .unwrap()
            .len()
            > 1
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{service} still lists its dead instance"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    let t = &cluster.target;

    // Every message the socket sent is stored once: what the killed im-logic held unacked
    // is handled again when the bus hands its partitions on (on Kafka at once, a static
    // member taking its own back; on Redis Streams once the dead member's leases run out).
    let deadline = tokio::time::Instant::now() + 3 * PATIENCE;
    let history = loop {
        let history = t.b.history(&bob, &conversation).await;
        if history.len() >= 30 || tokio::time::Instant::now() >= deadline {
            break history;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    let contents: std::collections::BTreeSet<&str> = history
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert_eq!(contents.len(), 30, "each of the 30 messages stored once");
    assert_acked_stored(&acked, &by_seq(&history));
    // Seqs are given in the storing transaction: no kill leaves a hole.
    let ack = t.b.send(&ann, &conversation, "after the restart").await;
    assert_eq!(ack["seq"].as_i64(), Some(31), "seq continues with no hole");
    let history = t.b.history(&bob, &conversation).await;
    let stored = by_seq(&history);
    assert_eq!(
        stored.keys().copied().collect::<Vec<_>>(),
        (1..=31).collect::<Vec<_>>(),
        "seqs 1 to 31, none skipped or repeated"
    );
    assert_eq!(
        stored.get(&31).map(String::as_str),
        ack["message_id"].as_str(),
        "stored at its seq"
    );
    let last = 31;

    // SIGTERM of a gateway: its sockets are kicked with a reason, it exits cleanly, and the
    // other gateway goes on serving.
    let mut leaving = t.b.socket(&bob).await;
    let [_, gateway] = &mut cluster.gateways;
    assert!(
        gateway.terminate(),
        "im-gateway exits with success on SIGTERM"
    );
    assert_eq!(leaving.closed().await.as_deref(), Some("shutdown"));
    let ack = cluster
        .target
        .a
        .send(&bob, &conversation, "still served")
        .await;
    assert_eq!(ack["seq"].as_i64(), Some(last + 1));
    // Last: it spends the address's registrations.
    security::register_floods_are_refused(&cluster.target).await;
    drop(cluster);

    let pg = endpoint(Engine::Postgres).await.unwrap();
    let admin = Database::connect(pg.as_str()).await.unwrap();
    let dropped = admin
        .execute_unprepared(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            fx.name("cluster")
        ))
        .await;
    assert!(dropped.is_ok(), "{dropped:?}");
}

/// Reaching im-repo's or im-logic's port is not enough: a call without the service token, or
/// with another, is refused.
async fn internal_calls_need_the_service_token(cluster: &Cluster) {
    use gochat_proto::{
        GrpcTls, RemoteLogic, RemoteRepo, ServiceToken,
        logic::{UserRef, logic_service_server::LogicService as _},
        repo::{GetCredentialsRequest, repo_service_server::RepoService as _},
        tonic::{
            Code, Request,
            transport::{Certificate, Channel, ClientTlsConfig},
        },
    };
    let keys = cluster.keys.path().join("keys");
    let tls = GrpcTls::new(
        keys.join("service.pem"),
        keys.join("service.key"),
        keys.join("ca.pem"),
    );
    let channel = |proc: &Proc, tls: Option<ClientTlsConfig>| {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let endpoint = Channel::from_shared(format!("{scheme}://{}", proc.announced)).unwrap();
        match tls {
            Some(tls) => endpoint.tls_config(tls).unwrap(),
            None => endpoint,
        }
        .connect_lazy()
    };
    let with_cert = tls.client().unwrap();
    let token = ServiceToken::new(
        std::fs::read_to_string(keys.join("service_token"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let wrong = ServiceToken::new("Wr0ngT0kenK9qZpV2mX4bR8nW1cL6yHf3sJd0gAe").unwrap();
    // What a call to im-repo and one to im-logic answer, with this TLS and token.
    let codes = async |tls: Option<ClientTlsConfig>, token: Option<ServiceToken>| {
        let repo = RemoteRepo::new(channel(&cluster.repo, tls.clone())).with_token(token.clone());
        let logic = RemoteLogic::new(channel(&cluster.logic, tls)).with_token(token);
        let repo = repo.get_credentials(Request::new(GetCredentialsRequest {
            username: "nobody-here".into(),
        }));
        let logic = logic.get_profile(Request::new(UserRef {
            user_id: "1".into(),
        }));
        [repo.await.map(drop), logic.await.map(drop)].map(|answer| match answer {
            Ok(()) => Code::Ok,
            Err(status) => status.code(),
        })
    };
    // Without mutual TLS — plain TCP, or TLS without a client certificate — no call gets
    // through, whatever token it carries.
    let ca = Certificate::from_pem(std::fs::read(keys.join("ca.pem")).unwrap());
    let no_cert = ClientTlsConfig::new()
        .ca_certificate(ca)
        .domain_name(gochat_proto::DEFAULT_SERVER_NAME);
    for tls in [None, Some(no_cert)] {
        let answers = codes(tls, Some(token.clone())).await;
        // The connection fails (how depends on where the handshake stops): never an answer
        // of the service, not even its interceptor's.
        assert!(
            answers
                .iter()
                .all(|code| !matches!(code, Code::Ok | Code::NotFound | Code::Unauthenticated)),
            "{answers:?}"
        );
    }
    // With the certificate, the token is still required.
    for wrong in [None, Some(wrong)] {
        let answers = codes(with_cert.clone(), wrong).await;
        assert_eq!(answers, [Code::Unauthenticated; 2]);
    }
    // Both: the calls are served (an unknown user is a NotFound, not a refusal).
    let answers = codes(with_cert, Some(token)).await;
    assert_eq!(answers, [Code::NotFound; 2]);
}
