//! Storing messages: a burst in one transaction, each new message given its conversation's
//! next seq inside that transaction (`conversations.last_seq`), so a seq is only ever taken by
//! a message that is stored — a failed or rolled-back store leaves no hole. A resend is found
//! by the unique (conversation, sender, client_msg_id) and answered with the message stored
//! first; so is a repeat within the same burst.
//!
//! Statements per burst: per conversation `UPDATE conversations SET last_seq = last_seq + n`
//! (which takes the row lock ordering its writers; conversations in id order, so two bursts
//! never wait on each other crosswise), one `SELECT` reading the counters back, then per
//! conversation one query for the burst's client_msg_ids already stored and one multi-row
//! `INSERT` (and, only when some were resends, an `UPDATE` handing their seqs back).

use std::collections::{BTreeMap, HashMap};

use gochat_db::{
    TxError,
    sea_orm::{
        ActiveValue::Set,
        ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait,
        QueryFilter, QuerySelect, QueryTrait,
        sea_query::{Alias, Expr, ExprTrait},
    },
};
use gochat_proto::{common::Message, repo as pb};

use crate::{
    Error, Repo, convert,
    entity::{conversation, message},
    error::is_unique_violation,
    migration::{LAST_SEQ, raise_last_seq},
    required,
};

/// How many times a burst is tried when it runs into a unique key: a twin stored by a
/// concurrent writer is found on the next try.
const ATTEMPTS: usize = 3;

/// Why one try of a burst failed (and rolled back).
#[derive(Debug, thiserror::Error)]
enum TryError {
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error("conversation {0}")]
    NoConversation(String),
    #[error("conversation {0}'s seq counter is missing")]
    NoCounter(String),
}

/// A burst, sorted out before any statement: which messages are new candidates (per
/// conversation, in request order) and which repeat an earlier one of the same request.
struct Plan {
    messages: Vec<Message>,
    /// Conversation → indexes of its first occurrences, in request order; iterated in id
    /// order, which is the order the counters are locked in.
    by_conversation: BTreeMap<String, Vec<usize>>,
    /// For each message, the earlier one of the request with the same key, if any.
    repeats: Vec<Option<usize>>,
}

impl Plan {
    fn new(messages: Vec<Message>) -> Self {
        let mut first: HashMap<(&str, &str, &str), usize> = HashMap::new();
        let mut by_conversation: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut repeats = Vec::with_capacity(messages.len());
        for (i, m) in messages.iter().enumerate() {
            let key = (
                m.conversation_id.as_str(),
                m.from_user_id.as_str(),
                m.client_msg_id.as_str(),
            );
            if let Some(&earlier) = first.get(&key) {
                repeats.push(Some(earlier));
            } else {
                first.insert(key, i);
                repeats.push(None);
                by_conversation
                    .entry(m.conversation_id.clone())
                    .or_default()
                    .push(i);
            }
        }
        Self {
            messages,
            by_conversation,
            repeats,
        }
    }
}

impl Repo {
    /// Stores a burst (see the module docs); one answer per message, in order.
    pub(crate) async fn store_messages(
        &self,
        req: pb::StoreMessagesRequest,
    ) -> Result<pb::StoreMessagesResponse, Error> {
        for m in &req.messages {
            required("message_id", &m.message_id)?;
            required("conversation_id", &m.conversation_id)?;
            required("from_user_id", &m.from_user_id)?;
            required("client_msg_id", &m.client_msg_id)?;
        }
        let plan = Plan::new(req.messages);
        for attempt in 1..=ATTEMPTS {
            let tried = self
                .db
                .transaction(async |tx| self.try_store(tx, &plan).await);
            match tried.await {
                Ok(answers) => return Ok(respond(&plan, answers)),
                Err(TxError::Rollback(TryError::Db(e))) if is_unique_violation(&e) => {
                    if attempt < ATTEMPTS {
                        // A twin stored concurrently is found on the next try; a seq taken
                        // behind the counter's back (a writer that does not use it) is
                        // stepped over.
                        self.catch_up(&plan).await?;
                    }
                }
                Err(TxError::Rollback(TryError::Db(e))) => return Err(e.into()),
                Err(TxError::Db(e)) => return Err(e.into()),
                Err(TxError::Rollback(e @ TryError::NoConversation(_))) => {
                    return Err(Error::NotFound(e.to_string()));
                }
                Err(TxError::Rollback(e @ TryError::NoCounter(_))) => {
                    return Err(Error::FailedPrecondition(e.to_string()));
                }
            }
        }
        Err(Error::AlreadyExists(format!(
            "a message of this batch (a unique key was still taken after {ATTEMPTS} tries)"
        )))
    }

