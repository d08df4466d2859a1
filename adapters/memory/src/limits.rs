//! Request buckets in memory: each write atomic under the lock, conditioned as on DynamoDB.

use async_trait::async_trait;
use ledger::TenantId;
use ledger::port::{BucketWrite, BucketWritten, Limits, StoreError};

use crate::store::MemoryStore;

#[async_trait]
impl Limits for MemoryStore {
    async fn write_bucket(&self, tenant: &TenantId, write: BucketWrite) -> Result<BucketWritten, StoreError> {
        let mut tables = self.tables();
        let held = tables.buckets.get(tenant).copied();
        let moved = match write {
            BucketWrite::FromFull { now, tat } => held.is_none_or(|held| held <= now).then_some(tat),
            BucketWrite::Spend { now, spend, latest } => {
                held.filter(|held| *held > now && *held <= latest).map(|held| held + spend)
            }
        };
        Ok(match moved {
            Some(tat) => {
                tables.buckets.insert(tenant.clone(), tat);
                BucketWritten::Moved { tat: Some(tat) }
            }
            None => BucketWritten::Refused { held },
        })
    }
}
