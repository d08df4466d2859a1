//! The memory store: its tables behind one lock, shared by its clones.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ledger::port::{StoreError, StoredEvent};
use ledger::{Event, TenantId};

use crate::tables::Tables;

/// The ledger's store in process. Cheap to clone (clones share the tables).
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    tables: Arc<Mutex<Tables>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The tables, locked for one synchronous step (never across an await).
    pub(crate) fn tables(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The id of the request the running work serves (`ledger_telemetry::correlation::scope`): what
/// the items it writes record as their cause.
pub(crate) fn current_correlation() -> Option<String> {
    ledger_telemetry::correlation::current().map(|c| c.as_str().to_owned())
}

/// `event` as stored: its JSON, byte for byte what is served and delivered.
pub(crate) fn stored(
    tenant: &TenantId,
    event: &Event,
    correlation: Option<String>,
) -> Result<StoredEvent, StoreError> {
    let body = serde_json::to_string(event).map_err(|e| StoreError::Unexpected(e.to_string()))?;
    Ok(StoredEvent {
        id: event.id.clone(),
        tenant: tenant.clone(),
        kind: event.kind(),
        created: event.created,
        body,
        correlation_id: correlation,
    })
}
