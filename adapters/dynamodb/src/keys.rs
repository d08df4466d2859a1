//! The table's key design. One table; every key starts with the tenant, so no request built from
//! these keys can reach another tenant's items. Ids never contain '#' (see `ledger::ids`), so the
//! '#'-joined keys are unambiguous.
//!
//! | item            | pk                        | sk                 | gsi1pk         | gsi1sk      |
//! |-----------------|---------------------------|--------------------|----------------|-------------|
//! | account profile | `T#{tenant}#A#{account}`  | `A`                | `T#{tenant}#A` | `{account}` |
//! | account balance | `T#{tenant}#A#{account}`  | `B`                | -              | -           |
//! | entry           | `T#{tenant}#A#{account}`  | `E#{at:020}#{sequence:020}` | -     | -           |
//! | hot account's shard k ≥ 1: balance | `T#{tenant}#A#{account}#{k}` | `B` | -     | -           |
//! | hot account's shard k ≥ 1: entry | `T#{tenant}#A#{account}#{k}` | `E#{at:020}#{sequence:020}` | - | - |
//! | hold listing, debit | `T#{tenant}#A#{debit}` | `H#{at:012}#{transfer}` | `H#{hour}#{shard}` | `{at:012}#{tenant}#{transfer}` |
//! | hold listing, credit | `T#{tenant}#A#{credit}` | `H#{at:012}#{transfer}` | -      | -           |
//! | transfer        | `T#{tenant}#X#{transfer}` | `X`                | -              | -           |
//! | batch           | `T#{tenant}#Q#{batch}`    | `Q`                | -              | -           |
//! | batch progress  | `T#{tenant}#Q#{batch}`    | `C`                | -              | -           |
//! | batch ids       | `T#{tenant}#Q#{batch}`    | `I`                | -              | -           |
//! | request limit   | `T#{tenant}#L`            | `L`                | -              | -           |
//! | webhook endpoint | `T#{tenant}#W#{endpoint}` | `W`               | `T#{tenant}#W` | `{endpoint}` |
//! | endpoint count  | `T#{tenant}#W`            | `N`                | -              | -           |
//! | webhook delivery | `T#{tenant}#W#{endpoint}` | `D#{at:020}#{event}` | -           | -           |
//! | delivery lease  | `T#{tenant}#W#{endpoint}` | `L#{at:020}#{event}` | -            | -           |
//! | event           | `T#{tenant}#V#{event}`    | `V`                | `T#{tenant}#V#{shard}` | `{at:020}#{event}` |
//! | expiry listing, before hold listings | `S#{hour}#{shard}` | `{at:012}#{tenant}#{transfer}` | - | - |
//! | sweep cursor    | `S#sweep`                 | `S`                | -              | -           |
//!
//! A hold with a timeout is listed by its expiry in each of its two accounts' partitions, after
//! the entries: a strongly consistent Query finds the holds of an account past their time (what
//! a read or a refusal releases first). The debit account's listing is also in the index by hour
//! and shard: the one tenant-less partition family, where the sweeper lists the holds due in an
//! hour across tenants. It is sharded (`EXPIRY_SHARDS`): a tenant's holds fall in the
//! `EXPIRY_SHARDS_PER_TENANT` shards of its group (a hash of the tenant), spread by a hash of the
//! transfer, so one tenant takes 4 × 1,000 writes a second, and a sweep that takes a share of each
//! shard in turn lets a tenant with masses of holds due delay only the tenants of its group.
//! Listings from before hold listings (`S#…`, a hash of tenant and transfer over 8 shards) are
//! still swept.
//!
//! A queued transfer is its transfer item with status `queued` and an `owner` (`ledger::Owner`); the
//! worker settles it in place. A batch's progress item holds its cursor (how many of its transfers,
//! in order, are settled) and its counters; its ids item, written once every id is claimed, is
//! what makes the batch accepted.
//!
//! An event is written in the transaction of the change it tells of; the stream of the table
//! carries it to the publisher (its sort key `V` is what the stream's filter selects). It is
//! listed, newest first, by the index, whose partition per tenant is sharded
//! (`EVENT_SHARDS`) so that one busy tenant's events do not make one index partition hot; a list
//! merges the shards.
//!
//! A hot account (`ledger::shard`) keeps its balance in shards: shard 0 is its own balance item,
//! and each other shard a balance item with its own entries in a partition of its own. Its
//! profile, hold listings and holds stay in its own partition.
//!
//! The balance item is apart from the profile so that a transfer rewrites only small items, never
//! the metadata nor the index copy of the profile.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use ledger::port::{DeliveryPosition, EntryPosition, EventPosition};
use ledger::{AccountId, BatchId, EndpointId, EventId, TenantId, TransferId};

