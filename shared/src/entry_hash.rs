//! An entry's hash: a link of an account shard's chain (`crate::chain`), computed by
//! `Entry::hash_after`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A link of an account shard's chain: the hash of one entry, or [`EntryHash::GENESIS`] before
/// the first.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct EntryHash([u8; 32]);

/// A string that is not a hash: 64 hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a hash is 64 hexadecimal digits")]
pub struct NotAHash;

impl EntryHash {
    /// What the first entry of a shard links to.
    pub const GENESIS: EntryHash = EntryHash([0; 32]);

    pub fn parse(hex: &str) -> Result<EntryHash, NotAHash> {
        let mut bytes = [0; 32];
        hex::decode_to_slice(hex, &mut bytes).map_err(|_| NotAHash)?;
        Ok(EntryHash(bytes))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> EntryHash {
        EntryHash(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for EntryHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for EntryHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EntryHash({self})")
    }
}

impl Serialize for EntryHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for EntryHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let hex = String::deserialize(deserializer)?;
        EntryHash::parse(&hex).map_err(serde::de::Error::custom)
    }
}
