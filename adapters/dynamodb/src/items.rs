//! Translation between domain values and DynamoDB items. Written by hand: the posted totals are
//! u128 (up to 38 digits), which serde_dynamo does not serialise.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use aws_sdk_dynamodb::types::AttributeValue;
use ledger::{
    Account, AccountBalance, AccountId, Amount, Balances, Currency, Direction, Entry, Metadata, NewTransfer,
    RuleViolation, TenantId, Transfer, TransferId, TransferStatus,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::StoreError;
use crate::keys;

pub type Item = HashMap<String, AttributeValue>;

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn timestamp(at: OffsetDateTime) -> AttributeValue {
    s(at.format(&Rfc3339).unwrap_or_default())
}

fn metadata(m: &Metadata) -> AttributeValue {
    AttributeValue::M(m.as_map().iter().map(|(k, v)| (k.clone(), s(v))).collect())
}

/// The account's descriptive item: written once, listed through the accounts index.
pub fn profile_item(tenant: &TenantId, account: &Account) -> Item {
    HashMap::from([
        (keys::PK.into(), s(keys::account_pk(tenant, &account.id))),
        (keys::SK.into(), s(keys::ACCOUNT_SK)),
        (keys::GSI1_PK.into(), s(keys::accounts_index_pk(tenant))),
        (keys::GSI1_SK.into(), s(account.id.as_str())),
        ("id".into(), s(account.id.as_str())),
        ("currency".into(), s(account.currency.as_str())),
        ("allow_overdraft".into(), AttributeValue::Bool(account.allow_overdraft)),
        ("metadata".into(), metadata(&account.metadata)),
        ("created_at".into(), timestamp(account.created_at)),
    ])
}

/// The account's balance item: what a transfer reads and rewrites.
pub fn balance_item(tenant: &TenantId, balance: &AccountBalance) -> Item {
    HashMap::from([
        (keys::PK.into(), s(keys::account_pk(tenant, &balance.id))),
        (keys::SK.into(), s(keys::BALANCE_SK)),
        ("id".into(), s(balance.id.as_str())),
        ("currency".into(), s(balance.currency.as_str())),
        ("allow_overdraft".into(), AttributeValue::Bool(balance.allow_overdraft)),
        ("debits_posted".into(), n(balance.balances.debits_posted)),
        ("credits_posted".into(), n(balance.balances.credits_posted)),
        ("entry_count".into(), n(balance.entry_count)),
    ])
}

pub fn transfer_item(tenant: &TenantId, transfer: &Transfer) -> Item {
    let mut item = transfer_attributes(transfer);
    item.insert(keys::PK.into(), s(keys::transfer_pk(tenant, &transfer.request.id)));
    item.insert(keys::SK.into(), s(keys::TRANSFER_SK));
    item
}

/// The size of a transfer's item without its keys (each at most 140 bytes).
pub fn transfer_size(transfer: &Transfer) -> usize {
    item_size(&transfer_attributes(transfer))
}

fn transfer_attributes(transfer: &Transfer) -> Item {
    let t = &transfer.request;
    let mut item = HashMap::from([
        ("id".into(), s(t.id.as_str())),
        ("debit_account_id".into(), s(t.debit_account_id.as_str())),
        ("credit_account_id".into(), s(t.credit_account_id.as_str())),
        ("amount".into(), n(t.amount.get())),
        ("currency".into(), s(t.currency.as_str())),
        ("metadata".into(), metadata(&t.metadata)),
        ("created_at".into(), timestamp(transfer.created_at)),
    ]);
    match &transfer.status {
        TransferStatus::Queued => {
            item.insert("status".into(), s("queued"));
        }
        TransferStatus::Committed => {
            item.insert("status".into(), s("committed"));
        }
        TransferStatus::Rejected { reason } => {
            item.insert("status".into(), s("rejected"));
            item.insert("reason".into(), s(reason.code()));
            if let Some(account) = reason.account_id() {
                item.insert("reason_account_id".into(), s(account.as_str()));
            }
        }
    }
    item
}

/// A transfer written by a queued submission: `owner` says which submission (and position) claimed
/// its id, so only that submission's worker settles it (see `keys::owner`).
pub fn claimed_transfer_item(tenant: &TenantId, transfer: &Transfer, owner: &str) -> Item {
    let mut item = transfer_item(tenant, transfer);
    item.insert(keys::OWNER.into(), s(owner));
    item
}

/// The submission that claimed a stored transfer, if a queued one did.
pub fn owner_of(item: &Item) -> Option<&str> {
    item.get(keys::OWNER).and_then(|v| v.as_s().ok()).map(String::as_str)
}

/// An upper bound of an item's size as DynamoDB counts it (names plus values, in bytes): what keeps
/// a transaction under its 4 MB limit.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(v) | AttributeValue::N(v) => v.len(),
        AttributeValue::M(map) => 3 + map.iter().map(|(k, v)| k.len() + 1 + value_size(v)).sum::<usize>(),
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::Ns(set) | AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        // Booleans, nulls, and anything this table never stores: counted generously.
        _ => 8,
    }
}

