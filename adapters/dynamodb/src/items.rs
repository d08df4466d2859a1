//! Translation between domain values and DynamoDB items, and the transactional writes of whole
//! items. Written by hand: the posted totals are u128 (up to 38 digits), which serde_dynamo does
//! not serialise.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use ledger::ShardCount;
use ledger::chain::Hash256;
use ledger::engine::StoredTransfer;
use ledger::port::{EntryPosition, StoreError};
use ledger::{
    Account, AccountBalance, AccountId, Amount, Balances, Currency, Direction, Effect, Entry, Metadata,
    Movement, NewTransfer, Owner, Reversal, RuleSubject, RuleViolation, TenantId, Timeout, Transfer,
    TransferId, TransferKind, TransferStatus,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::unbuilt;
use crate::keys;

pub type Item = HashMap<String, AttributeValue>;

/// The attribute of an item naming the request whose work wrote it.
pub const CORRELATION: &str = "correlation_id";

/// A transactional put of a whole item.
pub fn put(table: &str, item: Item) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder().table_name(table).set_item(Some(item)).build().map_err(unbuilt)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// A transactional put that fails the transaction if the item exists.
pub fn put_if_new(table: &str, item: Item) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .map_err(unbuilt)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// A transactional delete of the item at `item_key`.
pub fn delete(table: &str, item_key: Item) -> Result<TransactWriteItem, StoreError> {
    let delete = Delete::builder().table_name(table).set_key(Some(item_key)).build().map_err(unbuilt)?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A number attribute's value, if it is one and fits `T`.
pub fn number<T: FromStr>(value: Option<&AttributeValue>) -> Option<T> {
    value?.as_n().ok()?.parse().ok()
}

pub fn timestamp(at: OffsetDateTime) -> AttributeValue {
    s(at.format(&Rfc3339).unwrap_or_default())
}

pub fn metadata(m: &Metadata) -> AttributeValue {
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
        ("metadata".into(), metadata(&account.metadata)),
        ("created_at".into(), timestamp(account.created_at)),
    ])
    .into_iter()
    // A hot account's shards, which a list reads with its balance (`ledger::shard`).
    .chain((account.shard_items > 1).then(|| ("shard_items".to_owned(), n(account.shard_items))))
    .collect()
}

/// The account's balance item: what a transfer reads and rewrites.
pub fn balance_item(tenant: &TenantId, balance: &AccountBalance) -> Item {
    let sharded = balance.is_sharded();
    HashMap::from([
        (keys::PK.into(), s(keys::shard_pk(tenant, &balance.id, balance.shard))),
        (keys::SK.into(), s(keys::BALANCE_SK)),
        ("id".into(), s(balance.id.as_str())),
        ("currency".into(), s(balance.currency.as_str())),
        ("entry_count".into(), n(balance.entry_count)),
        ("head".into(), s(balance.head.to_string())),
    ])
    .into_iter()
    .chain(policy(balance))
    .chain(totals(&balance.balances))
    .chain(balance.last_entry_at.map(|at| ("last_entry_at".to_owned(), timestamp(at))))
    .chain(sharded.then(|| ("shard".to_owned(), n(balance.shard))))
    .chain(sharded.then(|| ("moved".to_owned(), n(balance.moved))))
    .collect()
}

/// The account's policy and its revision as attributes, named as in the API: what an account
/// change sets (a bound absent is removed).
pub fn policy(balance: &AccountBalance) -> Vec<(String, AttributeValue)> {
    let bounds =
        [("overdraft_limit", balance.bounds.overdraft_limit), ("max_balance", balance.bounds.max_balance)];
    [
        ("allow_overdraft".to_owned(), AttributeValue::Bool(balance.allow_overdraft)),
        ("status".to_owned(), s(balance.status.as_str())),
        ("revision".to_owned(), n(balance.revision)),
        ("shards".to_owned(), n(balance.shards.get())),
        ("shard_items".to_owned(), n(balance.shard_items)),
    ]
    .into_iter()
    .chain(bounds.into_iter().filter_map(|(name, bound)| Some((name.to_owned(), n(bound?.get())))))
    .collect()
}

