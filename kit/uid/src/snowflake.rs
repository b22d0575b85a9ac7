//! Snowflake ids: 41 bits of milliseconds since 2024-01-01, 10 bits of worker, 12 of sequence.
//!
//! ```
//! use gochat_uid::SnowflakeId;
//!
//! let id: SnowflakeId = "123456789012345678".parse().unwrap();
//! assert_eq!(id.to_string(), "123456789012345678");
//! // On the wire it is a decimal string: JavaScript numbers cannot hold 64-bit integers.
//! assert_eq!(serde_json::to_string(&id).unwrap(), "\"123456789012345678\"");
//! let parts = id.decode();
//! assert!(parts.worker < 1024 && parts.sequence < 4096);
//! ```

use std::{
    fmt,
    str::FromStr,
    time::{Duration, SystemTime},
};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use snowflaked::Snowflake;

use crate::Error;

/// Milliseconds from the UNIX epoch to this crate's epoch, 2024-01-01T00:00:00Z.
pub const EPOCH_UNIX_MS: u64 = 1_704_067_200_000;
/// The largest worker id (10 bits).
pub const MAX_WORKER: u16 = 1023;
/// The largest sequence number within one millisecond (12 bits).
pub const MAX_SEQUENCE: u16 = 4095;
/// The largest timestamp (41 bits), in milliseconds since the epoch.
pub(crate) const MAX_TIMESTAMP: u64 = (1 << 41) - 1;

/// A Snowflake id. Ordered by time, then worker, then sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SnowflakeId(i64);

/// What a [`SnowflakeId`] is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parts {
    /// When it was made (millisecond precision).
    pub time: SystemTime,
    /// Milliseconds since [`EPOCH_UNIX_MS`].
    pub timestamp: u64,
    /// The worker that made it.
    pub worker: u16,
    /// Its sequence number within the millisecond.
    pub sequence: u16,
}

impl SnowflakeId {
    pub(crate) fn from_parts(timestamp: u64, worker: u16, sequence: u16) -> Self {
        Self(i64::from_parts(
            timestamp,
            u64::from(worker),
            u64::from(sequence),
        ))
    }

    /// The id as an integer (for storage in a BIGINT column).
    pub fn as_i64(self) -> i64 {
        self.0
    }

    /// An id read back from storage.
    ///
    /// # Errors
    /// [`Error::Parse`] for a negative number, which no generator makes.
    pub fn from_i64(value: i64) -> Result<Self, Error> {
        if value < 0 {
            return Err(Error::Parse(value.to_string()));
        }
        Ok(Self(value))
    }

    /// Splits the id into time, worker and sequence.
    pub fn decode(self) -> Parts {
        let timestamp = self.0.timestamp();
        Parts {
            time: SystemTime::UNIX_EPOCH + Duration::from_millis(EPOCH_UNIX_MS + timestamp),
            timestamp,
            // Both fit: the layout gives them 10 and 12 bits.
            worker: u16::try_from(self.0.instance()).unwrap_or(u16::MAX),
            sequence: u16::try_from(self.0.sequence()).unwrap_or(u16::MAX),
        }
    }
}

impl fmt::Display for SnowflakeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for SnowflakeId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.parse::<i64>() {
            Ok(value) if value >= 0 && !s.starts_with('+') => Ok(Self(value)),
            _ => Err(Error::Parse(s.to_owned())),
        }
    }
}

impl Serialize for SnowflakeId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SnowflakeId {
    /// From a decimal string, or (leniently) from a non-negative integer.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = SnowflakeId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Snowflake id as a decimal string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i64::try_from(v).map(SnowflakeId).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                SnowflakeId::from_i64(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snowflake_parts_round_trip_at_the_edges() {
        for (t, w, s) in [
            (0, 0, 0),
            (MAX_TIMESTAMP, MAX_WORKER, MAX_SEQUENCE),
            (12_345, 7, 42),
        ] {
            let parts = SnowflakeId::from_parts(t, w, s).decode();
            assert_eq!((parts.timestamp, parts.worker, parts.sequence), (t, w, s));
        }
        assert!(SnowflakeId::from_parts(MAX_TIMESTAMP, MAX_WORKER, MAX_SEQUENCE).as_i64() > 0);
    }

    #[test]
    fn snowflake_strings_are_strict() {
        for bad in ["", "-1", "+5", "12a", "99999999999999999999", " 1"] {
            assert!(bad.parse::<SnowflakeId>().is_err(), "{bad:?}");
        }
        let id: SnowflakeId = serde_json::from_str("\"42\"").unwrap();
        assert_eq!(id.as_i64(), 42);
        let lenient: SnowflakeId = serde_json::from_str("42").unwrap();
        assert_eq!(lenient, id);
        assert!(serde_json::from_str::<SnowflakeId>("-3").is_err());
    }
}
