//! Hot accounts: an account marked hot keeps its balance in several shards, each a balance of its
//! own with its own entries and sequence, so that writers spread over them instead of queueing on
//! one item. Shard 0 is the account's main balance (an account not hot has only it).
//!
//! The account is the sum of its shards. Its rules hold for the whole by the escrow method (O'Neil
//! 1986): each shard of a bounded account may spend only its own headroom, the funds it holds above
//! its part of the floor. Shard 0 holds the overdraft limit, the others none, and funds moved
//! between shards (`moved`, which sums to zero over the shards) shift headroom from one to
//! another. Every shard's headroom stays at or above zero, so the whole never crosses its floor.
//! A shard short of headroom gathers some from the others ([`gather`]) in one write conditioned on
//! every shard it touches; if the others together have too little, the whole account has too
//! little, and a refusal stands on all shards as read.
//!
//! Holds live on shard 0 (a hold is resolved where it reserved), so holds of a hot account do not
//! spread. An account with a maximum balance is never hot: credits would need an escrow too.

use serde::{Deserialize, Serialize};

use crate::field::{FieldError, WholeNumber};

/// The most shards one account may have: a refusal is conditioned on every shard, in one write
/// of DynamoDB's 100 items, beside the transfer's own.
pub const MAX_SHARDS: u16 = 64;

/// How many shards new writes to an account spread over: 1 (not hot) to [`MAX_SHARDS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "WholeNumber", into = "u16")]
pub struct ShardCount(u16);

impl ShardCount {
    pub const ONE: ShardCount = ShardCount(1);

    pub fn new(count: u16) -> Result<Self, FieldError> {
        if (1..=MAX_SHARDS).contains(&count) {
            Ok(Self(count))
        } else {
            Err(FieldError::new(format!("must be an integer from 1 to {MAX_SHARDS}")))
        }
    }

    pub fn get(self) -> u16 {
        self.0
    }

    /// More than one shard: the account is hot.
    pub fn is_hot(self) -> bool {
        self.0 > 1
    }
}

impl Default for ShardCount {
    fn default() -> Self {
        Self::ONE
    }
}

impl TryFrom<WholeNumber> for ShardCount {
    type Error = FieldError;
    fn try_from(raw: WholeNumber) -> Result<Self, Self::Error> {
        u16::try_from(raw.0)
            .map_err(|_| FieldError::new(format!("must be an integer from 1 to {MAX_SHARDS}")))
            .and_then(Self::new)
    }
}

impl From<ShardCount> for u16 {
    fn from(count: ShardCount) -> u16 {
        count.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_count_is_one_to_the_most() {
        assert!(ShardCount::new(0).is_err());
        assert!(ShardCount::new(MAX_SHARDS + 1).is_err());
        assert!(!ShardCount::new(1).unwrap().is_hot());
        assert!(ShardCount::new(MAX_SHARDS).unwrap().is_hot());
    }
}
