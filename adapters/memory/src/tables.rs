//! The tables the memory store keeps, and the one rule for reading them: under one lock, never
//! held across an await.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ledger::engine::StoredTransfer;
use ledger::port::{BatchRecord, CheckpointRef, Delivery, EntryPosition, StoredEvent};
use ledger::webhook::WebhookEndpoint;
use ledger::{Account, AccountBalance, AccountId, BatchCounts, BatchId, EndpointId, Entry, NewTransfer};
use ledger::{EventId, TenantId, TransferId};
use time::OffsetDateTime;

/// An account's descriptive part (what a transfer never rewrites).
pub(crate) type Profile = Account;

/// A batch as submitted, and where its settlement stands.
#[derive(Clone, Debug)]
pub(crate) struct BatchState {
    pub record: BatchRecord,
    pub transfers: Vec<NewTransfer>,
    /// Its ids in order, once accepted.
    pub ids: Option<Vec<TransferId>>,
    /// How many of its transfers, in order, are settled, and their outcomes.
    pub cursor: u64,
    pub counts: BatchCounts,
}

/// Where an event or a delivery sorts: its instant, then its id as text (as DynamoDB's sort keys
/// order them).
pub(crate) type EventKey = (i128, String);

pub(crate) fn event_key(at_nanos: i128, id: &EventId) -> EventKey {
    (at_nanos, id.to_string())
}

#[derive(Debug, Default)]
pub(crate) struct Tables {
    pub profiles: BTreeMap<(TenantId, AccountId), Profile>,
    pub balances: HashMap<(TenantId, AccountId), AccountBalance>,
    pub entries: HashMap<(TenantId, AccountId), BTreeMap<EntryPosition, Entry>>,
    pub transfers: HashMap<(TenantId, TransferId), StoredTransfer>,
    /// Each member of a linked chain of two or more, with its chain's first member.
    pub chains: HashMap<(TenantId, TransferId), TransferId>,
    pub batches: HashMap<(TenantId, BatchId), BatchState>,
    /// Holds with a timeout, by expiry (unix seconds): the sweeper's listing, with the accounts
    /// each names. Listed while pending; unlisted by the expiry, or, once posted or voided, by
    /// whoever finds the listing due (as on DynamoDB).
    pub expiry: BTreeMap<(i64, TenantId, TransferId), Vec<AccountId>>,
    /// The same holds in each of their accounts' listings.
    pub held: BTreeSet<(TenantId, AccountId, i64, TransferId)>,
    pub swept_until: Option<i64>,
    pub events: BTreeMap<(TenantId, EventKey), StoredEvent>,
    pub event_keys: HashMap<(TenantId, EventId), EventKey>,
    pub endpoints: BTreeMap<(TenantId, EndpointId), (WebhookEndpoint, u64)>,
    pub deliveries: BTreeMap<(TenantId, EndpointId, EventKey), Delivery>,
    pub leases: HashMap<(TenantId, EndpointId, EventKey), OffsetDateTime>,
    pub buckets: HashMap<TenantId, i128>,
    /// Each tenant's latest checkpoint of its books (`ledger::books`).
    pub checkpoints: HashMap<TenantId, CheckpointRef>,
    /// Reconciliations by account and statement digest.
    pub reconciliations:
        HashMap<(TenantId, AccountId, ledger::chain::Hash256), ledger::reconcile::Reconciliation>,
}

impl Tables {
    /// Writes an event (the outbox): stored once, by id, listed by instant.
    pub fn put_event(&mut self, event: StoredEvent) {
        let key = event_key(event.created.unix_timestamp_nanos(), &event.id);
        self.event_keys.insert((event.tenant.clone(), event.id.clone()), key.clone());
        self.events.insert((event.tenant.clone(), key), event);
    }
}