    /// One try: every conversation's counter advanced, resends found, the new messages
    /// inserted. Answers per first occurrence: the message and whether it was a resend.
    async fn try_store(
        &self,
        tx: &DatabaseTransaction,
        plan: &Plan,
    ) -> Result<Vec<Option<(Message, bool)>>, TryError> {
        let mut answers: Vec<Option<(Message, bool)>> = vec![None; plan.messages.len()];
        // Every counter is written (and locked) before anything is read, in id order: each
        // conversation's writers are ordered by its row lock, and the reads below see whatever
        // the writers before committed — also under MySQL's repeatable read, whose snapshot
        // is taken at the first plain read.
        for (conversation, indexes) in &plan.by_conversation {
            let advanced = conversation::Entity::update_many()
                .col_expr(
                    Alias::new(LAST_SEQ),
                    Expr::col(Alias::new(LAST_SEQ)).add(count(indexes)),
                )
                .filter(conversation::Column::Id.eq(conversation))
                .exec(tx)
                .await?;
            if advanced.rows_affected == 0 {
                return Err(TryError::NoConversation(conversation.clone()));
            }
        }
        let tops: HashMap<String, i64> = conversation::Entity::find()
            .select_only()
            .column(conversation::Column::Id)
            .expr(Expr::col(Alias::new(LAST_SEQ)))
            .filter(conversation::Column::Id.is_in(plan.by_conversation.keys()))
            .into_tuple::<(String, i64)>()
            .all(tx)
            .await?
            .into_iter()
            .collect();
        for (conversation, indexes) in &plan.by_conversation {
            let top = *tops
                .get(conversation)
                .ok_or_else(|| TryError::NoCounter(conversation.clone()))?;
            let stored = self
                .stored_twins(tx, conversation, indexes.iter().map(|&i| &plan.messages[i]))
                .await?;
            let mut next = top - count(indexes) + 1;
            let mut rows = Vec::with_capacity(indexes.len());
            for &i in indexes {
                let m = &plan.messages[i];
                let key = (m.from_user_id.clone(), m.client_msg_id.clone());
                if let Some(twin) = stored.get(&key) {
                    answers[i] = Some((twin.clone(), true));
                    continue;
                }
                let mut m = m.clone();
                m.seq = next;
                next += 1;
                rows.push(row(&m));
                answers[i] = Some((m, false));
            }
            let unused = top + 1 - next;
            if unused > 0 {
                // Resends take no seq: hand back what was taken for them (still under the lock).
                conversation::Entity::update_many()
                    .col_expr(
                        Alias::new(LAST_SEQ),
                        Expr::col(Alias::new(LAST_SEQ)).sub(unused),
                    )
                    .filter(conversation::Column::Id.eq(conversation))
                    .exec(tx)
                    .await?;
            }
            if !rows.is_empty() {
                let mut insert = message::Entity::insert_many(rows);
                QueryTrait::query(&mut insert)
                    .into_table(Alias::new(self.messages_table(conversation)));
                insert.exec_without_returning(tx).await?;
            }
        }
        Ok(answers)
    }

    /// The messages of `candidates` (all of `conversation`) stored already, by (sender,
    /// client_msg_id): one query.
    async fn stored_twins<'m>(
        &self,
        tx: &DatabaseTransaction,
        conversation: &str,
        candidates: impl Iterator<Item = &'m Message>,
    ) -> Result<HashMap<(String, String), Message>, DbErr> {
        let mut senders: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for m in candidates {
            senders
                .entry(m.from_user_id.as_str())
                .or_default()
                .push(m.client_msg_id.as_str());
        }
        // Per sender, so each branch is a lookup in the (conversation, sender, client_msg_id)
        // index.
        let mut any = Condition::any();
        for (sender, ids) in senders {
            any = any.add(
                Condition::all()
                    .add(message::Column::FromUserId.eq(sender))
                    .add(message::Column::ClientMsgId.is_in(ids)),
            );
        }
        let rows = self
            .messages_in(conversation)
            .filter(message::Column::ConversationId.eq(conversation))
            .filter(any)
            .all(tx)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let key = (r.from_user_id.clone(), r.client_msg_id.clone());
                (key, convert::message(r))
            })
            .collect())
    }

    /// Raises the counters of `plan`'s conversations to their highest stored seq, where they
    /// are below it.
    async fn catch_up(&self, plan: &Plan) -> Result<(), Error> {
        let db = self.db.connection();
        for conversation in plan.by_conversation.keys() {
            let raise = raise_last_seq(self.messages_table(conversation), Some(conversation));
            db.execute(&raise).await?;
        }
        Ok(())
    }
}

/// The answer: each message's outcome in request order, a repeat within the request answered
/// like the message it repeats (a resend).
fn respond(plan: &Plan, mut answers: Vec<Option<(Message, bool)>>) -> pb::StoreMessagesResponse {
    for (i, earlier) in plan.repeats.iter().enumerate() {
        if let Some(earlier) = *earlier {
            answers[i] = answers[earlier].as_ref().map(|(m, _)| (m.clone(), true));
        }
    }
    // Every message is answered: a first occurrence by `try_store`, a repeat just above from
    // the earlier first occurrence it names.
    let (stored, resent) = answers.into_iter().flatten().unzip();
    pb::StoreMessagesResponse { stored, resent }
}

/// How many messages `indexes` holds, as a seq count.
fn count(indexes: &[usize]) -> i64 {
    i64::try_from(indexes.len()).unwrap_or(i64::MAX)
}

fn row(m: &Message) -> message::ActiveModel {
    message::ActiveModel {
        id: Set(m.message_id.clone()),
        conversation_id: Set(m.conversation_id.clone()),
        seq: Set(m.seq),
        from_user_id: Set(m.from_user_id.clone()),
        content: Set(m.content.clone()),
        message_type: Set(m.message_type.clone()),
        client_msg_id: Set(m.client_msg_id.clone()),
        created_at_ms: Set(m.created_at_ms),
    }
}