/// The key of the item at (`pk`, `sk`).
pub fn key(pk: String, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([(PK.to_owned(), AttributeValue::S(pk)), (SK.to_owned(), AttributeValue::S(sk.to_owned()))])
}

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";

pub const ACCOUNT_SK: &str = "A";
pub const BALANCE_SK: &str = "B";
pub const TRANSFER_SK: &str = "X";
pub const ENTRY_SK_PREFIX: &str = "E#";

pub fn account_pk(tenant: &TenantId, account: &AccountId) -> String {
    format!("T#{tenant}#A#{account}")
}

/// The partition of shard `shard` of a hot account (`ledger::shard`): shard 0 is the account's
/// own partition; each other one is a partition of its own, with its balance item and entries, so
/// that no partition of a hot account takes all its writes.
pub fn shard_pk(tenant: &TenantId, account: &AccountId, shard: u16) -> String {
    match shard {
        0 => account_pk(tenant, account),
        _ => format!("T#{tenant}#A#{account}#{shard}"),
    }
}

/// The keys of the balance items of an account's `count` shards (at least its own).
pub fn shard_keys(
    tenant: &TenantId,
    account: &AccountId,
    count: u16,
) -> Vec<HashMap<String, AttributeValue>> {
    (0..count.max(1)).map(|shard| key(shard_pk(tenant, account, shard), BALANCE_SK)).collect()
}

/// The partition of the accounts index that lists one tenant's accounts.
pub fn accounts_index_pk(tenant: &TenantId) -> String {
    format!("T#{tenant}#A")
}

/// Above every entry's sort key, below every hold listing's.
pub const ENTRIES_END: &str = "E$";
pub const HELD_SK_PREFIX: &str = "H#";

/// Where a hold is listed in its accounts' partitions: by its expiry, then id.
pub fn held_sk(at: i64, transfer: &TransferId) -> String {
    format!("{}#{transfer}", held_sk_bound(at))
}

/// Every hold listing at `at` sorts at or after it, before `at + 1`'s.
pub fn held_sk_bound(at: i64) -> String {
    format!("{HELD_SK_PREFIX}{at:012}")
}

/// Zero-padded so that the lexical order of sort keys is the order of instants, then sequences.
pub fn entry_sk(position: EntryPosition) -> String {
    format!("{ENTRY_SK_PREFIX}{:020}#{:020}", position.at_nanos.max(0), position.sequence)
}

/// A sort key above every entry that took effect at or before `at`, and below every later one.
pub fn entries_until(at: time::OffsetDateTime) -> String {
    format!("{ENTRY_SK_PREFIX}{:020}#~", at.unix_timestamp_nanos().max(0))
}

/// The sort key just above `position`'s entry.
pub fn entries_after(position: EntryPosition) -> String {
    format!("{}~", entry_sk(position))
}

pub const BATCH_SK: &str = "Q";
pub const BATCH_PROGRESS_SK: &str = "C";
pub const BATCH_IDS_SK: &str = "I";
/// The attribute of a queued transfer naming the submission that claimed its id.
pub const OWNER: &str = "owner";

pub fn batch_pk(tenant: &TenantId, batch: &BatchId) -> String {
    format!("T#{tenant}#Q#{batch}")
}

/// The prefix of the per-reason rejection counters on a batch's progress item.
pub const REJECTED_PREFIX: &str = "r_";

pub fn transfer_pk(tenant: &TenantId, transfer: &TransferId) -> String {
    format!("T#{tenant}#X#{transfer}")
}

pub const LIMIT_SK: &str = "L";

/// The item holding a tenant's request bucket (`ledger::rate`).
pub fn limit_pk(tenant: &TenantId) -> String {
    format!("T#{tenant}#L")
}

pub const EVENT_SK: &str = "V";
/// Index partitions per tenant of the events list: 4 × 1,000 writes/s, above the most one tenant
/// may submit (`ledger::rate::MAX_PER_SECOND`).
pub const EVENT_SHARDS: u32 = 4;

pub fn event_pk(tenant: &TenantId, event: &EventId) -> String {
    format!("T#{tenant}#V#{event}")
}

