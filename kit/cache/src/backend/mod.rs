//! The two backends, dispatched by an enum rather than a trait object: the hot path then
//! allocates no boxed future per call (fred's command futures are large).

pub(crate) mod memory;
pub(crate) mod redis;

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use crate::{
    command::{Command, Reply},
    error::{Error, Result},
};

pub(crate) enum Store {
    Memory(Arc<memory::MemoryStore>),
    Redis(redis::RedisBackend),
}

impl Store {
    /// `"memory"` or `"redis"`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Memory(_) => "memory",
            Self::Redis(_) => "redis",
        }
    }

    /// Runs one command; fails with [`Error::Closed`] once `closed` is set.
    pub(crate) async fn one(&self, command: Command, closed: Option<&AtomicBool>) -> Result<Reply> {
        if closed.is_some_and(|closed| closed.load(Ordering::Acquire)) {
            return Err(Error::Closed);
        }
        match self {
            Self::Memory(store) => store.one(command),
            Self::Redis(redis) => redis.one(command).await,
        }
    }

    /// Runs the commands in order, in one round trip; one result per command.
    pub(crate) async fn exec(&self, commands: Vec<Command>) -> Result<Vec<Result<Reply>>> {
        match self {
            Self::Memory(store) => Ok(store.exec(commands)),
            Self::Redis(redis) => redis.exec(commands).await,
        }
    }

    /// Closes connections.
    pub(crate) async fn close(&self) {
        if let Self::Redis(redis) = self {
            redis.close().await;
        }
    }
}
