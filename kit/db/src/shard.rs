//! Sharding: a row's key picks one of a table's N tables (and, optionally, databases).
//!
//! ```
//! use gochat_db::ShardKey;
//!
//! assert_eq!(42u64.shard_of(16), 10);
//! assert_eq!("conversation-7".shard_of(16), "conversation-7".to_owned().shard_of(16));
//! assert!("conversation-7".shard_of(16) < 16);
//! ```

use sea_orm::{
    ActiveModelTrait, DatabaseConnection, EntityTrait, Insert, QueryTrait, Select, sea_query::Alias,
};

/// A value rows are sharded by. Integers shard by value (id 42 of 16 tables goes to table 10);
/// text and bytes by a stable hash (64-bit FNV-1a), the same in every process and release.
pub trait ShardKey {
    /// A stable 64-bit value for this key.
    fn shard_hash(&self) -> u64;

    /// The shard (0-based) among `count`.
    fn shard_of(&self, count: u32) -> u32 {
        u32::try_from(self.shard_hash() % u64::from(count.max(1))).unwrap_or(0)
    }
}

macro_rules! shard_by_value {
    ($($t:ty),*) => {$(
        impl ShardKey for $t {
            fn shard_hash(&self) -> u64 {
                // Ids are positive; a negative one still lands on a valid shard.
                u64::try_from(*self).unwrap_or_else(|_| u64::from(self.unsigned_abs()))
            }
        }
    )*};
}
shard_by_value!(i32, i64);

impl ShardKey for u32 {
    fn shard_hash(&self) -> u64 {
        u64::from(*self)
    }
}

impl ShardKey for u64 {
    fn shard_hash(&self) -> u64 {
        *self
    }
}

impl ShardKey for [u8] {
    fn shard_hash(&self) -> u64 {
        self.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }
}

impl ShardKey for str {
    fn shard_hash(&self) -> u64 {
        self.as_bytes().shard_hash()
    }
}

impl ShardKey for String {
    fn shard_hash(&self) -> u64 {
        self.as_bytes().shard_hash()
    }
}

impl<T: ShardKey + ?Sized> ShardKey for &T {
    fn shard_hash(&self) -> u64 {
        (**self).shard_hash()
    }
}

/// `table_07` style names: two digits at least, more when there are over 100 tables.
pub(crate) fn shard_table(table: &str, index: u32, count: u32) -> String {
    let width = count.saturating_sub(1).to_string().len().max(2);
    format!("{table}_{index:0width$}")
}

/// One shard of a sharded table: its name and the database holding it.
#[derive(Debug, Clone, Copy)]
pub struct Shard<'a> {
    pub(crate) table: &'a str,
    pub(crate) name: &'a str,
    pub(crate) index: u32,
    pub(crate) connection: &'a DatabaseConnection,
}

impl<'a> Shard<'a> {
    /// The shard table's name, e.g. `messages_07`.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The sharded (logical) table, e.g. `messages`.
    pub fn table(&self) -> &'a str {
        self.table
    }

    /// The shard's number.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The database holding this shard.
    pub fn connection(&self) -> &'a DatabaseConnection {
        self.connection
    }

    /// `E::find()` reading this shard: `FROM messages_07 AS messages`, so filters and
    /// orderings written against the entity work unchanged.
    pub fn find<E: EntityTrait>(&self) -> Select<E> {
        let mut select = E::find();
        let entity = E::default();
        QueryTrait::query(&mut select)
            .from_clear()
            .from_as(Alias::new(self.name), Alias::new(entity.table_name()));
        select
    }

    /// `E::insert(model)` writing into this shard.
    pub fn insert<A: ActiveModelTrait>(&self, model: A) -> Insert<A> {
        let mut insert = <A::Entity as EntityTrait>::insert(model);
        QueryTrait::query(&mut insert).into_table(Alias::new(self.name));
        insert
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_routing_are_stable() {
        assert_eq!(shard_table("messages", 7, 16), "messages_07");
        assert_eq!(shard_table("messages", 7, 1000), "messages_007");
        assert_eq!(42i64.shard_of(16), 10);
        assert_eq!((-42i64).shard_of(16), 10);
        // FNV-1a of "a" is 0xaf63dc4c8601ec8c: fixed across processes and releases.
        assert_eq!("a".shard_hash(), 0xaf63_dc4c_8601_ec8c);
    }
}