/// The index partition that lists `event` among its tenant's events.
pub fn events_index_pk(tenant: &TenantId, shard: u32) -> String {
    format!("T#{tenant}#V#{shard}")
}

/// Sorted by instant (nanoseconds since the epoch), then id.
pub fn events_index_sk(at_nanos: i128, event: &EventId) -> String {
    format!("{:020}#{event}", at_nanos.max(0))
}

/// The index sort key of the event at `position`.
pub fn event_position_sk(position: &EventPosition) -> String {
    events_index_sk(position.at_nanos, &position.id)
}

/// The position an index sort key of an event names, if it names one.
pub fn event_position(sk: &str) -> Option<EventPosition> {
    let (at, id) = sk.split_once('#')?;
    Some(EventPosition { at_nanos: at.parse().ok()?, id: EventId::parse(id).ok()? })
}

/// A sort key below every event listed at or after `at_nanos`.
pub fn events_index_bound(at_nanos: i128) -> String {
    format!("{:020}", at_nanos.max(0))
}

pub fn event_shard(event: &EventId) -> u32 {
    fnv1a(event.to_string().bytes()) % EVENT_SHARDS
}

pub const ENDPOINT_SK: &str = "W";
/// The tenant's count of endpoints, under [`endpoints_index_pk`]: what caps them.
pub const ENDPOINT_COUNT_SK: &str = "N";
pub const DELIVERY_PREFIX: &str = "D#";
/// A delivery's lease: the one copy of its message attempting it now.
pub const LEASE_PREFIX: &str = "L#";

pub fn endpoint_pk(tenant: &TenantId, endpoint: &EndpointId) -> String {
    format!("T#{tenant}#W#{endpoint}")
}

/// The index partition listing a tenant's endpoints.
pub fn endpoints_index_pk(tenant: &TenantId) -> String {
    format!("T#{tenant}#W")
}

/// Where an event's delivery sits in its endpoint's partition: by the event's instant, then id.
pub fn delivery_sk(position: &DeliveryPosition) -> String {
    endpoint_event_sk(DELIVERY_PREFIX, position)
}

/// The position a delivery's sort key names, if it names one.
pub fn delivery_position(sk: &str) -> Option<DeliveryPosition> {
    let (at, id) = sk.strip_prefix(DELIVERY_PREFIX)?.split_once('#')?;
    Some(DeliveryPosition { at_nanos: at.parse().ok()?, event: EventId::parse(id).ok()? })
}

/// Where the lease of an event's delivery sits in its endpoint's partition.
pub fn lease_sk(position: &DeliveryPosition) -> String {
    endpoint_event_sk(LEASE_PREFIX, position)
}

/// An item of the endpoint's partition about one event, in the event's order.
fn endpoint_event_sk(prefix: &str, position: &DeliveryPosition) -> String {
    format!("{prefix}{:020}#{}", position.at_nanos.max(0), position.event)
}

/// Index partitions per hour of the holds' expiries: 32 × 1,000 writes/s before one runs hot.
pub const EXPIRY_SHARDS: u32 = 32;
/// The shards of one tenant (a group of tenants): 4 × 1,000 writes/s.
pub const EXPIRY_SHARDS_PER_TENANT: u32 = 4;
/// Partitions per hour of the expiry listing from before hold listings.
pub const LEGACY_EXPIRY_SHARDS: u32 = 8;
pub const SWEEP_PK: &str = "S#sweep";
pub const SWEEP_SK: &str = "S";

/// The index partition of holds expiring in the hour that contains unix second `at`.
pub fn expiry_index_pk(at: i64, shard: u32) -> String {
    format!("H#{}#{shard}", at.div_euclid(3600))
}

/// The partition of the listing from before hold listings, for the hour that contains `at`.
pub fn legacy_expiry_pk(at: i64, shard: u32) -> String {
    format!("S#{}#{shard}", at.div_euclid(3600))
}

/// Sorted by instant, so a range of the sort key lists the holds due between two instants.
pub fn expiry_sk(at: i64, tenant: &TenantId, transfer: &TransferId) -> String {
    format!("{}#{tenant}#{transfer}", expiry_sk_bound(at))
}

/// The sort key prefix of instant `at`: every listing at `at` sorts at or after it, before `at + 1`'s.
pub fn expiry_sk_bound(at: i64) -> String {
    format!("{at:012}")
}

