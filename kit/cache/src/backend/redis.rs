//! The Redis backend, on fred: each command is sent as a raw command (routed by its first key
//! in a cluster), a pipeline as one fred pipeline.

use std::time::Duration;

use fred::{
    error::{Error as FredError, ErrorKind as FredKind},
    interfaces::{ClientLike, HashesInterface, KeysInterface},
    prelude::{Builder, Pool, ReconnectPolicy},
    types::{
        ClusterHash, CustomCommand, Expiration, SetOptions, Value, config::Config as FredConfig,
    },
};

use gochat_core::redact_url;

use crate::{
    command::{Command, Reply, SetWhen},
    config::RedisConfig,
    error::{Error, Result},
};

/// Releases a lock only if the caller still owns it.
const DEL_IF_EQ: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
/// Fills a cache-aside entry only if the loader's lease is still there (no invalidation since).
const SET_IF_EQ: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 else return 0 end";
/// Renews a lock only if the caller still owns it.
const PEXPIRE_IF_EQ: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";

pub(crate) struct RedisBackend {
    pool: Pool,
}

impl RedisBackend {
    /// Connects the pool and checks that the server answers.
    pub(crate) async fn connect(config: &RedisConfig) -> Result<Self> {
        let fred_config = FredConfig::from_url(&config.url).map_err(|e| {
            Error::Config(gochat_core::ConfigError::new(
                "backend.redis.url",
                e.details().to_owned(),
            ))
        })?;
        let min = u32::try_from(config.reconnect_min_delay.as_millis()).unwrap_or(u32::MAX);
        let max = u32::try_from(config.reconnect_max_delay.as_millis()).unwrap_or(u32::MAX);
        let pool = Builder::from_config(fred_config)
            .with_connection_config(|c| {
                c.connection_timeout = config.connect_timeout;
                c.internal_command_timeout = config.command_timeout;
            })
            .with_performance_config(|p| {
                p.default_command_timeout = config.command_timeout;
            })
            .set_policy(ReconnectPolicy::new_exponential(0, min, max, 2))
            .build_pool(config.pool_size)
            .map_err(|e| map_error(&e))?;
        pool.init().await.map_err(|e| {
            Error::Unavailable(format!(
                "connecting to {}: {}",
                redact_url(&config.url),
                e.details()
            ))
        })?;
        let backend = Self { pool };
        backend.one(Command::Ping).await?;
        Ok(backend)
    }
}

fn map_error(error: &FredError) -> Error {
    let details = error.details();
    if details.starts_with("WRONGTYPE") {
        return Error::WrongType { key: String::new() };
    }
    if details.contains("not an integer") {
        return Error::NotAnInteger { key: String::new() };
    }
    match error.kind() {
        FredKind::Timeout => Error::Timeout(details.to_owned()),
        FredKind::IO
        | FredKind::Canceled
        | FredKind::Auth
        | FredKind::Routing
        | FredKind::Cluster => Error::Unavailable(format!("{:?}: {details}", error.kind())),
        FredKind::InvalidArgument | FredKind::InvalidCommand => {
            Error::InvalidArgument(details.to_owned())
        }
        _ => Error::Backend(format!("{:?}: {details}", error.kind())),
    }
}

/// Adds the key to key-specific errors.
fn with_key(error: Error, key: &str) -> Error {
    match error {
        Error::WrongType { .. } => Error::WrongType {
            key: key.to_owned(),
        },
        Error::NotAnInteger { .. } => Error::NotAnInteger {
            key: key.to_owned(),
        },
        other => other,
    }
}

fn reply(value: Value) -> Reply {
    match value {
        Value::Null => Reply::Nil,
        Value::Integer(i) => Reply::Int(i),
        Value::Double(f) => Reply::Float(f),
        Value::Boolean(b) => Reply::Int(i64::from(b)),
        Value::String(s) if s == "OK" => Reply::Ok,
        Value::String(s) => Reply::Bytes(s.as_bytes().to_vec()),
        Value::Bytes(b) => Reply::Bytes(b.to_vec()),
        Value::Array(items) => Reply::Array(items.into_iter().map(reply).collect()),
        Value::Map(map) => Reply::Array(
            map.inner()
                .into_iter()
                .flat_map(|(k, v)| [reply(Value::from(k)), reply(v)])
                .collect(),
        ),
        Value::Queued => Reply::Ok,
    }
}

fn ms(ttl: Duration) -> Value {
    Value::Integer(i64::try_from(ttl.as_millis().max(1)).unwrap_or(i64::MAX))
}

