//! Per-conversation sequence numbers: a cache counter (INCR), seeded from the highest stored
//! seq when the cache has none, so a seq never goes back or repeats after a cache loss.

use gochat_proto::repo::MaxSeqRequest;
use tonic::Request;

use crate::{Error, Logic};

fn seq_key(conversation: &str) -> String {
    format!("seq:{conversation}")
}

impl Logic {
    /// The next seq of `conversation`.
    pub(crate) async fn next_seq(&self, conversation: &str) -> Result<i64, Error> {
        let key = seq_key(conversation);
        let strings = self.deps.cache.string();
        if strings.get(&key).await?.is_none() {
            self.seed_seq(conversation).await?;
        }
        Ok(strings.incr(&key).await?)
    }

    /// Raises the counter to the highest stored seq (only if it has none: a concurrent seed
    /// or counter wins).
    pub(crate) async fn seed_seq(&self, conversation: &str) -> Result<(), Error> {
        let stored = self.stored_max(conversation).await?;
        self.deps
            .cache
            .string()
            .set_nx(&seq_key(conversation), stored.to_string(), None)
            .await?;
        Ok(())
    }

    /// After a seq turned out taken (the counter was lost while messages were in flight):
    /// moves the counter past the highest stored seq.
    pub(crate) async fn reseed_seq(&self, conversation: &str) -> Result<(), Error> {
        let stored = self.stored_max(conversation).await?;
        let key = seq_key(conversation);
        let strings = self.deps.cache.string();
        let current = strings.incr_by(&key, 0).await?;
        if current < stored {
            strings.incr_by(&key, stored - current).await?;
        }
        Ok(())
    }

    /// The highest seq stored in `conversation` (0 for none).
    async fn stored_max(&self, conversation: &str) -> Result<i64, Error> {
        let max = self.deps.repo.max_seq(Request::new(MaxSeqRequest {
            conversation_id: conversation.to_owned(),
        }));
        Ok(max.await?.into_inner().seq)
    }
}
