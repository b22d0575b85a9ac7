//! Per-conversation sequence numbers: a cache counter (INCR), moved past the highest stored
//! seq when the cache has none, so a seq never goes back or repeats after a cache loss.

use gochat_proto::repo::MaxSeqRequest;
use tonic::Request;

use crate::{Error, Logic};

fn seq_key(conversation: &str) -> String {
    format!("seq:{conversation}")
}

impl Logic {
    /// The next seq of `conversation`: one INCR. A counter that starts at 1 is new — a new
    /// conversation, or one the cache lost — and is moved past the highest stored seq.
    pub(crate) async fn next_seq(&self, conversation: &str) -> Result<i64, Error> {
        let key = seq_key(conversation);
        let strings = self.deps.cache.string();
        let seq = strings.incr(&key).await?;
        if seq != 1 {
            return Ok(seq);
        }
        match self.stored_max(conversation).await? {
            0 => Ok(seq),
            stored => Ok(strings.incr_by(&key, stored).await?),
        }
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