fn bytes(b: Vec<u8>) -> Value {
    Value::Bytes(b.into())
}

fn text(s: String) -> Value {
    Value::String(s.into())
}

fn score(f: f64) -> Value {
    Value::Double(f)
}

/// The command name and arguments; the first argument is the key that routes it.
fn encode(command: Command) -> (&'static str, Vec<Value>) {
    match command {
        Command::Ping => ("PING", vec![]),
        Command::Get(key) => ("GET", vec![text(key)]),
        Command::Set {
            key,
            value,
            ttl,
            when,
        } => {
            let mut args = vec![text(key), bytes(value)];
            if let Some(ttl) = ttl {
                args.extend([text("PX".into()), ms(ttl)]);
            }
            if when == SetWhen::IfAbsent {
                args.push(text("NX".into()));
            }
            ("SET", args)
        }
        Command::GetSet { key, value } => ("GETSET", vec![text(key), bytes(value)]),
        Command::IncrBy { key, by } => ("INCRBY", vec![text(key), Value::Integer(by)]),
        Command::MGet(keys) => ("MGET", keys.into_iter().map(text).collect()),
        Command::MSet(pairs) => (
            "MSET",
            pairs
                .into_iter()
                .flat_map(|(k, v)| [text(k), bytes(v)])
                .collect(),
        ),
        Command::Del(keys) => ("DEL", keys.into_iter().map(text).collect()),
        Command::Exists(key) => ("EXISTS", vec![text(key)]),
        Command::PExpire { key, ttl } => ("PEXPIRE", vec![text(key), ms(ttl)]),
        Command::PTtl(key) => ("PTTL", vec![text(key)]),
        Command::HGet { key, field } => ("HGET", vec![text(key), text(field)]),
        Command::HSet { key, pairs } => {
            let mut args = vec![text(key)];
            args.extend(pairs.into_iter().flat_map(|(f, v)| [text(f), bytes(v)]));
            ("HSET", args)
        }
        Command::HGetAll(key) => ("HGETALL", vec![text(key)]),
        Command::HDel { key, fields } => (
            "HDEL",
            std::iter::once(text(key))
                .chain(fields.into_iter().map(text))
                .collect(),
        ),
        Command::HExists { key, field } => ("HEXISTS", vec![text(key), text(field)]),
        Command::HLen(key) => ("HLEN", vec![text(key)]),
        Command::HIncrBy { key, field, by } => {
            ("HINCRBY", vec![text(key), text(field), Value::Integer(by)])
        }
        Command::SAdd { key, members } => (
            "SADD",
            std::iter::once(text(key))
                .chain(members.into_iter().map(bytes))
                .collect(),
        ),
        Command::SRem { key, members } => (
            "SREM",
            std::iter::once(text(key))
                .chain(members.into_iter().map(bytes))
                .collect(),
        ),
        Command::SMembers(key) => ("SMEMBERS", vec![text(key)]),
        Command::SIsMember { key, member } => ("SISMEMBER", vec![text(key), bytes(member)]),
        Command::SCard(key) => ("SCARD", vec![text(key)]),
        Command::ZAdd { key, members } => {
            let mut args = vec![text(key)];
            args.extend(members.into_iter().flat_map(|(s, m)| [score(s), bytes(m)]));
            ("ZADD", args)
        }
        Command::ZRange {
            key,
            start,
            stop,
            rev,
        } => {
            let name = if rev { "ZREVRANGE" } else { "ZRANGE" };
            (
                name,
                vec![
                    text(key),
                    Value::Integer(start),
                    Value::Integer(stop),
                    text("WITHSCORES".into()),
                ],
            )
        }
        Command::ZRangeByScore { key, min, max } => (
            "ZRANGEBYSCORE",
            vec![text(key), score(min), score(max), text("WITHSCORES".into())],
        ),
        Command::ZRem { key, members } => (
            "ZREM",
            std::iter::once(text(key))
                .chain(members.into_iter().map(bytes))
                .collect(),
        ),
        Command::ZRemRangeByRank { key, start, stop } => (
            "ZREMRANGEBYRANK",
            vec![text(key), Value::Integer(start), Value::Integer(stop)],
        ),
        Command::ZCard(key) => ("ZCARD", vec![text(key)]),
        Command::ZCount { key, min, max } => ("ZCOUNT", vec![text(key), score(min), score(max)]),
        Command::ZScore { key, member } => ("ZSCORE", vec![text(key), bytes(member)]),
        Command::DelIfEq { key, value } => (
            "EVAL",
            vec![
                text(DEL_IF_EQ.into()),
                Value::Integer(1),
                text(key),
                bytes(value),
            ],
        ),
        Command::SetIfEq {
            key,
            expected,
            value,
            ttl,
        } => (
            "EVAL",
            vec![
                text(SET_IF_EQ.into()),
                Value::Integer(1),
                text(key),
                bytes(expected),
                bytes(value),
                ms(ttl),
            ],
        ),
        Command::PExpireIfEq { key, value, ttl } => (
            "EVAL",
            vec![
                text(PEXPIRE_IF_EQ.into()),
                Value::Integer(1),
                text(key),
                bytes(value),
                ms(ttl),
            ],
        ),
        Command::Eval { script, keys, args } => ("EVAL", script_args(script, keys, args)),
        Command::EvalSha { sha, keys, args } => ("EVALSHA", script_args(sha, keys, args)),
        Command::ScriptLoad(script) => ("SCRIPT", vec![text("LOAD".into()), text(script)]),
    }
}

