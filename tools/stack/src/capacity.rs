//! Item sizes by DynamoDB's rules, and the capacity each operation consumes, computed from them (the
//! emulator's consumed-capacity figures are stubs). `cargo stack capacity` prints the table.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use ledger::{
    Account, AccountBalance, AccountId, Amount, Balances, Currency, Direction, Effect, Entry, Metadata,
    Movement, NewAccount, NewTransfer, Reversal, TenantId, Timeout, Transfer, TransferId, TransferKind,
    metadata,
};
use time::OffsetDateTime;

use ledger::{Decision, Event};
use ledger_dynamodb::events;
use ledger_dynamodb::items::{self, Item};

/// Bytes of an item as DynamoDB bills it: for each attribute, its name plus its value.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        // Up to 38 significant digits, two per byte, plus one.
        AttributeValue::N(n) => n.trim_start_matches('-').trim_start_matches('0').len().div_ceil(2) + 1,
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        // Maps and lists: 3 bytes, plus 1 per element, plus the elements.
        AttributeValue::M(m) => 3 + m.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum::<usize>(),
        AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        _ => 0,
    }
}

/// Write units of one standard write of `bytes`: 1 per KB, rounded up.
pub fn wcu(bytes: usize) -> usize {
    bytes.div_ceil(1024).max(1)
}

/// Read units of one strongly consistent read of `bytes`: 1 per 4 KB, rounded up.
pub fn rcu(bytes: usize) -> usize {
    bytes.div_ceil(4096).max(1)
}

/// The item kinds, built as the store writes them, for a given id length and metadata size.
pub struct SampleItems {
    pub profile: usize,
    pub balance: usize,
    pub transfer: usize,
    pub entry: usize,
    /// A hold with a timeout, and its listing in its debit account's partition (the larger: it
    /// carries the sweeper's index keys; the credit account's is a little smaller).
    pub hold: usize,
    pub listing: usize,
    /// A transfer with one reversal listed.
    pub reversed: usize,
    /// The event a change writes in its own transaction: a transfer's, an account's.
    pub event: usize,
    pub account_event: usize,
    /// The search listings of a decided transfer (`ledger_dynamodb::search`): one per index.
    pub search_listings: Vec<usize>,
    /// The search listings of an account: one per metadata pair.
    pub account_listings: Vec<usize>,
}

