//! The JSON shapes of requests and responses. Requests deserialise straight into domain newtypes
//! (parse, don't validate); unknown fields are refused so a typo cannot pass unnoticed.

use ledger::BatchId;
use ledger::port::{BalanceAt, Statement};
use ledger::{
    AccountId, AccountUpdate, Amount, Bounds, Currency, Direction, Effect, Entry, Limit, Metadata,
    NewAccount, NewTransfer, ShardCount, TransferId,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    pub id: Option<AccountId>,
    pub currency: Currency,
    #[serde(default)]
    pub allow_overdraft: bool,
    #[serde(default)]
    pub metadata: Metadata,
    pub overdraft_limit: Option<Limit>,
    pub max_balance: Option<Limit>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub effective_at: Option<OffsetDateTime>,
    /// Hot: how many shards its balance spreads over.
    #[serde(default)]
    pub shards: ShardCount,
}

impl CreateAccount {
    /// The request, refused if it names bounds that contradict each other or an opening in the
    /// future (after `now`).
    pub fn into_new_account(self, now: OffsetDateTime) -> Result<NewAccount, ledger::LedgerError> {
        if self.effective_at.is_some_and(|at| at > now) {
            let why = ledger::FieldError::new(format!("is in the future (now is {now})"));
            return Err(ledger::LedgerError::invalid("effective_at", why));
        }
        let bounds = Bounds { overdraft_limit: self.overdraft_limit, max_balance: self.max_balance };
        bounds.check(self.allow_overdraft).map_err(|e| ledger::LedgerError::invalid("overdraft_limit", e))?;
        bounds.check_shards(self.shards.get()).map_err(|e| ledger::LedgerError::invalid("shards", e))?;
        Ok(NewAccount {
            id: self.id.unwrap_or_else(AccountId::generate),
            currency: self.currency,
            allow_overdraft: self.allow_overdraft,
            metadata: self.metadata,
            bounds,
            effective_at: self.effective_at,
            shards: self.shards,
        })
    }
}

/// `POST /v1/accounts/{id}/reconciliations`: a bank statement of the account.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateReconciliation {
    /// `csv` or `camt.053`.
    pub format: String,
    /// The statement's text.
    pub statement: String,
    pub window_days: Option<u8>,
    /// The account that takes the other side of each unmatched line's adjusting transfer.
    pub adjust_with: Option<AccountId>,
}

/// `PATCH /v1/accounts/{id}` (a JSON merge patch, RFC 7396): each field given is set, `null`
/// removes a bound or a metadata key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchAccount {
    pub allow_overdraft: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub overdraft_limit: Option<Option<Limit>>,
    #[serde(default, deserialize_with = "present")]
    pub max_balance: Option<Option<Limit>>,
    pub metadata: Option<BTreeMap<String, Option<String>>>,
    /// Marks the account hot (more than one) or un-marks it (1).
    pub shards: Option<ShardCount>,
}

/// A field that is present (even `null`) is `Some`: so `null` can be told from absent.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

impl From<PatchAccount> for AccountUpdate {
    fn from(p: PatchAccount) -> Self {
        AccountUpdate {
            allow_overdraft: p.allow_overdraft,
            overdraft_limit: p.overdraft_limit,
            max_balance: p.max_balance,
            metadata: p.metadata,
            shards: p.shards,
        }
    }
}

/// `PATCH /v1/transfers/{id}` (a JSON merge patch of its metadata): each key given is set, or
/// removed when `null`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchTransfer {
    pub metadata: BTreeMap<String, Option<String>>,
}

/// `POST /v1/accounts/{id}/freeze`: what to stop.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreezeAccount {
    pub mode: FreezeMode,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FreezeMode {
    /// Nothing may leave the account; credits still land.
    Debits,
    /// Nothing may enter or leave it.
    All,
}

/// A dry run's answer: each transfer as it would be recorded, and the accounts they move as they
/// would stand (nothing was written).
#[derive(Debug, Serialize)]
pub struct DryRunBody {
    pub dry_run: bool,
    pub transfers: Vec<ledger::Transfer>,
    pub accounts: Vec<DryRunAccount>,
}

#[derive(Debug, Serialize)]
pub struct DryRunAccount {
    pub id: AccountId,
    pub status: ledger::AccountStatus,
    #[serde(flatten)]
    pub totals: TotalsBody,
}

