//! What one user sees: their conversations with last message and read pointer, and unread
//! counts (last seq − read seq: seqs are contiguous, so no count query is needed). Both are
//! paged by an opaque cursor, and each page takes a fixed number of statements whatever the
//! number of memberships:
//!
//! - conversations (pinned first, then by latest message, then by id): one for the
//!   memberships, one for every conversation's latest seq and time, one for the page's
//!   conversation rows, one for the page's last messages — 4;
//! - unread (by conversation id): one for the page of memberships, one for their latest seqs,
//!   one aggregate for the total over all conversations — 3.
//!
//! Statements over messages are a `UNION ALL` of one `SELECT` per shard table concerned. Like
//! the rest of the repository, this reads the message shard tables from the repository's own
//! database (not from separate shard databases).

use std::collections::{BTreeMap, HashMap};

use gochat_db::sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, Iterable,
    QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Alias, Expr, ExprTrait, Func, JoinType, Query, SelectStatement, UnionType},
};
use gochat_proto::repo as pb;

use crate::{
    Error, Repo, convert,
    entity::{conversation, member, message},
    required,
};

/// A list page's size when none is asked for.
pub(crate) const DEFAULT_LIST: i32 = 50;

/// The most conversations one page of the conversation or unread list holds.
pub(crate) const MAX_LIST: i32 = 200;

/// The page size asked for: 0 is the default, above [`MAX_LIST`] or negative is refused.
fn page_size(limit: i32) -> Result<usize, Error> {
    match limit {
        0 => Ok(DEFAULT_LIST as usize),
        1..=MAX_LIST => Ok(usize::try_from(limit).unwrap_or(DEFAULT_LIST as usize)),
        _ => Err(Error::InvalidArgument(format!(
            "limit must be 1 to {MAX_LIST}"
        ))),
    }
}

/// Where a conversation stands in the list: pinned first, then the most recently active,
/// then the larger id. Sorting these ascending gives the list's order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Place {
    unpinned: bool,
    /// The negated time of the latest message (0 for none), so larger times sort first.
    idle: i64,
    /// The id, compared in reverse (newer Snowflake ids first).
    id: std::cmp::Reverse<String>,
}

impl Place {
    fn new(pinned: bool, active_ms: i64, id: &str) -> Self {
        Self {
            unpinned: !pinned,
            idle: active_ms.saturating_neg(),
            id: std::cmp::Reverse(id.to_owned()),
        }
    }
}

/// Cursors are the sort key of a page's last entry, as text, hex-encoded so clients treat
/// them as opaque: `c:{pinned}:{active_ms}:{id}` (conversations), `u:{id}` (unread).
mod cursor {
    use super::Place;
    use crate::Error;

