//! The continuous check's places and archive in process: the tenants are those with accounts;
//! the archive keeps each checkpoint once, under its own key, and never overwrites one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use ledger::LedgerError;
use ledger::books::Checkpoint;
use ledger::port::{Archive, CheckpointRef, Checkpoints, StoreError, TenantBooks, checkpoint_key};
use ledger::{Event, TenantId};

use crate::store::{MemoryStore, current_correlation, stored};

#[async_trait]
impl Checkpoints for MemoryStore {
    async fn tenants(&self) -> Result<Vec<TenantBooks>, StoreError> {
        let tables = self.tables();
        let mut tenants: Vec<TenantId> = tables.profiles.keys().map(|(tenant, _)| tenant.clone()).collect();
        tenants.dedup();
        Ok(tenants
            .into_iter()
            .map(|tenant| TenantBooks { latest: tables.checkpoints.get(&tenant).cloned(), tenant })
            .collect())
    }

    async fn advance(
        &self,
        tenant: &TenantId,
        previous: Option<&CheckpointRef>,
        next: &CheckpointRef,
        event: &Event,
    ) -> Result<(), StoreError> {
        let event = stored(tenant, event, current_correlation())?;
        let mut tables = self.tables();
        if tables.checkpoints.get(tenant).map(|c| c.run) != previous.map(|c| c.run) {
            return Err(
                LedgerError::PreconditionFailed { what: "books checkpoint", id: tenant.to_string() }.into()
            );
        }
        tables.checkpoints.insert(tenant.clone(), next.clone());
        tables.put_event(event);
        Ok(())
    }
}

/// Checkpoints kept in process, as JSON (what the S3 archive keeps).
#[derive(Debug, Default, Clone)]
pub struct MemoryArchive {
    objects: Arc<Mutex<HashMap<String, Vec<u8>>>>,
}

#[async_trait]
impl Archive for MemoryArchive {
    async fn put(&self, checkpoint: &Checkpoint) -> Result<String, StoreError> {
        let key = checkpoint_key(checkpoint);
        let body = serde_json::to_vec(checkpoint).map_err(|e| StoreError::Unexpected(e.to_string()))?;
        let mut objects = self.objects.lock().unwrap_or_else(PoisonError::into_inner);
        if objects.contains_key(&key) {
            return Err(StoreError::Unexpected(format!("{key} is kept already and cannot be overwritten")));
        }
        objects.insert(key.clone(), body);
        Ok(key)
    }

    async fn get(&self, key: &str) -> Result<Checkpoint, StoreError> {
        let objects = self.objects.lock().unwrap_or_else(PoisonError::into_inner);
        let body = objects.get(key).ok_or_else(|| StoreError::not_found("checkpoint", key))?;
        serde_json::from_slice(body).map_err(|e| StoreError::Corrupt(format!("{key}: {e}")))
    }
}