fn script_args(script: String, keys: Vec<String>, args: Vec<Vec<u8>>) -> Vec<Value> {
    let mut values = vec![
        text(script),
        Value::Integer(i64::try_from(keys.len()).unwrap_or(0)),
    ];
    values.extend(keys.into_iter().map(text));
    values.extend(args.into_iter().map(bytes));
    values
}

fn custom(name: &'static str) -> CustomCommand {
    // EVAL and EVALSHA route by their first key (the third argument), SCRIPT LOAD anywhere,
    // everything else by the first argument.
    let hash = match name {
        "EVAL" | "EVALSHA" => ClusterHash::Offset(2),
        "SCRIPT" => ClusterHash::Random,
        _ => ClusterHash::FirstKey,
    };
    CustomCommand::new_static(name, hash, false)
}

fn millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis().max(1)).unwrap_or(i64::MAX)
}

impl RedisBackend {
    /// Runs one command. The hot commands go through fred's typed interface: its untyped
    /// `custom` path measured at about two thirds of the typed one under load (see
    /// docs/benchmarks.md). Everything else goes through `custom`.
    pub(crate) async fn one(&self, command: Command) -> Result<Reply> {
        // Kept for the error message (WRONGTYPE and the like name the key). A copy per call:
        // attaching the key where the caller already borrows it would save it (see
        // docs/benchmarks.md).
        let error_key = command.key().to_owned();
        // The match is here rather than in a helper `async fn`: each async layer copies the
        // ~5 KB fred future once more per call.
        let pool = &self.pool;
        let sent: Result<Value, FredError> = match command {
            Command::Get(key) => pool.get(key).await,
            Command::Set {
                key,
                value,
                ttl,
                when,
            } => {
                let expire = ttl.map(|t| Expiration::PX(millis(t)));
                let options = (when == SetWhen::IfAbsent).then_some(SetOptions::NX);
                pool.set(key, bytes(value), expire, options, false).await
            }
            Command::Del(keys) => pool.del(keys).await,
            Command::Exists(key) => pool.exists(key).await,
            Command::IncrBy { key, by } => pool.incr_by(key, by).await,
            Command::PExpire { key, ttl } => pool.pexpire(key, millis(ttl), None).await,
            Command::HGet { key, field } => pool.hget(key, field).await,
            Command::HSet { key, pairs } => {
                let map: Vec<(String, Value)> =
                    pairs.into_iter().map(|(f, v)| (f, bytes(v))).collect();
                pool.hset(key, map).await
            }
            other => {
                let (name, args) = encode(other);
                pool.custom::<Value, Value>(custom(name), args).await
            }
        };
        sent.map(reply)
            .map_err(|e| with_key(map_error(&e), &error_key))
    }
}

impl RedisBackend {
    /// Several commands in one fred pipeline; one result per command.
    pub(crate) async fn exec(&self, commands: Vec<Command>) -> Result<Vec<Result<Reply>>> {
        let keys: Vec<String> = commands.iter().map(|c| c.key().to_owned()).collect();
        let pipeline = self.pool.next().pipeline();
        for command in commands {
            let (name, args) = encode(command);
            pipeline
                .custom::<(), Value>(custom(name), args)
                .await
                .map_err(|e| map_error(&e))?;
        }
        let results = pipeline.try_all::<Value>().await;
        Ok(results
            .into_iter()
            .zip(keys)
            .map(|(r, key)| r.map(reply).map_err(|e| with_key(map_error(&e), &key)))
            .collect())
    }

    pub(crate) async fn close(&self) {
        let _ = self.pool.quit().await;
    }
}