    fn hex(text: &str) -> String {
        text.bytes().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(cursor: &str) -> Option<String> {
        if !cursor.len().is_multiple_of(2) || cursor.len() > 512 {
            return None;
        }
        let bytes = (0..cursor.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(cursor.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        String::from_utf8(bytes).ok()
    }

    fn malformed() -> Error {
        Error::InvalidArgument("cursor is malformed".to_owned())
    }

    pub(super) fn place(place: &Place) -> String {
        hex(&format!(
            "c:{}:{}:{}",
            u8::from(!place.unpinned),
            place.idle.saturating_neg(),
            place.id.0
        ))
    }

    pub(super) fn parse_place(cursor: &str) -> Result<Place, Error> {
        let text = unhex(cursor).ok_or_else(malformed)?;
        let mut parts = text.splitn(4, ':');
        let (Some("c"), Some(pinned), Some(active), Some(id)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        let pinned = match pinned {
            "0" => false,
            "1" => true,
            _ => return Err(malformed()),
        };
        let active: i64 = active.parse().map_err(|_| malformed())?;
        if id.is_empty() {
            return Err(malformed());
        }
        Ok(Place::new(pinned, active, id))
    }

    pub(super) fn id(id: &str) -> String {
        hex(&format!("u:{id}"))
    }

    pub(super) fn parse_id(cursor: &str) -> Result<String, Error> {
        match unhex(cursor).as_deref().and_then(|t| t.strip_prefix("u:")) {
            Some(id) if !id.is_empty() => Ok(id.to_owned()),
            _ => Err(malformed()),
        }
    }
}

/// A conversation's latest seq and the time of its latest message.
#[derive(Clone, Copy, Debug, Default)]
struct Latest {
    seq: i64,
    at_ms: i64,
}

impl Repo {
    /// The message table holding `conversation`: its shard, or `messages` when unsharded.
    fn message_table(&self, conversation: &str) -> String {
        self.db
            .shard("messages", conversation)
            .map_or_else(|_| "messages".to_owned(), |shard| shard.name().to_owned())
    }

    /// Every message table: the shards in order, or `messages` when unsharded. (Integer keys
    /// shard by value, so key `i` names shard `i` until the count wraps around.)
    fn message_tables(&self) -> Vec<String> {
        let mut tables = Vec::new();
        for i in 0..u32::from(u16::MAX) {
            match self.db.shard("messages", &i) {
                Ok(shard) if shard.index() == i => tables.push(shard.name().to_owned()),
                _ => break,
            }
        }
        if tables.is_empty() {
            tables.push("messages".to_owned());
        }
        tables
    }

    /// One statement: per conversation of `tables` that `filter` admits, its latest seq
    /// (`last_seq`) and latest message time (`last_at`), as a `UNION ALL` over the tables.
    fn latest_query(
        tables: &[String],
        filter: impl Fn(&mut SelectStatement),
    ) -> Option<SelectStatement> {
        let mut selects = tables.iter().map(|table| {
            let mut select = Query::select();
            select
                .column(message::Column::ConversationId)
                .expr_as(
                    Func::max(Expr::col(message::Column::Seq)),
                    Alias::new("last_seq"),
                )
                .expr_as(
                    Func::max(Expr::col(message::Column::CreatedAtMs)),
                    Alias::new("last_at"),
                )
                .from(Alias::new(table.as_str()))
                .group_by_col(message::Column::ConversationId);
            filter(&mut select);
            select
        });
        let mut first = selects.next()?;
        first.unions(selects.map(|s| (UnionType::All, s)));
        Some(first)
    }

    /// The user's conversations (a subquery, so the statement's size does not grow with them).
    fn memberships_of(user: &str) -> SelectStatement {
        Query::select()
            .column(member::Column::ConversationId)
            .from(member::Entity)
            .and_where(Expr::col(member::Column::UserId).eq(user))
            .to_owned()
    }

    async fn latest(
        &self,
        tables: &[String],
        filter: impl Fn(&mut SelectStatement),
    ) -> Result<HashMap<String, Latest>, Error> {
        let Some(query) = Self::latest_query(tables, filter) else {
            return Ok(HashMap::new());
        };
        let rows = self.db.reader().query_all(&query).await?;
        let mut latest = HashMap::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get("", "conversation_id")?;
            let seq: Option<i64> = row.try_get("", "last_seq")?;
            let at_ms: Option<i64> = row.try_get("", "last_at")?;
            latest.insert(
                id,
                Latest {
                    seq: seq.unwrap_or(0),
                    at_ms: at_ms.unwrap_or(0),
                },
            );
        }
        Ok(latest)
    }

    /// The stored messages `(conversation, seq)`, in one statement (a `UNION ALL` over the
    /// shards holding any).
    async fn messages_at(
        &self,
        wanted: &[(String, i64)],
    ) -> Result<HashMap<String, message::Model>, Error> {
        let mut by_table: BTreeMap<String, Condition> = BTreeMap::new();
        for (conversation, seq) in wanted {
            let one = Condition::all()
                .add(Expr::col(message::Column::ConversationId).eq(conversation.as_str()))
                .add(Expr::col(message::Column::Seq).eq(*seq));
            let table = self.message_table(conversation);
            let any = by_table.remove(&table).unwrap_or_else(Condition::any);
            by_table.insert(table, any.add(one));
        }
        let mut selects = by_table.into_iter().map(|(table, condition)| {
            Query::select()
                .columns(message::Column::iter())
                .from(Alias::new(table.as_str()))
                .cond_where(condition)
                .to_owned()
        });
        let Some(mut query) = selects.next() else {
            return Ok(HashMap::new());
        };
        query.unions(selects.map(|s| (UnionType::All, s)));
        let mut found = HashMap::with_capacity(wanted.len());
        for row in self.db.reader().query_all(&query).await? {
            let row = message::Model::from_query_result(&row, "")?;
            found.insert(row.conversation_id.clone(), row);
        }
        Ok(found)
    }

    pub(crate) async fn list_conversations(
        &self,
        req: pb::ListConversationsRequest,
    ) -> Result<pb::ConversationViews, Error> {
        let user = required("user_id", &req.user_id)?;
        let size = page_size(req.limit)?;
        let only = !req.conversation_ids.is_empty();
        if req.conversation_ids.len() > MAX_LIST as usize {
            return Err(Error::InvalidArgument(format!(
                "at most {MAX_LIST} conversation_ids"
            )));
        }
        let after = match req.cursor.as_str() {
            "" => None,
            _ if only => None,
            cursor => Some(cursor::parse_place(cursor)?),
        };
        // 1. The memberships (only the asked ones, when asked for some).
        let mut query = member::Entity::find().filter(member::Column::UserId.eq(user));
        if only {
            query = query.filter(member::Column::ConversationId.is_in(req.conversation_ids));
        }
        let memberships = query.all(self.db.reader()).await?;
        // 2. Every one's latest activity, from the shards holding any of them.
        let mut tables: Vec<String> = memberships
            .iter()
            .map(|m| self.message_table(&m.conversation_id))
            .collect();
        tables.sort();
        tables.dedup();
        let mine = Self::memberships_of(user);
        let latest = self
            .latest(&tables, |select| {
                select.and_where(
                    Expr::col(message::Column::ConversationId).in_subquery(mine.clone()),
                );
            })
            .await?;
        // The order, and the page after the cursor.
        let mut placed: Vec<(Place, member::Model)> = memberships
            .into_iter()
            .map(|m| {
                let active = latest.get(&m.conversation_id).map_or(0, |l| l.at_ms);
                (Place::new(m.pinned, active, &m.conversation_id), m)
            })
            .filter(|(place, _)| after.as_ref().is_none_or(|after| place > after))
            .collect();
        placed.sort_by(|a, b| a.0.cmp(&b.0));
        let next_cursor = if placed.len() > size {
            placed.truncate(size);
            placed.last().map(|(place, _)| cursor::place(place))
        } else {
            None
        };
        // 3. The page's conversations, and 4. their last messages.
        let ids: Vec<String> = placed
            .iter()
            .map(|(_, m)| m.conversation_id.clone())
            .collect();
        let mut rows: HashMap<String, conversation::Model> = conversation::Entity::find()
            .filter(conversation::Column::Id.is_in(ids.iter().map(String::as_str)))
            .all(self.db.reader())
            .await?
            .into_iter()
            .map(|row| (row.id.clone(), row))
            .collect();
        let wanted: Vec<(String, i64)> = ids
            .iter()
            .filter_map(|id| latest.get(id).map(|l| (id.clone(), l.seq)))
            .filter(|(_, seq)| *seq > 0)
            .collect();
        let mut last = self.messages_at(&wanted).await?;
        let mut conversations = Vec::with_capacity(placed.len());
        for (_, membership) in placed {
            let id = &membership.conversation_id;
            let Some(row) = rows.remove(id) else {
                continue;
            };
            conversations.push(pb::ConversationView {
                conversation: Some(convert::conversation(row)),
                last_seq: latest.get(id).map_or(0, |l| l.seq),
                last_message: last.remove(id).map(convert::message),
                member: Some(convert::member(membership)),
            });
        }
        Ok(pb::ConversationViews {
            conversations,
            next_cursor: next_cursor.unwrap_or_default(),
        })
    }

    /// The sum of unread over all of `user`'s conversations, in one statement: their read
    /// pointers joined to their latest seqs (a `UNION ALL` over the message shards).
    async fn unread_total(&self, user: &str) -> Result<i64, Error> {
        let mine = Self::memberships_of(user);
        let Some(latest) = Self::latest_query(&self.message_tables(), |select| {
            select.and_where(Expr::col(message::Column::ConversationId).in_subquery(mine.clone()));
        }) else {
            return Ok(0);
        };
        let (m, x) = (Alias::new("m"), Alias::new("x"));
        let unread = Expr::col((x.clone(), Alias::new("last_seq")))
            .sub(Expr::col((m.clone(), member::Column::ReadSeq)));
        let integer = match self.db.backend() {
            DbBackend::MySql => "SIGNED",
            _ => "BIGINT",
        };
        let total = Query::select()
            .expr_as(
                Func::cast_as(
                    Func::coalesce([Func::sum(unread).into(), Expr::val(0_i64)]),
                    Alias::new(integer),
                ),
                Alias::new("total"),
            )
            .from_as(member::Entity, m.clone())
            .join_subquery(
                JoinType::InnerJoin,
                latest,
                x.clone(),
                Expr::col((x.clone(), member::Column::ConversationId))
                    .equals((m.clone(), member::Column::ConversationId)),
            )
            .and_where(Expr::col((m.clone(), member::Column::UserId)).eq(user))
            .and_where(
                Expr::col((x, Alias::new("last_seq"))).gt(Expr::col((m, member::Column::ReadSeq))),
            )
            .to_owned();
        let row = self.db.reader().query_one(&total).await?;
        Ok(match row {
            Some(row) => row.try_get::<Option<i64>>("", "total")?.unwrap_or(0),
            None => 0,
        })
    }

    pub(crate) async fn unread(&self, req: pb::UnreadRequest) -> Result<pb::UnreadResponse, Error> {
        let user = required("user_id", &req.user_id)?;
        let size = page_size(req.limit)?;
        // 1. The page of memberships, by conversation id.
        let mut query = member::Entity::find().filter(member::Column::UserId.eq(user));
        if !req.cursor.is_empty() {
            let after = cursor::parse_id(&req.cursor)?;
            query = query.filter(member::Column::ConversationId.gt(after));
        }
        let mut memberships = query
            .order_by_asc(member::Column::ConversationId)
            .limit(u64::try_from(size).unwrap_or(50) + 1)
            .all(self.db.reader())
            .await?;
        let next_cursor = if memberships.len() > size {
            memberships.truncate(size);
            memberships.last().map(|m| cursor::id(&m.conversation_id))
        } else {
            None
        };
        // 2. Their latest seqs, from the shards holding them.
        let ids: Vec<String> = memberships
            .iter()
            .map(|m| m.conversation_id.clone())
            .collect();
        let mut tables: Vec<String> = ids.iter().map(|id| self.message_table(id)).collect();
        tables.sort();
        tables.dedup();
        let latest = self
            .latest(&tables, |select| {
                select.and_where(Expr::col(message::Column::ConversationId).is_in(ids.clone()));
            })
            .await?;
        let conversations = memberships
            .into_iter()
            .map(|membership| {
                let last_seq = latest.get(&membership.conversation_id).map_or(0, |l| l.seq);
                pb::UnreadConversation {
                    unread: Ord::max(last_seq - membership.read_seq, 0),
                    last_seq,
                    read_seq: membership.read_seq,
                    conversation_id: membership.conversation_id,
                }
            })
            .collect();
        // 3. The total over every conversation, not only this page.
        Ok(pb::UnreadResponse {
            total: self.unread_total(user).await?,
            conversations,
            next_cursor: next_cursor.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let place = Place::new(true, 1_700_000_000_123, "42:x");
        assert_eq!(
            cursor::parse_place(&cursor::place(&place)).ok(),
            Some(place)
        );
        assert_eq!(
            cursor::parse_id(&cursor::id("world")).ok().as_deref(),
            Some("world")
        );
        for bad in ["zz", "abc", "", &cursor::id("1")] {
            assert!(cursor::parse_place(bad).is_err(), "{bad:?}");
        }
        assert!(cursor::parse_id(&cursor::place(&Place::new(false, 0, "1"))).is_err());
        assert!(page_size(MAX_LIST + 1).is_err() && page_size(-1).is_err());
        assert_eq!(page_size(0).ok(), Some(50));
    }

    #[test]
    fn pinned_first_then_latest_then_newest_id() {
        let mut places = [
            Place::new(false, 5, "1"),
            Place::new(true, 1, "2"),
            Place::new(false, 9, "3"),
            Place::new(false, 9, "4"),
            Place::new(false, 0, "5"),
        ];
        places.sort();
        let ids: Vec<&str> = places.iter().map(|p| p.id.0.as_str()).collect();
        assert_eq!(ids, ["2", "4", "3", "1", "5"]);
    }
}