/// The four totals as attributes, named as in the API.
pub fn totals(b: &Balances) -> [(String, AttributeValue); 4] {
    [
        ("debits_pending".into(), n(b.debits_pending)),
        ("debits_posted".into(), n(b.debits_posted)),
        ("credits_pending".into(), n(b.credits_pending)),
        ("credits_posted".into(), n(b.credits_posted)),
    ]
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
        ("metadata".into(), metadata(&t.metadata)),
        ("created_at".into(), timestamp(transfer.created_at)),
    ]);
    if let Some(at) = t.effective_at {
        item.insert("effective_at".into(), timestamp(at));
    }
    if transfer.revision > 0 {
        item.insert("revision".into(), n(transfer.revision));
    }
    if let Some(m) = &transfer.movement {
        item.insert("debit_account_id".into(), s(m.debit_account_id.as_str()));
        item.insert("credit_account_id".into(), s(m.credit_account_id.as_str()));
        item.insert("amount".into(), n(m.amount.get()));
        item.insert("currency".into(), s(m.currency.as_str()));
    }
    match &t.kind {
        TransferKind::Immediate(_) => {}
        TransferKind::Pending { timeout, .. } => {
            item.insert("pending".into(), AttributeValue::Bool(true));
            if let Some(timeout) = timeout {
                item.insert("timeout_seconds".into(), n(timeout.seconds()));
            }
        }
        TransferKind::PostPending { pending_id, amount } => {
            item.insert("post_pending_id".into(), s(pending_id.as_str()));
            if let Some(amount) = amount {
                item.insert("requested_amount".into(), n(amount.get()));
            }
        }
        TransferKind::VoidPending { pending_id } => {
            item.insert("void_pending_id".into(), s(pending_id.as_str()));
        }
        TransferKind::Reversal { reversed_id, amount } => {
            item.insert("reverses_transfer_id".into(), s(reversed_id.as_str()));
            if let Some(amount) = amount {
                item.insert("requested_amount".into(), n(amount.get()));
            }
        }
    }
    if t.linked {
        item.insert("linked".into(), AttributeValue::Bool(true));
    }
    if !transfer.reversals.is_empty() {
        item.insert("reversed_amount".into(), n(transfer.reversed_amount()));
        item.insert("reversals".into(), reversals(&transfer.reversals));
    }
    item.insert("status".into(), s(status_code(&transfer.status)));
    match &transfer.status {
        TransferStatus::Rejected { reason } => {
            item.insert("reason".into(), s(reason.code()));
            if let Some(account) = reason.account_id() {
                item.insert("reason_account_id".into(), s(account.as_str()));
            }
            if let Some(pending) = reason.pending_id() {
                item.insert("reason_pending_id".into(), s(pending.as_str()));
            }
            if let Some(reversed) = reason.reversed_id() {
                item.insert("reason_reversed_id".into(), s(reversed.as_str()));
            }
        }
        TransferStatus::Posted { resolved_by, posted_amount } => {
            item.insert("resolved_by".into(), s(resolved_by.as_str()));
            item.insert("posted_amount".into(), n(posted_amount.get()));
        }
        TransferStatus::Voided { resolved_by } => {
            item.insert("resolved_by".into(), s(resolved_by.as_str()));
        }
        TransferStatus::Queued
        | TransferStatus::Committed
        | TransferStatus::Pending
        | TransferStatus::Expired => {}
    }
    item
}

/// A transfer's reversals as stored: a list of `{id, amount}` maps, appended to by each reversal.
pub fn reversals(list: &[Reversal]) -> AttributeValue {
    AttributeValue::L(
        list.iter()
            .map(|r| {
                AttributeValue::M(HashMap::from([
                    ("id".into(), s(r.id.as_str())),
                    ("amount".into(), n(r.amount.get())),
                ]))
            })
            .collect(),
    )
}

/// The stored value of a transfer's `status` attribute.
pub fn status_code(status: &TransferStatus) -> &'static str {
    match status {
        TransferStatus::Queued => "queued",
        TransferStatus::Committed => "committed",
        TransferStatus::Rejected { .. } => "rejected",
        TransferStatus::Pending => "pending",
        TransferStatus::Posted { .. } => "posted",
        TransferStatus::Voided { .. } => "voided",
        TransferStatus::Expired => "expired",
    }
}