pub fn entry_item(tenant: &TenantId, entry: &Entry) -> Item {
    HashMap::from([
        (keys::PK.into(), s(keys::account_pk(tenant, &entry.account_id))),
        (keys::SK.into(), s(keys::entry_sk(entry.sequence))),
        ("account_id".into(), s(entry.account_id.as_str())),
        ("sequence".into(), n(entry.sequence)),
        ("transfer_id".into(), s(entry.transfer_id.as_str())),
        ("direction".into(), s(direction_code(entry.direction))),
        ("amount".into(), n(entry.amount.get())),
        ("counterparty_account_id".into(), s(entry.counterparty_account_id.as_str())),
        ("debits_posted".into(), n(entry.balances_after.debits_posted)),
        ("credits_posted".into(), n(entry.balances_after.credits_posted)),
        ("created_at".into(), timestamp(entry.created_at)),
    ])
}

fn direction_code(direction: Direction) -> &'static str {
    match direction {
        Direction::Debit => "debit",
        Direction::Credit => "credit",
    }
}

/// Reads typed attributes out of a stored item. A stored item that does not parse is a fault of
/// the store (not of the request), reported as `StoreError::Corrupt`.
struct Reader<'a>(&'a Item);

impl Reader<'_> {
    fn corrupt(&self, name: &str, why: &str) -> StoreError {
        let key = self.0.get(keys::PK).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        StoreError::Corrupt(format!("item {key}: attribute {name} {why}"))
    }

    fn str(&self, name: &str) -> Result<&str, StoreError> {
        match self.0.get(name) {
            Some(AttributeValue::S(v)) => Ok(v),
            _ => Err(self.corrupt(name, "is missing or not a string")),
        }
    }

    fn num<T: FromStr>(&self, name: &str) -> Result<T, StoreError> {
        match self.0.get(name) {
            Some(AttributeValue::N(v)) => v.parse().map_err(|_| self.corrupt(name, "is out of range")),
            _ => Err(self.corrupt(name, "is missing or not a number")),
        }
    }

    fn parsed<T, E>(&self, name: &str, parse: impl FnOnce(&str) -> Result<T, E>) -> Result<T, StoreError> {
        parse(self.str(name)?).map_err(|_| self.corrupt(name, "does not parse"))
    }

    fn bool(&self, name: &str) -> Result<bool, StoreError> {
        match self.0.get(name) {
            Some(AttributeValue::Bool(b)) => Ok(*b),
            _ => Err(self.corrupt(name, "is missing or not a boolean")),
        }
    }

    fn timestamp(&self, name: &str) -> Result<OffsetDateTime, StoreError> {
        self.parsed(name, |v| OffsetDateTime::parse(v, &Rfc3339))
    }

    fn metadata(&self, name: &str) -> Result<Metadata, StoreError> {
        let Some(AttributeValue::M(map)) = self.0.get(name) else {
            return Err(self.corrupt(name, "is missing or not a map"));
        };
        let mut out = BTreeMap::new();
        for (k, v) in map {
            let v = v.as_s().map_err(|_| self.corrupt(name, "holds a non-string value"))?;
            out.insert(k.clone(), v.clone());
        }
        Metadata::parse(out).map_err(|_| self.corrupt(name, "breaks the metadata limits"))
    }

    fn balances(&self) -> Result<Balances, StoreError> {
        Ok(Balances {
            debits_posted: self.num("debits_posted")?,
            credits_posted: self.num("credits_posted")?,
        })
    }

    fn amount(&self) -> Result<Amount, StoreError> {
        Amount::new(self.num("amount")?).map_err(|_| self.corrupt("amount", "is out of range"))
    }
}

pub fn balance_from(item: &Item) -> Result<AccountBalance, StoreError> {
    let r = Reader(item);
    Ok(AccountBalance {
        id: r.parsed("id", |v| AccountId::parse(v))?,
        currency: r.parsed("currency", Currency::parse)?,
        allow_overdraft: r.bool("allow_overdraft")?,
        balances: r.balances()?,
        entry_count: r.num("entry_count")?,
    })
}

/// An account from its profile and balance items.
pub fn account_from(profile: &Item, balance: &Item) -> Result<Account, StoreError> {
    let r = Reader(profile);
    let state = balance_from(balance)?;
    Ok(Account {
        id: r.parsed("id", |v| AccountId::parse(v))?,
        currency: r.parsed("currency", Currency::parse)?,
        allow_overdraft: r.bool("allow_overdraft")?,
        metadata: r.metadata("metadata")?,
        created_at: r.timestamp("created_at")?,
        balances: state.balances,
        entry_count: state.entry_count,
    })
}