impl From<ledger::port::DryRun> for DryRunBody {
    fn from(run: ledger::port::DryRun) -> Self {
        let accounts = run
            .accounts
            .into_iter()
            .map(|a| DryRunAccount {
                id: a.id.clone(),
                status: a.status,
                totals: TotalsBody::from(&BalanceAt {
                    at: a.last_entry_at.unwrap_or(OffsetDateTime::UNIX_EPOCH),
                    balances: a.balances,
                    entry_count: a.entry_count,
                }),
            })
            .collect();
        Self { dry_run: true, transfers: run.transfers, accounts }
    }
}

/// `POST /v1/transfer-batches`: the batch's id (its idempotency key) and its transfers, in order.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBatch {
    pub id: BatchId,
    /// Each parses as `POST /v1/transfers` does (`ledger::TransferFields`).
    pub transfers: Vec<NewTransfer>,
}

/// `POST /v1/linked-transfers`: one linked chain, in order (linked by the route).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateLinked {
    /// Each parses as `POST /v1/transfers` does (`ledger::TransferFields`).
    pub transfers: Vec<NewTransfer>,
}

/// The members of a linked chain, as recorded.
#[derive(Debug, Serialize)]
pub struct LinkedBody {
    pub transfers: Vec<ledger::Transfer>,
}

/// The four totals, with the balance and what is available, as of some instant.
#[derive(Debug, Serialize)]
pub struct TotalsBody {
    pub debits_pending: u128,
    pub debits_posted: u128,
    pub credits_pending: u128,
    pub credits_posted: u128,
    pub balance: i128,
    pub available: i128,
    /// How many entries the account had then.
    pub entry_count: u64,
}

impl From<&BalanceAt> for TotalsBody {
    fn from(b: &BalanceAt) -> Self {
        Self {
            debits_pending: b.balances.debits_pending,
            debits_posted: b.balances.debits_posted,
            credits_pending: b.balances.credits_pending,
            credits_posted: b.balances.credits_posted,
            balance: b.balances.balance(),
            available: b.balances.available(),
            entry_count: b.entry_count,
        }
    }
}

/// `GET /v1/accounts/{id}/balance?at=…`.
#[derive(Debug, Serialize)]
pub struct BalanceAtBody {
    pub account_id: AccountId,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[serde(flatten)]
    pub totals: TotalsBody,
}

impl BalanceAtBody {
    pub fn new(account_id: AccountId, found: BalanceAt) -> Self {
        Self { account_id, at: found.at, totals: TotalsBody::from(&found) }
    }
}

/// `GET /v1/accounts/{id}/statement?from=…&to=…`: one page.
#[derive(Debug, Serialize)]
pub struct StatementBody {
    pub account_id: AccountId,
    /// Absent: since the account was opened.
    #[serde(skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub from: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    pub opening_balance: TotalsBody,
    /// Oldest first.
    pub entries: Vec<EntryBody>,
    /// On the last page only (when `next_cursor` is absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closing_balance: Option<TotalsBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl StatementBody {
    pub fn new(
        account_id: AccountId,
        from: Option<OffsetDateTime>,
        to: OffsetDateTime,
        s: Statement,
    ) -> Self {
        Self {
            account_id,
            from,
            to,
            opening_balance: TotalsBody::from(&s.opening),
            entries: s.entries.into_iter().map(EntryBody::from).collect(),
            closing_balance: s.closing.as_ref().map(TotalsBody::from),
            next_cursor: s.next.map(|after| crate::cursor::statement_cursor(to, after)),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct EntryBody {
    pub account_id: AccountId,
    pub sequence: u64,
    pub transfer_id: TransferId,
    pub direction: Direction,
    /// `posted`, `held`, `posted_from_hold` (with `held`: the hold's amount it released) or `released`.
    #[serde(flatten)]
    pub effect: Effect,
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
    /// Its link of its (shard's) hash chain.
    pub hash: ledger::chain::Hash256,
}

impl From<Entry> for EntryBody {
    fn from(e: Entry) -> Self {
        Self {
            balance_after: e.balance_after(),
            available_after: e.balances_after.available(),
            debits_pending: e.balances_after.debits_pending,
            debits_posted: e.balances_after.debits_posted,
            credits_pending: e.balances_after.credits_pending,
            credits_posted: e.balances_after.credits_posted,
            effect: e.effect,
            account_id: e.account_id,
            sequence: e.sequence,
            transfer_id: e.transfer_id,
            direction: e.direction,
            amount: e.amount,
            counterparty_account_id: e.counterparty_account_id,
            created_at: e.created_at,
            hash: e.hash,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ListBody<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}
