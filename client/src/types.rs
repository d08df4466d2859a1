//! The API's answers as they travel: one flat struct per document of `openapi.yaml` (a test holds
//! each to its schema's properties), built of the domain's own value types, so an id, an amount or
//! a currency a client reads back is as valid as one it sends.

use ledger::{
    AccountId, AccountStatus, Amount, BatchId, Currency, Direction, EndpointId, EventId, Limit, Metadata,
    StatusName, TransferId,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// An account (`Account`): its totals, its balance and what it may still spend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub currency: Currency,
    pub allow_overdraft: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overdraft_limit: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_balance: Option<Limit>,
    pub status: AccountStatus,
    pub metadata: Metadata,
    /// A hot account's shards (absent: not hot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<ledger::ShardCount>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub debits_pending: u128,
    pub debits_posted: u128,
    pub credits_pending: u128,
    pub credits_posted: u128,
    pub balance: i128,
    pub available: i128,
}

/// A transfer as recorded (`Transfer`): what it moved, and what became of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub id: TransferId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debit_account_id: Option<AccountId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_account_id: Option<AccountId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
    #[serde(default)]
    pub pending: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_pending_id: Option<TransferId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub void_pending_id: Option<TransferId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverses_transfer_id: Option<TransferId>,
    pub metadata: Metadata,
    #[serde(default)]
    pub linked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub effective_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub status: StatusName,
    /// The post or void that resolved a hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<TransferId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub posted_amount: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reversed_amount: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reversals: Vec<Reversal>,
    /// A rejection's rule: its `code` and the fields that name what it refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reversal {
    pub id: TransferId,
    pub amount: Amount,
}

/// The members of a linked chain, as recorded (`LinkedTransfers`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedTransfers {
    pub transfers: Vec<Transfer>,
}

/// Where a batch's settlement stands (`TransferBatch`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferBatch {
    pub id: BatchId,
    pub status_url: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub total: u64,
    pub queued: u64,
    pub committed: u64,
    pub rejected: u64,
    pub rejected_by_reason: std::collections::BTreeMap<String, u64>,
}

/// One side of one transfer on an account, with the totals right after it (`Entry`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub account_id: AccountId,
    pub sequence: u64,
    pub transfer_id: TransferId,
    pub direction: Direction,
    /// `posted`, `held`, `posted_from_hold` or `released`.
    pub effect: String,
    /// For `posted_from_hold`: the hold's amount it released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Amount>,
    pub amount: Amount,
    pub counterparty_account_id: AccountId,
    pub debits_pending: u128,
    pub debits_posted: u128,
    pub credits_pending: u128,
    pub credits_posted: u128,
    pub balance_after: i128,
    pub available_after: i128,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Its link of the account's (a hot account's shard's) hash chain (64 hex digits).
    pub hash: String,
}

/// An account's totals at an instant (`Totals`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub debits_pending: u128,
    pub debits_posted: u128,
    pub credits_pending: u128,
    pub credits_posted: u128,
    pub balance: i128,
    pub available: i128,
    pub entry_count: u64,
}

/// What a request would do (`DryRun`, `?dry_run=true`): nothing was written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DryRun {
    pub dry_run: bool,
    pub transfers: Vec<Transfer>,
    pub accounts: Vec<DryRunAccount>,
}

/// An account as a dry run would leave it (`DryRunAccount`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DryRunAccount {
    pub id: AccountId,
    pub status: AccountStatus,
    pub debits_pending: u128,
    pub debits_posted: u128,
    pub credits_pending: u128,
    pub credits_posted: u128,
    pub balance: i128,
    pub available: i128,
    pub entry_count: u64,
}

/// An account's totals as of an instant (`BalanceAt`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceAt {
    pub account_id: AccountId,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub debits_pending: u128,
    pub debits_posted: u128,
    pub credits_pending: u128,
    pub credits_posted: u128,
    pub balance: i128,
    pub available: i128,
    pub entry_count: u64,
}

/// A reconciliation with a bank statement (`Reconciliation`): the domain's own shape.
pub use ledger::reconcile::Reconciliation;

/// One page of an account's statement (`Statement`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    pub account_id: AccountId,
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub from: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    pub opening_balance: Totals,
    pub entries: Vec<Entry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closing_balance: Option<Totals>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// An event (`Event`): one change of the ledger, as published and delivered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    pub tenant: String,
    pub api_version: String,
    pub data: serde_json::Value,
}

/// A webhook endpoint (`WebhookEndpoint`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    pub id: EndpointId,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: String,
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub failing_since: Option<OffsetDateTime>,
}

/// An endpoint with its signing secret: the answer to its creation and to a rotation, the only
/// times the secret is shown (`WebhookEndpointWithSecret`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpointWithSecret {
    pub id: EndpointId,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: String,
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub failing_since: Option<OffsetDateTime>,
    pub secret: String,
}

/// One event's delivery to an endpoint, with its attempts (`WebhookDelivery`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    pub event_id: EventId,
    pub event_type: String,
    pub status: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    pub attempts: Vec<serde_json::Value>,
}

/// What a redelivery or a replay queued (`WebhookQueued`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookQueued {
    pub queued: u64,
    /// Of a replay: the events the endpoint had received already, not queued again.
    #[serde(default)]
    pub already_delivered: Option<u64>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// One page of a list (`…List`): its items and where the next starts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

/// An RFC 9457 problem document (`Problem`): every refusal of the API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable and machine-readable: what to branch on.
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<AccountId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_id: Option<TransferId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reversed_transfer_id: Option<TransferId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_id: Option<TransferId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfers: Option<Vec<Transfer>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.detail)
    }
}
