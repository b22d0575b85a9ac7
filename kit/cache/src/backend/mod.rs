//! What a backend does: execute commands, in order.

pub(crate) mod memory;
pub(crate) mod redis;

use gochat_core::BoxFuture;

use crate::{
    command::{Command, Reply},
    error::Result,
};

pub(crate) trait Backend: Send + Sync + 'static {
    /// `"memory"` or `"redis"`.
    fn name(&self) -> &'static str;
    /// Executes the commands in order; one result per command.
    fn exec(&self, commands: Vec<Command>) -> BoxFuture<'_, Result<Vec<Result<Reply>>>>;
    /// Closes connections.
    fn close(&self) -> BoxFuture<'_, ()>;
}
