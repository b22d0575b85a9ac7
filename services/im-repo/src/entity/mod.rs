//! The tables, as sea-orm entities. Ids are Snowflake ids as decimal strings (the world
//! channel's conversation id is `world`); times are Unix milliseconds.

pub(crate) mod ban;
pub(crate) mod conversation;
pub(crate) mod group;
pub(crate) mod member;
pub(crate) mod message;
pub(crate) mod revoked;
pub(crate) mod user;
