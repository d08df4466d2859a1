//! A SHA-256 value, shown as 64 hex digits: an entry's hash, a link of an account shard's chain
//! (`crate::chain`, computed by `Entry::hash_after`), and the nodes and root of a digest's Merkle
//! tree (`crate::merkle`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A SHA-256 value: the hash of one entry (or [`Hash256::GENESIS`] before the first), or a node
/// of a Merkle tree.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash256([u8; 32]);

/// A string that is not a hash: 64 hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a hash is 64 hexadecimal digits")]
pub struct NotAHash;

impl Hash256 {
    /// What the first entry of a shard links to.
    pub const GENESIS: Hash256 = Hash256([0; 32]);

    pub fn parse(hex: &str) -> Result<Hash256, NotAHash> {
        let mut bytes = [0; 32];
        hex::decode_to_slice(hex, &mut bytes).map_err(|_| NotAHash)?;
        Ok(Hash256(bytes))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Hash256 {
        Hash256(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Hash256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Hash256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash256({self})")
    }
}

impl Serialize for Hash256 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Hash256 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let hex = String::deserialize(deserializer)?;
        Hash256::parse(&hex).map_err(serde::de::Error::custom)
    }
}
