//! One partition of the in-process broker: records with stable offsets, bounded by a record
//! count and a byte size, and cut at the front once every consumer group is past them.
//!
//! Dropping records never renumbers the rest: `start` (the offset of the oldest record kept)
//! only moves forward, and a record keeps the offset it was given when appended.

use std::{collections::VecDeque, time::SystemTime};

use bytes::Bytes;

use crate::message::{Headers, Message};

/// A record as the broker keeps it.
pub(super) struct Stored {
    pub(super) key: Option<Bytes>,
    pub(super) value: Bytes,
    pub(super) headers: Headers,
    pub(super) timestamp: SystemTime,
}

impl Stored {
    pub(super) fn new(message: Message) -> Self {
        Self {
            key: message.key,
            value: message.value,
            headers: message.headers,
            timestamp: SystemTime::now(),
        }
    }

    /// What counts against the byte bound: the key, the value, and every header's name and
    /// value.
    fn size(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(name, value)| name.len() + value.len())
            .sum();
        self.key.as_ref().map_or(0, Bytes::len) + self.value.len() + headers
    }
}

/// The retention bounds of one partition.
#[derive(Clone, Copy, Debug)]
pub(super) struct Bounds {
    /// Records kept at most.
    pub(super) records: usize,
    /// Bytes kept at most (as [`Stored::size`] counts them).
    pub(super) bytes: usize,
}

#[derive(Default)]
pub(super) struct Log {
    /// The offset of `records[0]`.
    start: i64,
    records: VecDeque<Stored>,
    /// The sizes of `records`, summed.
    bytes: usize,
}

impl Log {
    /// The offset of the oldest record kept (the end when the log is empty).
    pub(super) fn start(&self) -> i64 {
        self.start
    }

    /// The offset the next record will get.
    pub(super) fn end(&self) -> i64 {
        self.start + len_i64(self.records.len())
    }

    /// The bytes kept.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The record at `offset`, if it is kept.
    pub(super) fn get(&self, offset: i64) -> Option<&Stored> {
        let index = usize::try_from(offset.checked_sub(self.start)?).ok()?;
        self.records.get(index)
    }

    /// Appends `record`, then drops the oldest records while the log is over either bound;
    /// the newest record always stays, even one alone over the byte bound. Returns the
    /// record's offset and how many records the bounds dropped.
    pub(super) fn push(&mut self, record: Stored, bounds: Bounds) -> (i64, u64) {
        let offset = self.end();
        self.bytes += record.size();
        self.records.push_back(record);
        let mut dropped = 0;
        while self.records.len() > 1
            && (self.records.len() > bounds.records || self.bytes > bounds.bytes)
        {
            self.pop_front();
            dropped += 1;
        }
        (offset, dropped)
    }

    /// Drops every record before `offset` (never past the end); returns how many went.
    pub(super) fn drop_before(&mut self, offset: i64) -> u64 {
        let mut dropped = 0;
        while self.start < offset && self.pop_front() {
            dropped += 1;
        }
        dropped
    }

    fn pop_front(&mut self) -> bool {
        let Some(record) = self.records.pop_front() else {
            return false;
        };
        self.bytes -= record.size();
        self.start += 1;
        true
    }
}

fn len_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(value: &str) -> Stored {
        Stored::new(
            Message::new("t", value.to_owned())
                .key("k")
                .header("h", "v"),
        )
    }

    const ROOMY: Bounds = Bounds {
        records: 100,
        bytes: 1 << 20,
    };

    #[test]
    fn size_counts_key_value_and_headers() {
        assert_eq!(record("12345").size(), 1 + 5 + 2);
        let mut log = Log::default();
        log.push(record("12345"), ROOMY);
        log.push(record("1"), ROOMY);
        assert_eq!(log.bytes(), 8 + 4);
    }

    #[test]
    fn the_byte_bound_drops_the_oldest_and_keeps_offsets() {
        let bounds = Bounds {
            records: 100,
            bytes: 30,
        };
        let mut log = Log::default();
        // Each record is 1 + 8 + 2 = 11 bytes: two fit in 30, a third does not.
        let pushed: Vec<(i64, u64)> = (0..5)
            .map(|i| log.push(record(&format!("value-{i:02}")), bounds))
            .collect();
        assert_eq!(pushed, [(0, 0), (1, 0), (2, 1), (3, 1), (4, 1)]);
        assert_eq!((log.start(), log.end(), log.bytes()), (3, 5, 22));
        assert_eq!(log.get(3).map(|r| r.value.clone()), Some("value-03".into()));
        assert!(log.get(2).is_none(), "dropped");
    }

    #[test]
    fn a_record_over_the_byte_bound_is_kept_alone() {
        let bounds = Bounds {
            records: 100,
            bytes: 4,
        };
        let mut log = Log::default();
        assert_eq!(log.push(record("a"), bounds), (0, 0));
        assert_eq!(log.push(record("far too large"), bounds), (1, 1));
        assert_eq!((log.start(), log.end()), (1, 2));
    }

    #[test]
    fn drop_before_cuts_the_prefix_only() {
        let mut log = Log::default();
        for i in 0..4 {
            log.push(record(&i.to_string()), ROOMY);
        }
        assert_eq!(log.drop_before(2), 2);
        assert_eq!((log.start(), log.end(), log.bytes()), (2, 4, 8));
        assert_eq!(log.drop_before(1), 0, "never backwards");
        assert_eq!(log.drop_before(10), 2, "never past the end");
        assert_eq!((log.start(), log.end(), log.bytes()), (4, 4, 0));
        assert_eq!(log.push(record("next"), ROOMY).0, 4, "offsets go on");
    }
}