/// The index shard of a hold: one of its tenant's group (FNV-1a of the tenant), by FNV-1a of its
/// id; stable across processes and releases.
pub fn expiry_shard(tenant: &TenantId, transfer: &TransferId) -> u32 {
    let groups = EXPIRY_SHARDS / EXPIRY_SHARDS_PER_TENANT;
    let group = fnv1a(tenant.as_str().bytes()) % groups;
    group * EXPIRY_SHARDS_PER_TENANT + fnv1a(transfer.as_str().bytes()) % EXPIRY_SHARDS_PER_TENANT
}

/// The shard of a listing from before hold listings: FNV-1a of tenant and id.
pub fn legacy_expiry_shard(tenant: &TenantId, transfer: &TransferId) -> u32 {
    fnv1a(tenant.as_str().bytes().chain([b'#']).chain(transfer.as_str().bytes())) % LEGACY_EXPIRY_SHARDS
}

/// Each search index (`ledger::SearchIndex`) is spread over this many partitions, so a tenant, an
/// account or a metadata value that every transfer names takes 8 x 1,000 writes a second.
pub const SEARCH_SHARDS: u32 = 8;

/// An account's reconciliations with bank statements, each under its statement's digest.
pub fn reconciliation_pk(tenant: &TenantId, account: &AccountId) -> String {
    format!("T#{tenant}#R#{account}")
}

/// The tenant directory (`books`): each tenant that opened an account, under one of 8 partitions
/// by FNV-1a of its id, sort key its id.
pub const TENANT_SHARDS: u32 = 8;

pub fn tenants_pk(shard: u32) -> String {
    format!("D#{shard}")
}

pub fn tenant_shard(tenant: &TenantId) -> u32 {
    fnv1a(tenant.as_str().bytes()) % TENANT_SHARDS
}

/// The partition of one shard of a search index (`None`: the tenant's own index). A metadata
/// pair is named by a digest, so any key and value fit the key and no `#` can enter it.
pub fn search_pk(tenant: &TenantId, index: &ledger::SearchIndex<'_>, shard: u32) -> String {
    use ledger::SearchIndex;
    match index {
        SearchIndex::Tenant | SearchIndex::Batch(_) => format!("T#{tenant}#F#T#{shard}"),
        SearchIndex::Account(account) => format!("T#{tenant}#F#A#{account}#{shard}"),
        SearchIndex::Chain(first) => format!("T#{tenant}#F#C#{first}#{shard}"),
        SearchIndex::Metadata(key, value) => {
            format!("T#{tenant}#F#M#{}#{shard}", metadata_digest(key, value))
        }
    }
}

/// The partition of one shard of the accounts listed under a metadata pair; sorted by account id.
pub fn account_search_pk(tenant: &TenantId, key: &str, value: &str, shard: u32) -> String {
    format!("T#{tenant}#F#N#{}#{shard}", metadata_digest(key, value))
}

/// The account search shard of an account.
pub fn account_search_shard(account: &AccountId) -> u32 {
    fnv1a(account.as_str().bytes()) % SEARCH_SHARDS
}