pub fn sample_items(id_len: usize, metadata: &Metadata) -> SampleItems {
    let now = OffsetDateTime::UNIX_EPOCH;
    let id = |c: char| c.to_string().repeat(id_len);
    let tenant = TenantId::parse(id('t')).unwrap_or_else(|_| valid_sample());
    let (a, b) = (
        AccountId::parse(id('a')).unwrap_or_else(|_| valid_sample()),
        AccountId::parse(id('b')).unwrap_or_else(|_| valid_sample()),
    );
    // Totals of a busy account: 15-digit sums.
    let balances = Balances {
        debits_posted: 123_456_789_012_345,
        credits_posted: 223_456_789_012_345,
        debits_pending: 1_234_567_890,
        credits_pending: 0,
    };
    let mut account: Account = NewAccount {
        id: a.clone(),
        currency: Currency::parse("EUR").unwrap_or_else(|_| valid_sample()),
        allow_overdraft: false,
        metadata: metadata.clone(),
        // The largest bounds: both set, to the largest limit.
        bounds: ledger::Bounds {
            overdraft_limit: Some(ledger::Limit::new(Amount::MAX).unwrap_or_else(|_| valid_sample())),
            max_balance: Some(ledger::Limit::new(Amount::MAX).unwrap_or_else(|_| valid_sample())),
        },
        effective_at: None,
        shards: ledger::ShardCount::ONE,
    }
    .open(now);
    account.balances = balances;
    account.entry_count = 1_000_000;
    let amount = Amount::new(1_000_000).unwrap_or_else(|_| valid_sample());
    let movement = Movement {
        debit_account_id: a.clone(),
        credit_account_id: b.clone(),
        amount,
        currency: account.currency,
    };
    let transfer = NewTransfer {
        id: TransferId::parse(id('x')).unwrap_or_else(|_| valid_sample()),
        kind: TransferKind::Immediate(movement.clone()),
        metadata: metadata.clone(),
        linked: false,
        // The largest record: an imported one carries its instant too.
        effective_at: Some(now),
    };
    let timeout = Timeout::new(u64::from(Timeout::MAX_SECONDS)).ok();
    let hold = NewTransfer {
        kind: TransferKind::Pending { movement: movement.clone(), timeout },
        ..transfer.clone()
    }
    .applied(movement.clone(), now);
    let entry = Entry {
        account_id: a.clone(),
        sequence: 1_000_000,
        transfer_id: transfer.id.clone(),
        direction: Direction::Debit,
        effect: Effect::PostedFromHold { held: amount },
        amount,
        counterparty_account_id: b,
        balances_after: balances,
        created_at: now,
        shard: 0,
        // Any hash is as long.
        hash: ledger::chain::Hash256::GENESIS,
    };
    let committed = Decision::Commit {
        transfer: transfer.clone().applied(movement.clone(), now),
        debit: Box::new(entry.clone()),
        credit: Box::new(entry.clone()),
        amends: None,
    };
    // Its correlation id as long as a generated one (a UUID).
    let event_item = |event: Option<Event>| {
        event
            .and_then(|e| events::event_item(&tenant, &e, Some(&"c".repeat(36))).ok())
            .map_or(0, |i| item_size(&i))
    };
    SampleItems {
        profile: item_size(&items::profile_item(&tenant, &account)),
        balance: item_size(&items::balance_item(
            &tenant,
            &AccountBalance { last_entry_at: Some(now), ..account.balance_state() },
        )),
        transfer: item_size(&items::transfer_item(&tenant, &transfer.clone().applied(movement.clone(), now))),
        entry: item_size(&items::entry_item(&tenant, &entry)),
        hold: item_size(&items::transfer_item(&tenant, &hold)),
        listing: ledger_dynamodb::expiry::listings(&tenant, &hold).iter().map(item_size).max().unwrap_or(0),
        reversed: item_size(&items::transfer_item(
            &tenant,
            &Transfer {
                reversals: vec![Reversal { id: transfer.id.clone(), amount }],
                ..transfer.clone().applied(movement.clone(), now)
            },
        )),
        event: event_item(Event::of_decision(&tenant, &committed)),
        search_listings: ledger_dynamodb::search::listings(
            &tenant,
            &transfer.clone().applied(movement.clone(), now),
            None,
        )
        .iter()
        .map(item_size)
        .collect(),
        account_listings: ledger_dynamodb::search::account_listings(&tenant, &account)
            .iter()
            .map(item_size)
            .collect(),
        account_event: event_item(Some(Event::account_opened(&tenant, &account))),
    }
}

fn valid_sample<T>() -> T {
    // Only fixed, valid sample values are parsed above.
    panic!("sample values are valid")
}

/// The largest metadata the domain accepts.
pub fn largest_metadata() -> Metadata {
    let map: BTreeMap<String, String> = (0..metadata::MAX_KEYS)
        .map(|i| {
            (format!("{i:0>width$}", width = metadata::MAX_KEY_CHARS), "v".repeat(metadata::MAX_VALUE_CHARS))
        })
        .collect();
    Metadata::parse(map).unwrap_or_default()
}

/// One operation's DynamoDB calls and the capacity units they consume.
pub struct Operation {
    pub name: &'static str,
    pub calls: String,
    pub rcu: f64,
    pub wcu: usize,
}

/// The bytes a claim adds to a transfer item: its `owner` (the submission and position).
const OWNER_BYTES: usize = 32;

/// Names of the operations `cargo stack cost` prices.
pub const COMMITTED: &str = "POST /v1/transfers (committed)";
pub const CLAIMED: &str = "POST /v1/transfers + respond-async (claim)";
pub const QUEUED_COMMITTED: &str = "worker, per queued transfer committed (accounts of its own)";
pub const BATCH_CLAIMED: &str = "POST /v1/transfer-batches (100 transfers)";
pub const ACCOUNT_CREATED: &str = "POST /v1/accounts (new)";
pub const ACCOUNT_READ: &str = "GET /v1/accounts/{id}";
pub const ACCOUNT_NOT_MODIFIED: &str = "GET /v1/accounts/{id} (If-None-Match, unchanged: 304)";
pub const TRANSFER_READ: &str = "GET /v1/transfers/{id}";
pub const STATEMENT_PAGE: &str = "GET /v1/accounts/{id}/statement (25 a page)";
pub const SEARCH_PAGE: &str = "GET /v1/transfers?account=… (25 candidates a page)";