/// A transfer written by a queued submission: `owner` says which submission (and position) claimed
/// its id, so only that submission's worker settles it. It records the request that queued it
/// (`correlation`), for the event of its settling.
pub fn claimed_transfer_item(
    tenant: &TenantId,
    transfer: &Transfer,
    owner: &Owner,
    correlation: Option<&str>,
) -> Item {
    let mut item = transfer_item(tenant, transfer);
    item.insert(keys::OWNER.into(), s(owner.key()));
    if let Some(correlation) = correlation {
        item.insert(CORRELATION.into(), s(correlation));
    }
    item
}

/// The submission that claimed a stored transfer, if a queued one did.
pub fn owner_of(item: &Item) -> Option<Owner> {
    item.get(keys::OWNER).and_then(|v| v.as_s().ok()).and_then(|key| Owner::parse(key))
}

/// A transfer item as the engine reads it: the transfer, the submission that claimed it and the
/// request that queued it.
pub fn stored_transfer(item: &Item) -> Result<StoredTransfer, StoreError> {
    Ok(StoredTransfer {
        transfer: transfer_from(item)?,
        owner: owner_of(item),
        correlation: item.get(CORRELATION).and_then(|v| v.as_s().ok()).cloned(),
    })
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
    let mut item: Item = HashMap::from([
        (keys::PK.into(), s(keys::shard_pk(tenant, &entry.account_id, entry.shard))),
        (keys::SK.into(), s(keys::entry_sk(EntryPosition::of(entry)))),
        ("account_id".into(), s(entry.account_id.as_str())),
        ("sequence".into(), n(entry.sequence)),
        ("transfer_id".into(), s(entry.transfer_id.as_str())),
        ("direction".into(), s(entry.direction.code())),
        ("effect".into(), s(entry.effect.code())),
        ("amount".into(), n(entry.amount.get())),
        ("counterparty_account_id".into(), s(entry.counterparty_account_id.as_str())),
        ("created_at".into(), timestamp(entry.created_at)),
        ("hash".into(), s(entry.hash.to_string())),
    ]);
    if let Effect::PostedFromHold { held } = entry.effect {
        item.insert("held".into(), n(held.get()));
    }
    item.extend(totals(&entry.balances_after));
    item
}

/// Reads typed attributes out of a stored item. A stored item that does not parse is a fault of
/// the store (not of the request), reported as `StoreError::Corrupt`.
pub(crate) struct Reader<'a>(pub(crate) &'a Item);