/// 128 bits of SHA-256 over the key and value (the key cannot hold the separator).
fn metadata_digest(key: &str, value: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::new().chain_update(key).chain_update([0u8]).chain_update(value).finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Sorted by the transfer's creation instant, then id: newest first when read backwards.
pub fn search_sk(at_nanos: i128, transfer: &TransferId) -> String {
    format!("{}#{transfer}", search_sk_bound(at_nanos))
}

/// The sort key prefix of instant `at_nanos`: every listing at it sorts after it, before the next's.
pub fn search_sk_bound(at_nanos: i128) -> String {
    format!("{at_nanos:020}")
}

/// The search shard of a transfer: every index lists it in the same shard.
pub fn search_shard(transfer: &TransferId) -> u32 {
    fnv1a(transfer.as_str().bytes()) % SEARCH_SHARDS
}

/// FNV-1a: a hash stable across processes and releases, to pick shards by.
fn fnv1a(bytes: impl Iterator<Item = u8>) -> u32 {
    bytes.fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_keys_sort_by_instant_then_sequence() {
        let at = |at_nanos, sequence| EntryPosition { at_nanos, shard: 0, sequence };
        assert!(entry_sk(at(5, 9)) < entry_sk(at(5, 10)));
        assert!(entry_sk(at(5, u64::MAX)) < entry_sk(at(6, 0)));
        assert!(entry_sk(at(5, u64::MAX)) < entries_after(at(5, u64::MAX)));
        assert!(entries_after(at(5, 9)) < entry_sk(at(5, 10)));
        let instant = time::OffsetDateTime::from_unix_timestamp_nanos(5).unwrap();
        assert!(entry_sk(at(5, u64::MAX)) < entries_until(instant));
        assert!(entries_until(instant) < entry_sk(at(6, 0)));
        // The account's two items sort below every entry, so a descending query meets them last;
        // its hold listings above every entry.
        assert!(ACCOUNT_SK < BALANCE_SK && BALANCE_SK < entry_sk(at(0, 0)).as_str());
        assert!(entry_sk(at(i64::MAX as i128, u64::MAX)).as_str() < ENTRIES_END);
        assert!(ENTRIES_END < held_sk(0, &TransferId::parse("a").unwrap()).as_str());
    }

    #[test]
    fn expiry_listings_sort_by_instant_and_spread_over_shards() {
        let t = TenantId::parse("acme").unwrap();
        let id = |i: u32| TransferId::parse(format!("h{i}")).unwrap();
        assert!(expiry_sk(999, &t, &id(1)) < expiry_sk_bound(1000));
        assert!(expiry_sk(1000, &t, &id(1)) > expiry_sk_bound(1000));
        assert!(held_sk(999, &id(1)) < held_sk_bound(1000));
        assert!(held_sk(1000, &id(1)) > held_sk_bound(1000));
        assert_eq!(expiry_index_pk(3599, 0), "H#0#0");
        assert_eq!(expiry_index_pk(3600, 0), "H#1#0");
        assert_eq!(legacy_expiry_pk(3600, 0), "S#1#0");
        // A tenant's holds spread over its group's shards, and the tenants over every group.
        let shards: std::collections::HashSet<_> = (0..200).map(|i| expiry_shard(&t, &id(i))).collect();
        assert_eq!(shards.len(), EXPIRY_SHARDS_PER_TENANT as usize);
        let tenants: std::collections::HashSet<_> = (0..200)
            .map(|i| {
                expiry_shard(&TenantId::parse(format!("t{i}")).unwrap(), &id(1)) / EXPIRY_SHARDS_PER_TENANT
            })
            .collect();
        assert_eq!(tenants.len(), (EXPIRY_SHARDS / EXPIRY_SHARDS_PER_TENANT) as usize);
    }

    #[test]
    fn search_keys_sort_by_instant_then_id_and_name_each_index_apart() {
        let t = TenantId::parse("acme").unwrap();
        let id = |raw: &str| TransferId::parse(raw).unwrap();
        assert!(search_sk(5, &id("b")) < search_sk(5, &id("c")));
        assert!(search_sk(5, &id("zzz")) < search_sk(6, &id("a")));
        assert!(search_sk_bound(6) > search_sk(5, &id("zzz")) && search_sk_bound(6) < search_sk(6, &id("a")));
        let alice = AccountId::parse("alice").unwrap();
        let pks = [
            search_pk(&t, &ledger::SearchIndex::Tenant, 0),
            search_pk(&t, &ledger::SearchIndex::Account(&alice), 0),
            search_pk(&t, &ledger::SearchIndex::Chain(&id("alice")), 0),
            search_pk(&t, &ledger::SearchIndex::Metadata("order", "42"), 0),
            search_pk(&t, &ledger::SearchIndex::Metadata("order", "4"), 0),
            search_pk(&t, &ledger::SearchIndex::Metadata("order4", ""), 0),
        ];
        assert_eq!(pks.iter().collect::<std::collections::HashSet<_>>().len(), pks.len(), "{pks:?}");
        assert!(pks.iter().all(|pk| pk.starts_with("T#acme#F#")));
        let shards: std::collections::HashSet<_> =
            (0..200).map(|i| search_shard(&id(&format!("t{i}")))).collect();
        assert_eq!(shards.len(), SEARCH_SHARDS as usize);
    }

    #[test]
    fn keys_carry_the_tenant() {
        let t = TenantId::parse("acme").unwrap();
        let a = AccountId::parse("alice").unwrap();
        assert_eq!(account_pk(&t, &a), "T#acme#A#alice");
        assert_eq!(transfer_pk(&t, &TransferId::parse("t1").unwrap()), "T#acme#X#t1");
    }
}