/// One row per operation, for the given item sizes.
/// The shards of the hot account the table prices (`ledger::shard`).
const HOT: usize = 16;

pub fn operations(s: &SampleItems) -> Vec<Operation> {
    let tx = |bytes: usize| 2 * wcu(bytes); // transactional writes cost double (prepare + commit)
    let account = s.profile + s.balance;
    // A missing item still costs a read unit; BatchGetItem bills each item on its own.
    let transfer_read = 2 * rcu(s.balance) + rcu(s.transfer);
    let claim = s.transfer + OWNER_BYTES;
    // Every change writes its event in its own transaction, and the event index (`gsi1`,
    // projection ALL) copies it: a standard write.
    let event = tx(s.event) + wcu(s.event);
    // A refusal stands only at the versions its accounts were read at: a ConditionCheck each,
    // billed as a transactional write of the item checked.
    let checks = |n: usize| n * tx(s.balance);
    let moved = tx(s.transfer) + 2 * tx(s.balance) + 2 * tx(s.entry) + event;
    // A hold with a timeout is listed in its two accounts' partitions, the debit's also in the
    // index (a standard write); its expiry deletes all three.
    let hold_listings = 2 * tx(s.listing) + wcu(s.listing);
    // A consistent Query of an account's hold listings due (a few small items).
    let overdue_query = 1.0;
    // A decided transfer's search listings, standard writes (one BatchWriteItem) before its
    // transaction: its tenant's, its two accounts', one per metadata pair.
    let listed: usize = s.search_listings.iter().map(|&b| wcu(b)).sum();
    let listing_size = s.search_listings.iter().copied().max().unwrap_or_default();
    vec![
        (
            ACCOUNT_CREATED,
            "BatchWriteItem (its search listings, one per metadata pair, if any) + 1 UpdateItem (the \
             tenant directory) + 1 TransactWriteItems (2 conditional puts + its event)",
            0.0,
            // + the index copies of the profile and the event (projection ALL), standard writes;
            // the directory item is a few dozen bytes.
            tx(s.profile) + tx(s.balance) + wcu(s.profile) + tx(s.account_event) + wcu(s.account_event)
                + s.account_listings.iter().map(|&b| wcu(b)).sum::<usize>()
                + 1,
        ),
        (
            "POST /v1/accounts (replay)",
            "1 UpdateItem (the tenant directory) + 1 TransactWriteItems (cancelled) + 1 Query",
            rcu(account) as f64,
            tx(s.profile) + tx(s.balance) + tx(s.account_event) + 1,
        ),
        (
            COMMITTED,
            "1 BatchGetItem (3 keys, consistent) + BatchWriteItem (its search listings, 25 a call) + 1 \
             TransactWriteItems (6 items: transfer, 2 entries, 2 balances, event)",
            transfer_read as f64,
            moved + listed,
        ),
        (
            "POST /v1/transfers (committed, both balances cached)",
            "BatchWriteItem (its search listings, 25 a call) + 1 TransactWriteItems (6 items)",
            0.0,
            moved + listed,
        ),
        (
            "POST /v1/transfers (rejected)",
            "1 BatchGetItem (3 keys) + BatchWriteItem (its search listings, 25 a call) + 1 TransactWriteItems \
             (the rejection, its event, 2 balances checked)",
            transfer_read as f64,
            tx(s.transfer) + event + checks(2) + listed,
        ),
        ("POST /v1/transfers (replay)", "1 BatchGetItem (3 keys)", transfer_read as f64, 0),
        (
            "POST /v1/transfers (replay, both balances cached)",
            "BatchWriteItem (its search listings, rewritten) + 1 TransactWriteItems (cancelled on the id) + \
             1 BatchGetItem (3 keys)",
            transfer_read as f64,
            moved - wcu(s.event) + listed,
        ),
        (
            "POST /v1/transfers (hold with timeout)",
            "1 BatchGetItem (3 keys) + BatchWriteItem (its search listings, 25 a call) + 1 TransactWriteItems (8 \
             items: + a listing in each account's partition, the debit's also in the index)",
            transfer_read as f64,
            tx(s.hold) + hold_listings + 2 * tx(s.balance) + 2 * tx(s.entry) + event + listed,
        ),
        (
            "POST /v1/transfers (post or void of a hold)",
            "2 BatchGetItem (the ids, then the hold's 2 balances) + BatchWriteItem (its search listings, 25 a call) \
             + 1 TransactWriteItems (7 items: + hold update; its listings stay until found due)",
            (2 * rcu(s.balance) + rcu(s.transfer) + rcu(s.hold)) as f64,
            moved + tx(s.hold) + listed,
        ),
        (
            "POST /v1/transfers (partial or full reversal)",
            "2 BatchGetItem (the ids, then the reversed transfer's 2 balances) + BatchWriteItem (its \
             search listings, 25 a call) + 1 TransactWriteItems (7 items: + the reversed transfer's update)",
            (2 * rcu(s.balance) + 2 * rcu(s.transfer)) as f64,
            moved + tx(s.reversed) + listed,
        ),
        (
            "POST /v1/linked-transfers (payment + fee, 3 accounts, committed)",
            "1 BatchGetItem (5 keys) + BatchWriteItem (their search listings, 25 a call) + 1 TransactWriteItems (11 \
             items: 2 transfers, 4 entries, 3 balances, 2 events)",
            (3 * rcu(s.balance) + 2 * rcu(s.transfer)) as f64,
            2 * tx(s.transfer) + 4 * tx(s.entry) + 3 * tx(s.balance) + 2 * event + 2 * listed,
        ),
        (
            "POST /v1/linked-transfers (payment + fee, refused)",
            "1 BatchGetItem (5 keys) + BatchWriteItem (their search listings, 25 a call) + 1 TransactWriteItems (2 \
             rejections, 2 events, 3 balances checked)",
            (3 * rcu(s.balance) + 2 * rcu(s.transfer)) as f64,
            2 * tx(s.transfer) + 2 * event + checks(3) + 2 * listed,
        ),
        (
            "expiry of a hold (sweeper, a read or a refusal first; each)",
            "1 GetItem + 1 BatchGetItem (2 balances) + 1 TransactWriteItems (8 items: + its event, its 2 \
             listings deleted), + its share of the sweeper's 40 Queries a minute",
            (rcu(s.hold) + 2 * rcu(s.balance)) as f64,
            tx(s.hold) + hold_listings + 2 * tx(s.balance) + 2 * tx(s.entry) + event,
        ),
        (
            "listings of a posted or voided hold, found due (sweeper, each)",
            "1 GetItem + 2 DeleteItem (+ the index copy)",
            rcu(s.hold) as f64,
            2 * wcu(s.listing) + wcu(s.listing),
        ),
        (
            "a refusal counting pending amounts (insufficient_funds, max_balance_exceeded), account with holds",
            "+ 1 Query (consistent) of the account's hold listings due: none due, the refusal stands",
            overdue_query,
            0,
        ),
        (
            "POST /v1/transfers?dry_run=true (or a linked chain's, a batch's: per transfer)",
            "1 BatchGetItem (3 keys, consistent); nothing written",
            transfer_read as f64,
            0,
        ),
        (
            "POST /v1/accounts/{id}/freeze, /unfreeze, /close, or PATCH of its bounds",
            "1 Query (consistent, 2 items) + 1 TransactWriteItems (the balance item's policy, conditioned on \
             its version; the event)",
            rcu(account) as f64,
            tx(s.balance) + tx(s.account_event) + wcu(s.account_event),
        ),
        (
            "PATCH /v1/accounts/{id} (metadata)",
            "1 Query (consistent, 2 items) + BatchWriteItem (a listing per metadata pair) + 1 \
             TransactWriteItems (balance item, profile, event)",
            rcu(account) as f64,
            tx(s.balance) + tx(s.profile) + wcu(s.profile) + tx(s.account_event) + wcu(s.account_event)
                + s.account_listings.iter().map(|&b| wcu(b)).sum::<usize>(),
        ),
        (
            "PATCH /v1/transfers/{id} (metadata)",
            "1 GetItem (consistent) + BatchWriteItem (its search listings, 25 a call) + 1 TransactWriteItems \
             (the record, conditioned on what was read; its event)",
            rcu(s.transfer) as f64,
            tx(s.transfer) + event + listed,
        ),
        (ACCOUNT_READ, "1 Query (consistent, 2 items)", rcu(account) as f64, 0),
        (
            "GET /v1/accounts/{id} (holds pending)",
            "1 Query (consistent, 2 items) + 1 Query (consistent) of its hold listings due",
            rcu(account) as f64 + overdue_query,
            0,
        ),
        (
            ACCOUNT_NOT_MODIFIED,
            "1 GetItem (consistent, the balance item; billed whole)",
            rcu(s.balance) as f64,
            0,
        ),
        (TRANSFER_READ, "1 GetItem (consistent)", rcu(s.transfer) as f64, 0),
        (
            "GET /v1/accounts (25)",
            "1 Query of gsi1 (eventual, 26 items) + 1 TransactGetItems (25 balance items)",
            // Transactional reads cost double, like transactional writes.
            (26 * s.profile).div_ceil(4096) as f64 / 2.0 + 25.0 * 2.0 * rcu(s.balance) as f64,
            0,
        ),
        (
            "GET /v1/accounts/{id}/balance?at=T",
            "1 Query (consistent, descending, limit 2) + 1 GetItem (its shard count, consistent, at once)",
            (rcu(2 * s.entry) + rcu(s.balance)) as f64,
            0,
        ),
        (
            STATEMENT_PAGE,
            "1 GetItem (its shard count, consistent) + 2 Queries at once (consistent: the opening balance, \
             limit 2; the page, limit 26)",
            (rcu(s.balance) + rcu(2 * s.entry) + (26 * s.entry).div_ceil(4096)) as f64,
            0,
        ),
        (
            "GET /v1/accounts/{id}/entries (25)",
            "1 Query (consistent, 26 items) + 1 GetItem (its shard count, consistent, at once)",
            ((26 * s.entry).div_ceil(4096) + rcu(s.balance)) as f64,
            0,
        ),
        // A hot account (`ledger::shard`), of `HOT` shards.
        (
            "POST /v1/transfers (into or out of a hot account, committed)",
            "as any committed transfer: 1 BatchGetItem (3 keys, one the shard this container writes) + \
             BatchWriteItem (its search listings) + 1 TransactWriteItems (6 items: the shard's balance)",
            transfer_read as f64,
            moved + listed,
        ),
        (
            "gather (a bounded hot account's shard short of funds, 16 shards)",
            "1 BatchGetItem (its 16 shards, consistent) + 1 TransactWriteItems (the shards moved: \
             typically 2)",
            (HOT * rcu(s.balance)) as f64,
            2 * tx(s.balance),
        ),
        (
            "POST /v1/transfers (refused: a bounded hot account of 16 shards short in whole)",
            "1 BatchGetItem (3 keys) + 1 BatchGetItem (its 16 shards) + BatchWriteItem (its search \
             listings) + 1 TransactWriteItems (the rejection, its event, 2 balances and 15 shards checked)",
            (transfer_read + HOT * rcu(s.balance)) as f64,
            tx(s.transfer) + event + checks(2 + HOT - 1) + listed,
        ),
        (
            "GET /v1/accounts/{id} (hot, 16 shards)",
            "1 Query (consistent, 2 items) + 1 TransactGetItems (its 16 shards)",
            (rcu(account) + 2 * HOT * rcu(s.balance)) as f64,
            0,
        ),
        (
            "GET /v1/accounts/{id}/entries (25, hot, 16 shards)",
            "1 GetItem (its shard count) + 1 Query (the main shard's, unused) + 16 Queries at once \
             (consistent, up to 28 items each)",
            (rcu(s.balance) + (26 * s.entry).div_ceil(4096) + HOT * (28 * s.entry).div_ceil(4096)) as f64,
            0,
        ),
        (
            "PATCH /v1/accounts/{id} (freeze or bounds of a hot account, 16 shards)",
            "1 Query (consistent, 2 items) + 1 TransactGetItems (its 16 shards) + 1 TransactWriteItems \
             (16 balance items' policy, each conditioned on its version; the event)",
            (rcu(account) + 2 * HOT * rcu(s.balance)) as f64,
            HOT * tx(s.balance) + tx(s.account_event) + wcu(s.account_event),
        ),
        (
            SEARCH_PAGE,
            "8 Queries at once (consistent, the index's shards, up to 26 listings each) + 1 BatchGetItem \
             (the 25 candidates, consistent)",
            (8 * (26 * listing_size).div_ceil(4096) + 25 * rcu(s.transfer)) as f64,
            0,
        ),
        (
            "GET /v1/transfers?batch=… (25 a page)",
            "1 GetItem (the batch's ids, consistent) + 1 BatchGetItem (the page's 25 transfers, consistent)",
            // A batch of 1,000 ids: about 17 KB.
            ((1000 * 17usize).div_ceil(4096) + 25 * rcu(s.transfer)) as f64,
            0,
        ),
        (
            CLAIMED,
            "1 PutItem (the claim: the transfer item queued, with its owner) + 1 SendMessage",
            0.0,
            wcu(claim),
        ),
        (
            BATCH_CLAIMED,
            "1 PutItem (record) + 1 BatchGetItem (the 100 ids, consistent) + 100 PutItem (claims, \
             conditional) + 1 TransactWriteItems (ids, and a check of the record) + 1 SendMessage + 1 \
             BatchGetItem (status)",
            // Each id read costs a unit, found or not; the answer reads the record and progress.
            100.0 * rcu(s.transfer) as f64 + 2.0,
            // The record weighs about a transfer item, the ids item 17 B an id.
            wcu(s.transfer) + 100 * wcu(claim) + tx(100 * 17) + tx(s.transfer),
        ),
        (
            QUEUED_COMMITTED,
            "its share of the worker's BatchGetItems (claim, 2 balances), BatchWriteItems (its search \
             listings) and TransactWriteItems (transfer, 2 entries, 2 balances, event)",
            (rcu(claim) + 2 * rcu(s.balance)) as f64,
            moved + listed,
        ),
    ]
    .into_iter()
    .map(|(name, calls, rcu, units)| {
        // Every API request spends its tenant's request bucket first (`ledger_http::limit`).
        match limit_spends(name) {
            0 => Operation { name, calls: calls.to_owned(), rcu, wcu: units },
            n => Operation {
                name,
                calls: format!("{n} UpdateItem (the tenant's request bucket) + {calls}"),
                rcu,
                wcu: units + n * wcu(LIMIT_ITEM_BYTES),
            },
        }
    })
    .collect()
}

