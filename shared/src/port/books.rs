//! Where the continuous check of the books (`crate::books`) finds the tenants, keeps each one's
//! place, and archives its checkpoints.

use async_trait::async_trait;

use super::error::StoreError;
use crate::books::Checkpoint;
use crate::event::Event;
use crate::ids::TenantId;

/// A tenant's latest checkpoint: its run, and its key in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRef {
    pub run: u64,
    pub key: String,
}

/// A tenant with accounts, and its latest checkpoint (none before its first run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantBooks {
    pub tenant: TenantId,
    pub latest: Option<CheckpointRef>,
}

#[async_trait]
pub trait Checkpoints: Send + Sync + std::fmt::Debug {
    /// Every tenant that has opened an account, by id, with its latest checkpoint.
    async fn tenants(&self) -> Result<Vec<TenantBooks>, StoreError>;

    /// Makes `next` the tenant's latest checkpoint if `previous` still is, and writes `event` (its
    /// `books.checked`) with it, all or nothing: of two runs that started from one checkpoint, one
    /// moves on and the other gets `PreconditionFailed`.
    async fn advance(
        &self,
        tenant: &TenantId,
        previous: Option<&CheckpointRef>,
        next: &CheckpointRef,
        event: &Event,
    ) -> Result<(), StoreError>;
}

/// Where checkpoints are kept outside the table, out of reach of whoever can write it (in AWS,
/// an S3 bucket with Object Lock in compliance mode: no one deletes or overwrites an object
/// before its retention ends).
#[async_trait]
pub trait Archive: Send + Sync + std::fmt::Debug {
    /// Keeps `checkpoint` under a key of its own, which it returns.
    async fn put(&self, checkpoint: &Checkpoint) -> Result<String, StoreError>;

    /// The checkpoint kept under `key`.
    async fn get(&self, key: &str) -> Result<Checkpoint, StoreError>;
}

/// The archive key of a run's checkpoint: by tenant, then run, so a listing is in run order; the
/// instant it was taken keeps two runs that raced apart.
pub fn checkpoint_key(checkpoint: &Checkpoint) -> String {
    let digest = &checkpoint.signed.digest;
    format!("books/{}/{:012}-{}.json", digest.tenant, checkpoint.run, digest.taken_at.unix_timestamp_nanos())
}
