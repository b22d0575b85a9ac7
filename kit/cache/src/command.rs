//! One representation of every operation the kit performs, executed by each backend: a
//! pipeline is just several of them.

use std::time::Duration;

/// When `SET` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetWhen {
    Always,
    IfAbsent,
}

/// An operation on full (prefixed) keys.
#[derive(Debug, Clone)]
pub(crate) enum Command {
    Ping,
    Get(String),
    Set {
        key: String,
        value: Vec<u8>,
        ttl: Option<Duration>,
        when: SetWhen,
    },
    GetSet {
        key: String,
        value: Vec<u8>,
    },
    IncrBy {
        key: String,
        by: i64,
    },
    MGet(Vec<String>),
    MSet(Vec<(String, Vec<u8>)>),
    Del(Vec<String>),
    Exists(String),
    PExpire {
        key: String,
        ttl: Duration,
    },
    PTtl(String),
    HGet {
        key: String,
        field: String,
    },
    HSet {
        key: String,
        pairs: Vec<(String, Vec<u8>)>,
    },
    HGetAll(String),
    HDel {
        key: String,
        fields: Vec<String>,
    },
    HExists {
        key: String,
        field: String,
    },
    HLen(String),
    HIncrBy {
        key: String,
        field: String,
        by: i64,
    },
    SAdd {
        key: String,
        members: Vec<Vec<u8>>,
    },
    SRem {
        key: String,
        members: Vec<Vec<u8>>,
    },
    SMembers(String),
    SIsMember {
        key: String,
        member: Vec<u8>,
    },
    SCard(String),
    ZAdd {
        key: String,
        members: Vec<(f64, Vec<u8>)>,
    },
    /// Ranks, inclusive, negative from the end; `rev` for highest first. With scores.
    ZRange {
        key: String,
        start: i64,
        stop: i64,
        rev: bool,
    },
    /// Scores, inclusive, lowest first. With scores.
    ZRangeByScore {
        key: String,
        min: f64,
        max: f64,
    },
    ZRem {
        key: String,
        members: Vec<Vec<u8>>,
    },
    ZRemRangeByRank {
        key: String,
        start: i64,
        stop: i64,
    },
    ZCard(String),
    ZCount {
        key: String,
        min: f64,
        max: f64,
    },
    ZScore {
        key: String,
        member: Vec<u8>,
    },
    /// Deletes `key` if it holds `value` (lock release). Replies 1 or 0.
    DelIfEq {
        key: String,
        value: Vec<u8>,
    },
    /// Replaces `key`'s value with `value` (and `ttl`) if it holds `expected` (a cache-aside
    /// lease). Replies 1 or 0.
    SetIfEq {
        key: String,
        expected: Vec<u8>,
        value: Vec<u8>,
        ttl: Duration,
    },
    /// Sets the TTL of `key` if it holds `value` (lock renewal). Replies 1 or 0.
    PExpireIfEq {
        key: String,
        value: Vec<u8>,
        ttl: Duration,
    },
    Eval {
        script: String,
        keys: Vec<String>,
        args: Vec<Vec<u8>>,
    },
    ScriptLoad(String),
    EvalSha {
        sha: String,
        keys: Vec<String>,
        args: Vec<Vec<u8>>,
    },
}

impl Command {
    /// The (first) key the command is about, for routing and error messages.
    pub(crate) fn key(&self) -> &str {
        match self {
            Self::Ping | Self::ScriptLoad(_) => "",
            Self::Get(key)
            | Self::Exists(key)
            | Self::PTtl(key)
            | Self::HGetAll(key)
            | Self::HLen(key)
            | Self::SMembers(key)
            | Self::SCard(key)
            | Self::ZCard(key) => key,
            Self::MGet(keys)
            | Self::Del(keys)
            | Self::Eval { keys, .. }
            | Self::EvalSha { keys, .. } => keys.first().map_or("", String::as_str),
            Self::MSet(pairs) => pairs.first().map_or("", |(k, _)| k.as_str()),
            Self::Set { key, .. }
            | Self::GetSet { key, .. }
            | Self::IncrBy { key, .. }
            | Self::PExpire { key, .. }
            | Self::HGet { key, .. }
            | Self::HSet { key, .. }
            | Self::HDel { key, .. }
            | Self::HExists { key, .. }
            | Self::HIncrBy { key, .. }
            | Self::SAdd { key, .. }
            | Self::SRem { key, .. }
            | Self::SIsMember { key, .. }
            | Self::ZAdd { key, .. }
            | Self::ZRange { key, .. }
            | Self::ZRangeByScore { key, .. }
            | Self::ZRem { key, .. }
            | Self::ZRemRangeByRank { key, .. }
            | Self::ZCount { key, .. }
            | Self::ZScore { key, .. }
            | Self::DelIfEq { key, .. }
            | Self::SetIfEq { key, .. }
            | Self::PExpireIfEq { key, .. } => key,
        }
    }
}

/// A reply from the backend.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Reply {
    /// No value.
    Nil,
    /// Done, nothing to return.
    Ok,
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// Bytes (a string value).
    Bytes(Vec<u8>),
    /// Several replies.
    Array(Vec<Reply>),
}

impl Reply {
    pub(crate) fn into_bytes(self) -> Option<Vec<u8>> {
        match self {
            Self::Bytes(b) => Some(b),
            Self::Int(i) => Some(i.to_string().into_bytes()),
            Self::Float(f) => Some(f.to_string().into_bytes()),
            _ => None,
        }
    }

    pub(crate) fn as_int(&self) -> i64 {
        match self {
            Self::Int(i) => *i,
            Self::Bytes(b) => std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            Self::Ok => 1,
            _ => 0,
        }
    }

    pub(crate) fn as_float(&self) -> Option<f64> {
        match self {
            Self::Float(f) => Some(*f),
            Self::Int(i) => Some(*i as f64),
            Self::Bytes(b) => std::str::from_utf8(b).ok()?.parse().ok(),
            _ => None,
        }
    }

    pub(crate) fn into_array(self) -> Vec<Reply> {
        match self {
            Self::Array(items) => items,
            Self::Nil => Vec::new(),
            other => vec![other],
        }
    }
}
