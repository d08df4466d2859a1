//! Per-tenant request limits: a tenant's bucket is one stored instant, its TAT (`crate::rate`),
//! moved by one atomic conditional write per admission, so instances running at once never admit
//! more than the limit between them.

use async_trait::async_trait;

use super::error::StoreError;
use crate::ids::TenantId;

/// One atomic move of a tenant's bucket, each conditioned on what the writer believes it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BucketWrite {
    /// The bucket is full (no TAT, or one not after `now`): set the TAT to `tat`.
    FromFull { now: i128, tat: i128 },
    /// The TAT is after `now` and at most `latest` (room for the spend): move it on by `spend`.
    Spend { now: i128, spend: i128, latest: i128 },
}

/// What a bucket write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BucketWritten {
    /// Written: the bucket's TAT now, if the store tells.
    Moved { tat: Option<i128> },
    /// Its condition failed: the bucket holds `held` (`None`: no TAT).
    Refused { held: Option<i128> },
}

#[async_trait]
pub trait Limits: Send + Sync {
    /// Writes `write` to `tenant`'s bucket, atomically.
    async fn write_bucket(&self, tenant: &TenantId, write: BucketWrite) -> Result<BucketWritten, StoreError>;
}
