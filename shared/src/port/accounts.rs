//! Accounts: open (idempotent), read, list, and read an account's past (entries, balance as of an
//! instant, statements).

use async_trait::async_trait;
use time::OffsetDateTime;

use super::error::StoreError;
use super::results::{Created, Page};
use crate::account::{Account, AccountBalance, AccountVersion, NewAccount};
use crate::account_change::AccountChange;
use crate::error::LedgerError;
use crate::field::FieldError;
use crate::ids::{AccountId, TenantId};
use crate::money::Balances;
use crate::posting::Entry;
use crate::search::MetadataMatch;

/// Where an entry sits in its account's history: the instant it took effect (nanoseconds since
/// the epoch), the shard it was written to (a hot account's, `crate::shard`; 0 otherwise) and its
/// sequence there. A shard's entries take effect in sequence order (`posting::apply`), so
/// ordering by this orders by all three; a hot account's history is its shards' merged so.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryPosition {
    pub at_nanos: i128,
    pub shard: u16,
    pub sequence: u64,
}

impl EntryPosition {
    pub fn of(entry: &Entry) -> Self {
        Self {
            at_nanos: entry.created_at.unix_timestamp_nanos(),
            shard: entry.shard,
            sequence: entry.sequence,
        }
    }
}

/// An account's totals as of an instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BalanceAt {
    pub at: OffsetDateTime,
    pub balances: Balances,
    /// How many entries the account had then (the sequence of the last).
    pub entry_count: u64,
}

/// What one page of a statement asks for: the entries that took effect after `from` (`None`:
/// since the account was opened) up to `to`, `page_size` of them after `after` (the previous
/// page's last).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatementRange {
    pub from: Option<OffsetDateTime>,
    pub to: OffsetDateTime,
    pub page_size: u16,
    pub after: Option<EntryPosition>,
}

impl StatementRange {
    /// Refuses a range the ledger cannot state yet or at all: `to` after `now` (the last minute may
    /// still change, the future has not happened), `from` after `to`.
    pub fn check(&self, now: OffsetDateTime) -> Result<(), StoreError> {
        if self.to > now {
            return Err(invalid("to", format!("is in the future (now is {now})")));
        }
        if self.from.is_some_and(|from| from > self.to) {
            return Err(invalid("from", "is after `to`".into()));
        }
        Ok(())
    }

    /// Where the statement starts: `from`, or the epoch (before any account was opened).
    pub fn start(&self) -> OffsetDateTime {
        self.from.unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

/// Refuses an instant after `now` for a balance as of it.
pub fn check_balance_at(at: OffsetDateTime, now: OffsetDateTime) -> Result<(), StoreError> {
    if at > now {
        return Err(invalid("at", format!("is in the future (now is {now})")));
    }
    Ok(())
}

/// `field` is refused for `reason` (a 400 naming it).
pub fn invalid(field: &str, reason: String) -> StoreError {
    LedgerError::invalid(field, FieldError::new(reason)).into()
}

/// One page of an account's statement: the balance as of `from`, the entries that took effect
/// after it up to `to` (oldest first), and on the last page the balance as of `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub opening: BalanceAt,
    pub entries: Vec<Entry>,
    /// `None` until the last page.
    pub closing: Option<BalanceAt>,
    pub next: Option<EntryPosition>,
}

#[async_trait]
pub trait Accounts: Send + Sync {
    /// Opens the account once: the profile, its balance and its `account.opened` event together.
    /// The same request again replays the stored account; another under the same id is an
    /// `IdempotencyConflict` naming the differing fields.
    async fn create_account(
        &self,
        tenant: &TenantId,
        request: NewAccount,
        now: OffsetDateTime,
    ) -> Result<Created<Account>, StoreError>;

    /// The account with its current balances (read consistently).
    async fn get_account(&self, tenant: &TenantId, id: &AccountId) -> Result<Account, StoreError>;

    /// The account's balances and version (its entry count and revision), which every change of
    /// it moves: what a conditional GET revalidates against, at the cost of the smallest read.
    async fn account_balance(&self, tenant: &TenantId, id: &AccountId) -> Result<AccountBalance, StoreError>;

    /// Changes the account (`AccountChange::decide`) if it is still at `expected` (when given;
    /// otherwise as read), with its event, in one write conditioned on the version read: a change
    /// and the transfers racing it are ordered one way or the other. Returns the account as it
    /// stands after (unchanged, and nothing written, if the change changes nothing).
    /// `PreconditionFailed` if the account is not at `expected` (or moved before the write).
    async fn change_account(
        &self,
        tenant: &TenantId,
        id: &AccountId,
        change: &AccountChange,
        expected: Option<AccountVersion>,
        now: OffsetDateTime,
    ) -> Result<Account, StoreError>;

    /// A page of the tenant's accounts by id, after `after`, with each pair of `metadata` (none:
    /// every account); the balances of a page are one snapshot (they sum as the ledger's totals did
    /// at one instant). Filtered by metadata, a page reads at most `page_size` candidates and may
    /// hold fewer, with more to follow; an account whose creation was answered is found.
    async fn list_accounts(
        &self,
        tenant: &TenantId,
        metadata: &MetadataMatch,
        page_size: u16,
        after: Option<&AccountId>,
    ) -> Result<Page<Account, AccountId>, StoreError>;

    /// A page of the tenant's accounts' balances by account id, after `after`: every shard's
    /// balance of each account (a digest's heads, `crate::digest`), the page's read as one
    /// snapshot.
    async fn shard_balances(
        &self,
        tenant: &TenantId,
        page_size: u16,
        after: Option<&AccountId>,
    ) -> Result<Page<AccountBalance, AccountId>, StoreError>;

    /// One shard's entries from sequence `from` on, oldest first (`crate::books`: those written
    /// since a checkpoint). None for a shard or account that does not exist.
    async fn shard_entries(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        shard: u16,
        from: u64,
    ) -> Result<Vec<Entry>, StoreError>;

    /// A page of the account's entries, newest first, before `before`.
    async fn list_entries(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        page_size: u16,
        before: Option<EntryPosition>,
    ) -> Result<Page<Entry, EntryPosition>, StoreError>;

    /// The account's totals as of `at` (entries that took effect at or before it). `at` must not
    /// be after `now`, nor before the account was opened (`invalid_field` `at`).
    async fn balance_at(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<BalanceAt, StoreError>;

    /// One page of the account's statement. `to` must not be after `now`, nor `from` after `to`;
    /// `after` must lie within the range (`invalid_field` `cursor`).
    async fn statement(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        range: StatementRange,
        now: OffsetDateTime,
    ) -> Result<Statement, StoreError>;
}