impl Reader<'_> {
    pub(crate) fn corrupt(&self, name: &str, why: &str) -> StoreError {
        let key = self.0.get(keys::PK).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        StoreError::Corrupt(format!("item {key}: attribute {name} {why}"))
    }

    pub(crate) fn str(&self, name: &str) -> Result<&str, StoreError> {
        match self.0.get(name) {
            Some(AttributeValue::S(v)) => Ok(v),
            _ => Err(self.corrupt(name, "is missing or not a string")),
        }
    }

    pub(crate) fn num<T: FromStr>(&self, name: &str) -> Result<T, StoreError> {
        match self.0.get(name) {
            Some(AttributeValue::N(v)) => v.parse().map_err(|_| self.corrupt(name, "is out of range")),
            _ => Err(self.corrupt(name, "is missing or not a number")),
        }
    }

    pub(crate) fn parsed<T, E>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, StoreError> {
        parse(self.str(name)?).map_err(|_| self.corrupt(name, "does not parse"))
    }

    pub(crate) fn opt_str(&self, name: &str) -> Result<Option<&str>, StoreError> {
        self.0.get(name).map(|_| self.str(name)).transpose()
    }

    /// A link of a chain (`ledger::chain`), which items written before chains lack: the genesis
    /// then, which the verifier reports as a break.
    pub(crate) fn hash(&self, name: &str) -> Result<Hash256, StoreError> {
        self.opt_str(name)?
            .map(|v| Hash256::parse(v).map_err(|_| self.corrupt(name, "is not a hash")))
            .unwrap_or(Ok(Hash256::GENESIS))
    }

    /// A number that items written before it existed lack: zero then.
    pub(crate) fn num_or_zero<T: FromStr + Default>(&self, name: &str) -> Result<T, StoreError> {
        self.0.get(name).map(|_| self.num(name)).transpose().map(Option::unwrap_or_default)
    }

    pub(crate) fn id<T>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, ledger::FieldError>,
    ) -> Result<Option<T>, StoreError> {
        self.opt_str(name)?.map(|v| parse(v).map_err(|_| self.corrupt(name, "does not parse"))).transpose()
    }

    pub(crate) fn bool(&self, name: &str) -> Result<bool, StoreError> {
        match self.0.get(name) {
            Some(AttributeValue::Bool(b)) => Ok(*b),
            _ => Err(self.corrupt(name, "is missing or not a boolean")),
        }
    }

    pub(crate) fn timestamp(&self, name: &str) -> Result<OffsetDateTime, StoreError> {
        self.parsed(name, |v| OffsetDateTime::parse(v, &Rfc3339))
    }

    pub(crate) fn metadata(&self, name: &str) -> Result<Metadata, StoreError> {
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

    pub(crate) fn balances(&self) -> Result<Balances, StoreError> {
        Ok(Balances {
            debits_pending: self.num_or_zero("debits_pending")?,
            debits_posted: self.num("debits_posted")?,
            credits_pending: self.num_or_zero("credits_pending")?,
            credits_posted: self.num("credits_posted")?,
        })
    }

    pub(crate) fn amount(&self) -> Result<Amount, StoreError> {
        self.amount_named("amount")
    }

    pub(crate) fn amount_named(&self, name: &str) -> Result<Amount, StoreError> {
        Amount::new(self.num(name)?).map_err(|_| self.corrupt(name, "is out of range"))
    }

    pub(crate) fn reversals(&self) -> Result<Vec<Reversal>, StoreError> {
        let Some(value) = self.0.get("reversals") else { return Ok(Vec::new()) };
        let bad = || self.corrupt("reversals", "is not a list of reversals");
        let list = value.as_l().map_err(|_| bad())?;
        list.iter()
            .map(|link| {
                let link = Reader(link.as_m().map_err(|_| bad())?);
                Ok(Reversal {
                    id: link.parsed("id", |v| TransferId::parse(v)).map_err(|_| bad())?,
                    amount: link.amount().map_err(|_| bad())?,
                })
            })
            .collect()
    }

    pub(crate) fn limit(&self, name: &str) -> Result<Option<ledger::Limit>, StoreError> {
        let parse = |v: u64| ledger::Limit::new(v).map_err(|_| self.corrupt(name, "is out of range"));
        self.0.get(name).map(|_| self.num(name).and_then(parse)).transpose()
    }

    pub(crate) fn opt_amount(&self, name: &str) -> Result<Option<Amount>, StoreError> {
        self.0.get(name).map(|_| self.amount_named(name)).transpose()
    }
}

pub fn balance_from(item: &Item) -> Result<AccountBalance, StoreError> {
    let r = Reader(item);
    Ok(AccountBalance {
        id: r.parsed("id", |v| AccountId::parse(v))?,
        currency: r.parsed("currency", Currency::parse)?,
        allow_overdraft: r.bool("allow_overdraft")?,
        // Balance items written before accounts had a policy lack it: open, unbounded, revision 0.
        status: match r.0.get("status") {
            Some(_) => r.parsed("status", |v| ledger::AccountStatus::parse(v).ok_or(()))?,
            None => ledger::AccountStatus::Open,
        },
        bounds: ledger::Bounds {
            overdraft_limit: r.limit("overdraft_limit")?,
            max_balance: r.limit("max_balance")?,
        },
        revision: r.num_or_zero("revision")?,
        balances: r.balances()?,
        entry_count: r.num("entry_count")?,
        last_entry_at: r.0.get("last_entry_at").map(|_| r.timestamp("last_entry_at")).transpose()?,
        // Items written before hot accounts lack these: one shard, the main one.
        shards: match r.0.get("shards") {
            Some(_) => ShardCount::new(r.num("shards")?).map_err(|e| r.corrupt("shards", &e.to_string()))?,
            None => ShardCount::ONE,
        },
        shard_items: r.0.get("shard_items").map(|_| r.num("shard_items")).transpose()?.unwrap_or(1),
        shard: r.num_or_zero("shard")?,
        moved: r.num_or_zero("moved")?,
        head: r.hash("head")?,
    })
}