pub fn transfer_from(item: &Item) -> Result<Transfer, StoreError> {
    let r = Reader(item);
    let request = NewTransfer {
        id: r.parsed("id", |v| TransferId::parse(v))?,
        debit_account_id: r.parsed("debit_account_id", |v| AccountId::parse(v))?,
        credit_account_id: r.parsed("credit_account_id", |v| AccountId::parse(v))?,
        amount: r.amount()?,
        currency: r.parsed("currency", Currency::parse)?,
        metadata: r.metadata("metadata")?,
    };
    let status = match r.str("status")? {
        "queued" => TransferStatus::Queued,
        "committed" => TransferStatus::Committed,
        "rejected" => {
            let account = || r.parsed("reason_account_id", |v| AccountId::parse(v));
            let reason = match r.str("reason")? {
                "same_account" => RuleViolation::SameAccount,
                "account_not_found" => RuleViolation::AccountNotFound { account_id: account()? },
                "currency_mismatch" => RuleViolation::CurrencyMismatch { account_id: account()? },
                "insufficient_funds" => RuleViolation::InsufficientFunds { account_id: account()? },
                "balance_limit_exceeded" => RuleViolation::BalanceLimitExceeded { account_id: account()? },
                _ => return Err(r.corrupt("reason", "is not a known rule")),
            };
            TransferStatus::Rejected { reason }
        }
        _ => return Err(r.corrupt("status", "is not a known status")),
    };
    Ok(Transfer { request, created_at: r.timestamp("created_at")?, status })
}

pub fn entry_from(item: &Item) -> Result<Entry, StoreError> {
    let r = Reader(item);
    Ok(Entry {
        account_id: r.parsed("account_id", |v| AccountId::parse(v))?,
        sequence: r.num("sequence")?,
        transfer_id: r.parsed("transfer_id", |v| TransferId::parse(v))?,
        direction: match r.str("direction")? {
            "debit" => Direction::Debit,
            "credit" => Direction::Credit,
            _ => return Err(r.corrupt("direction", "is neither debit nor credit")),
        },
        amount: r.amount()?,
        counterparty_account_id: r.parsed("counterparty_account_id", |v| AccountId::parse(v))?,
        balances_after: r.balances()?,
        created_at: r.timestamp("created_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::{NewAccount, money::POSTED_LIMIT};
    use time::macros::datetime;

    fn tenant() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    #[test]
    fn account_round_trips_including_the_largest_totals() {
        let mut account = NewAccount {
            id: AccountId::parse("alice").unwrap(),
            currency: Currency::parse("EUR").unwrap(),
            allow_overdraft: true,
            metadata: Metadata::parse(BTreeMap::from([("k".into(), "v".into())])).unwrap(),
        }
        .open(datetime!(2026-11-28 10:00:00.123 UTC));
        account.balances = Balances { debits_posted: POSTED_LIMIT, credits_posted: 7 };
        account.entry_count = 42;
        let balance = balance_item(&tenant(), &account.balance_state());
        assert_eq!(balance["debits_posted"], n("99999999999999999999999999999999999999"));
        assert_eq!(account_from(&profile_item(&tenant(), &account), &balance).unwrap(), account);
    }

    #[test]
    fn rejected_transfer_round_trips_with_its_reason() {
        let transfer = NewTransfer {
            id: TransferId::parse("t1").unwrap(),
            debit_account_id: AccountId::parse("a").unwrap(),
            credit_account_id: AccountId::parse("b").unwrap(),
            amount: Amount::new(5).unwrap(),
            currency: Currency::parse("EUR").unwrap(),
            metadata: Metadata::default(),
        }
        .rejected(
            RuleViolation::InsufficientFunds { account_id: AccountId::parse("a").unwrap() },
            datetime!(2026-11-28 10:00:00 UTC),
        );
        assert_eq!(transfer_from(&transfer_item(&tenant(), &transfer)).unwrap(), transfer);
    }

    #[test]
    fn item_size_bounds_what_dynamodb_counts() {
        let item: Item = HashMap::from([
            ("pk".to_string(), s("abc")),
            ("n".to_string(), n(12345)),
            ("m".to_string(), AttributeValue::M(HashMap::from([("k".to_string(), s("vv"))]))),
        ]);
        // pk: 2 + 3; n: 1 + 5; m: 1 + 3 + (1 + 1 + 2).
        assert_eq!(item_size(&item), 5 + 6 + 8);
    }

    #[test]
    fn a_damaged_item_is_a_corrupt_store_error_not_a_panic() {
        let mut item = HashMap::new();
        item.insert("id".to_string(), s("alice"));
        item.insert("currency".to_string(), s("euro"));
        assert!(matches!(balance_from(&item), Err(StoreError::Corrupt(_))));
    }
}