/// A tenant's request bucket: its key and one number.
const LIMIT_ITEM_BYTES: usize = 40;

/// The limit writes an operation makes: one per API request (a batch or a chain spends all its
/// transfers in one), none for the worker's and the sweeper's work.
pub fn limit_spends(operation: &str) -> usize {
    match operation.split_once(' ') {
        Some(("POST" | "GET" | "PATCH", _)) => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_dynamodb_rules() {
        assert_eq!(value_size(&AttributeValue::N("0".into())), 1);
        assert_eq!(value_size(&AttributeValue::N("123456".into())), 4);
        assert_eq!(value_size(&AttributeValue::S("héllo".into())), 6);
        let m = AttributeValue::M([("k".to_string(), AttributeValue::S("vv".into()))].into());
        assert_eq!(value_size(&m), 3 + 1 + 1 + 2);
        assert_eq!((wcu(1), wcu(1024), wcu(1025), rcu(4096), rcu(4097)), (1, 1, 2, 1, 2));
    }

    #[test]
    fn typical_items_fit_one_write_unit() {
        let s = sample_items(16, &Metadata::default());
        for size in [s.profile, s.balance, s.transfer, s.entry, s.hold, s.listing, s.event, s.account_event] {
            assert!(size < 1024, "{size}");
        }
        let committed = operations(&s).into_iter().find(|o| o.name == COMMITTED).unwrap();
        // 10 for the transfer's five items, 3 for its event and the event's index copy, 3 for its
        // search listings (its tenant's and its two accounts'), 1 for the request bucket.
        assert_eq!(s.search_listings.len(), 3);
        assert_eq!((committed.rcu, committed.wcu), (3.0, 17));
        assert_eq!(limit_spends(BATCH_CLAIMED), 1);
        assert_eq!(limit_spends("GET /v1/transfer-batches/{id}"), 1);
        assert_eq!(limit_spends(QUEUED_COMMITTED), 0);
    }

    #[test]
    fn the_largest_metadata_still_fits_an_item() {
        let s = sample_items(64, &largest_metadata());
        assert!(s.profile < 400 * 1024 && s.transfer < 400 * 1024, "{} {}", s.profile, s.transfer);
        // Metadata never weighs on the balance item a transfer rewrites.
        assert!(s.balance < 1024, "{}", s.balance);
    }
}