/// An account from its profile and balance items.
pub fn account_from(profile: &Item, balance: &Item) -> Result<Account, StoreError> {
    let r = Reader(profile);
    let state = balance_from(balance)?;
    Ok(Account {
        id: r.parsed("id", |v| AccountId::parse(v))?,
        currency: r.parsed("currency", Currency::parse)?,
        // The policy is the balance item's: what transfers obey, and what a change sets.
        allow_overdraft: state.allow_overdraft,
        metadata: r.metadata("metadata")?,
        created_at: r.timestamp("created_at")?,
        balances: state.balances,
        entry_count: state.entry_count,
        status: state.status,
        bounds: state.bounds,
        revision: state.revision,
        shards: state.shards,
        shard_items: state.shard_items,
    })
}

/// When the account of a profile item was opened.
pub fn created_at(profile: &Item) -> Result<OffsetDateTime, StoreError> {
    Reader(profile).timestamp("created_at")
}

pub fn transfer_from(item: &Item) -> Result<Transfer, StoreError> {
    let r = Reader(item);
    let movement = match r.opt_str("debit_account_id")? {
        None => None,
        Some(_) => Some(Movement {
            debit_account_id: r.parsed("debit_account_id", |v| AccountId::parse(v))?,
            credit_account_id: r.parsed("credit_account_id", |v| AccountId::parse(v))?,
            amount: r.amount()?,
            currency: r.parsed("currency", Currency::parse)?,
        }),
    };
    let own_movement = || movement.clone().ok_or_else(|| r.corrupt("debit_account_id", "is missing"));
    let kind = if let Some(pending_id) = r.id("post_pending_id", |v| TransferId::parse(v))? {
        TransferKind::PostPending { pending_id, amount: r.opt_amount("requested_amount")? }
    } else if let Some(pending_id) = r.id("void_pending_id", |v| TransferId::parse(v))? {
        TransferKind::VoidPending { pending_id }
    } else if let Some(reversed_id) = r.id("reverses_transfer_id", |v| TransferId::parse(v))? {
        TransferKind::Reversal { reversed_id, amount: r.opt_amount("requested_amount")? }
    } else if item.contains_key("pending") {
        let timeout = r.0.get("timeout_seconds").map(|_| r.num("timeout_seconds")).transpose()?;
        let timeout = timeout
            .map(Timeout::new)
            .transpose()
            .map_err(|_| r.corrupt("timeout_seconds", "is out of range"))?;
        TransferKind::Pending { movement: own_movement()?, timeout }
    } else {
        TransferKind::Immediate(own_movement()?)
    };
    let request = NewTransfer {
        id: r.parsed("id", |v| TransferId::parse(v))?,
        kind,
        metadata: r.metadata("metadata")?,
        linked: item.contains_key("linked"),
        effective_at: r.0.get("effective_at").map(|_| r.timestamp("effective_at")).transpose()?,
    };
    let resolved_by = || r.parsed("resolved_by", |v| TransferId::parse(v));
    let status = match r.str("status")? {
        "queued" => TransferStatus::Queued,
        "committed" => TransferStatus::Committed,
        "pending" => TransferStatus::Pending,
        "expired" => TransferStatus::Expired,
        "posted" => TransferStatus::Posted {
            resolved_by: resolved_by()?,
            posted_amount: r.amount_named("posted_amount")?,
        },
        "voided" => TransferStatus::Voided { resolved_by: resolved_by()? },
        "rejected" => {
            let subject = RuleSubject {
                account: r.id("reason_account_id", |v| AccountId::parse(v))?,
                pending: r.id("reason_pending_id", |v| TransferId::parse(v))?,
                reversed: r.id("reason_reversed_id", |v| TransferId::parse(v))?,
            };
            let reason = RuleViolation::from_code(r.str("reason")?, subject)
                .ok_or_else(|| r.corrupt("reason", "is not a known rule with its subject"))?;
            TransferStatus::Rejected { reason }
        }
        _ => return Err(r.corrupt("status", "is not a known status")),
    };
    let reversals = r.reversals()?;
    let revision = r.num_or_zero("revision")?;
    Ok(Transfer { request, movement, created_at: r.timestamp("created_at")?, status, reversals, revision })
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
        effect: match r.opt_str("effect")? {
            None | Some("posted") => Effect::Posted,
            Some("held") => Effect::Held,
            Some("posted_from_hold") => Effect::PostedFromHold { held: r.amount_named("held")? },
            Some("released") => Effect::Released,
            Some(_) => return Err(r.corrupt("effect", "is not a known effect")),
        },
        amount: r.amount()?,
        counterparty_account_id: r.parsed("counterparty_account_id", |v| AccountId::parse(v))?,
        balances_after: r.balances()?,
        created_at: r.timestamp("created_at")?,
        shard: 0,
        hash: r.hash("hash")?,
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
            bounds: ledger::Bounds {
                overdraft_limit: None,
                max_balance: Some(ledger::Limit::new(9).unwrap()),
            },
            effective_at: None,
            shards: ledger::ShardCount::ONE,
        }
        .open(datetime!(2026-11-28 10:00:00.123 UTC));
        account.status = ledger::AccountStatus::DebitsFrozen;
        account.revision = 3;
        account.balances = Balances {
            debits_posted: POSTED_LIMIT,
            credits_posted: 7,
            debits_pending: 3,
            credits_pending: 0,
        };
        account.entry_count = 42;
        let balance = balance_item(&tenant(), &account.balance_state());
        assert_eq!(balance["debits_posted"], n("99999999999999999999999999999999999999"));
        assert_eq!(account_from(&profile_item(&tenant(), &account), &balance).unwrap(), account);
    }

    #[test]
    fn every_kind_and_status_round_trips() {
        let at = datetime!(2026-11-28 10:00:00 UTC);
        let a = AccountId::parse("a").unwrap();
        let h = TransferId::parse("h").unwrap();
        let hold = ledger::fixtures::committed(ledger::fixtures::hold("h", "a", "b", 5, Some(60)), at);
        let movement = hold.movement.clone().unwrap();
        let transfers = [
            ledger::fixtures::transfer("t1", "a", "b", 5).rejected(
                RuleViolation::InsufficientFunds { account_id: a.clone() },
                None,
                at,
            ),
            ledger::fixtures::committed(ledger::fixtures::transfer("t2", "a", "b", 5), at),
            hold.clone(),
            Transfer {
                status: TransferStatus::Posted {
                    resolved_by: h.clone(),
                    posted_amount: Amount::new(3).unwrap(),
                },
                ..hold.clone()
            },
            Transfer { status: TransferStatus::Voided { resolved_by: h.clone() }, ..hold.clone() },
            Transfer { status: TransferStatus::Expired, ..hold },
            ledger::fixtures::post("p", "h", Some(3))
                .applied(Movement { amount: Amount::new(3).unwrap(), ..movement.clone() }, at),
            ledger::fixtures::post("p2", "h", None).rejected(
                RuleViolation::PendingNotFound { pending_id: h.clone() },
                None,
                at,
            ),
            ledger::fixtures::void("v", "h").rejected(
                RuleViolation::PendingAlreadyPosted { pending_id: h },
                Some(movement.clone()),
                at,
            ),
            Transfer {
                reversals: vec![
                    Reversal { id: TransferId::parse("r1").unwrap(), amount: Amount::new(2).unwrap() },
                    Reversal { id: TransferId::parse("r2").unwrap(), amount: Amount::new(1).unwrap() },
                ],
                ..ledger::fixtures::committed(ledger::fixtures::transfer("t3", "a", "b", 5), at)
            },
            ledger::fixtures::reversal("r1", "t3", Some(2)).applied(movement.clone(), at),
            ledger::fixtures::reversal("r3", "t3", None).rejected(
                RuleViolation::ExceedsReversibleAmount { reversed_id: TransferId::parse("t3").unwrap() },
                Some(movement),
                at,
            ),
        ];
        for transfer in transfers {
            assert_eq!(transfer_from(&transfer_item(&tenant(), &transfer)).unwrap(), transfer);
        }
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
