//! The example as a user runs it: standalone with nothing installed, then on the real engines
//! with the shipped `distributed.toml` (and a greeting kept in coord, the loader's last
//! layer). Each run answers its endpoints and stops cleanly on SIGTERM.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use gochat_kit::prelude::*;
use gochat_testkit::{Engine, endpoints, env_list};
use serde_json::{Value, json};

struct Service {
    child: Child,
    url: String,
    lines: mpsc::Receiver<String>,
}

impl Service {
    /// Starts the example in `dir` with `args` and `env`; waits for its address.
    fn start(dir: &std::path::Path, args: &[&str], env: &[(&str, String)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_example-whole-stack"))
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v)))
            .env("GOCHAT_LISTEN", "127.0.0.1:0")
            .env("GOCHAT_METRICS__LISTEN", "127.0.0.1:0")
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("stderr.log")).expect("a log file"))
            .spawn()
            .expect("the example starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        let url = loop {
            let line = lines
                .recv_timeout(Duration::from_secs(120))
                .expect("the example says where it listens");
            if let Some(url) = line.strip_prefix("whole-stack: listening on ") {
                break url.to_owned();
            }
        };
        Self { child, url, lines }
    }

    /// SIGTERM; whether it exited with success after saying it stopped.
    fn stop(mut self) -> bool {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let stopped = self.lines.iter().any(|l| l == "whole-stack: stopped");
        self.child.wait().is_ok_and(|s| s.success()) && stopped
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    let answer = http.get(url).send().await.expect("an answer");
    answer.json().await.expect("a JSON body")
}

/// What both modes must do: notes stored once per key, read back, announced, healthy.
async fn exercise(url: &str, backends: Value, greeting: &str) {
    let http = reqwest::Client::new();
    let index: Value = get_json(&http, &format!("{url}/")).await;
    assert_eq!(index["backends"], backends);
    assert_eq!(index["greeting"], greeting);

    let key = format!("key-{}", std::process::id());
    let mut ids = Vec::new();
    for _ in 0..2 {
        let created = http
            .post(format!("{url}/notes"))
            .header("idempotency-key", &key)
            .json(&json!({ "text": "written once" }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let note: Value = created.json().await.unwrap();
        ids.push(note["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        ids[0], ids[1],
        "a retry with the same key gets the first note"
    );
    let note: Value = http
        .get(format!("{url}/notes/{}", ids[0]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(note["text"], "written once");
    let missing = http.get(format!("{url}/notes/1")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let empty = http
        .post(format!("{url}/notes"))
        .json(&json!({ "text": "" }))
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 400);

    // The consumer sees the announcement (at least once); the instance is registered.
    let deadline = Instant::now() + Duration::from_secs(60);
    let stats = loop {
        let stats: Value = get_json(&http, &format!("{url}/stats")).await;
        if stats["announced"].as_u64() >= Some(1) || Instant::now() > deadline {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        stats["announced"].as_u64() >= Some(1),
        "nothing consumed: {stats}"
    );
    let listening = url.trim_start_matches("http://");
    assert!(
        stats["instances"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == listening),
        "{stats}"
    );
    let health = http.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn standalone_needs_nothing_installed() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(dir.path(), &[], &[]);
    let backends = json!({ "coord": "memory", "cache": "memory", "mq": "memory", "db": "sqlite" });
    exercise(&service.url, backends, "hello from the defaults").await;
    assert!(service.stop(), "a clean stop on SIGTERM");
    assert!(
        dir.path().join("whole-stack.db").exists(),
        "SQLite in the working directory"
    );
}

#[tokio::test]
async fn distributed_with_one_config_file() {
    let Some([pg, redis, kafka, etcd]) =
        endpoints([Engine::Postgres, Engine::Redis, Engine::Kafka, Engine::Etcd]).await
    else {
        return;
    };
    // The shipped file names the engines' default loopback ports; these say the same unless
    // the run's engines live elsewhere.
    let env = [
        ("GOCHAT_DB__PRIMARY", pg),
        ("GOCHAT_CACHE__BACKEND__REDIS__URL", redis),
        ("GOCHAT_MQ__BACKEND__KAFKA__BROKERS", env_list(&kafka)),
        (
            "GOCHAT_MQ__BACKEND__KAFKA__PROPERTIES",
            "{\"fetch.wait.max.ms\" = \"10\"}".to_owned(),
        ),
        ("GOCHAT_COORD__BACKEND__ETCD__ENDPOINTS", env_list(&etcd)),
    ];

    // A greeting kept in coord overrides the defaults, the file and the environment.
    let mut coord_config = coord::Config::for_env(Env::Development);
    coord_config.backend = coord::Backend::Etcd(Box::new(coord::EtcdConfig::with_endpoints(
        Env::Development,
        &etcd,
    )));
    let coord = coord::new(&Context::new(), coord_config, coord::Options::default())
        .await
        .unwrap();
    let settings = coord.config().scope("whole-stack", "settings").unwrap();
    let greeting = format!("hello from coord {}", std::process::id());
    settings.put("greeting", &greeting).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/distributed.toml");
    let service = Service::start(dir.path(), &["--config", file], &env);
    let backends = json!({ "coord": "etcd", "cache": "redis", "mq": "kafka", "db": "postgres" });
    exercise(&service.url, backends, &greeting).await;
    assert!(service.stop(), "a clean stop on SIGTERM");
    settings.delete("greeting").await.unwrap();
    coord.close().await;
}

#[test]
fn a_bad_setting_is_named_and_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_example-whole-stack"))
        .env("GOCHAT_CACHE__KEY_PREFIKS", "x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("cache.key_prefiks") && said.contains("GOCHAT_CACHE__KEY_PREFIKS"),
        "{said}"
    );
}
