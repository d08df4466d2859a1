//! The table's key design. One table; every key starts with the tenant, so no request built from
//! these keys can reach another tenant's items. Ids never contain '#' (see `ledger::ids`), so the
//! '#'-joined keys are unambiguous.
//!
//! | item            | pk                        | sk                 | gsi1pk         | gsi1sk      |
//! |-----------------|---------------------------|--------------------|----------------|-------------|
//! | account profile | `T#{tenant}#A#{account}`  | `A`                | `T#{tenant}#A` | `{account}` |
//! | account balance | `T#{tenant}#A#{account}`  | `B`                | -              | -           |
//! | entry           | `T#{tenant}#A#{account}`  | `E#{sequence:020}` | -              | -           |
//! | transfer        | `T#{tenant}#X#{transfer}` | `X`                | -              | -           |
//! | batch           | `T#{tenant}#Q#{batch}`    | `Q`                | -              | -           |
//! | batch progress  | `T#{tenant}#Q#{batch}`    | `C`                | -              | -           |
//! | batch ids       | `T#{tenant}#Q#{batch}`    | `I`                | -              | -           |
//! | expiry listing  | `S#{hour}#{shard}`        | `{at:012}#{tenant}#{transfer}` | - | -          |
//! | sweep cursor    | `S#sweep`                 | `S`                | -              | -           |
//!
//! The expiry listing is the one tenant-less partition family: the sweeper lists the holds due in
//! an hour across tenants. It is sharded (`EXPIRY_SHARDS`) by a hash of tenant and transfer, so the
//! holds that expire in one hour are spread over that many partitions, and its items carry the
//! tenant the sweeper then reads under.
//!
//! A queued transfer is its transfer item with status `queued` and an `owner` (see [`owner`]); the
//! worker settles it in place. A batch's progress item holds its cursor (how many of its transfers,
//! in order, are settled) and its counters; its ids item, written once every id is claimed, is
//! what makes the batch accepted.
//!
//! The balance item is apart from the profile so that a transfer rewrites only small items, never
//! the metadata nor the index copy of the profile.

use ledger::{AccountId, BatchId, Submission, TenantId, TransferId};

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

/// The partition of the accounts index that lists one tenant's accounts.
pub fn accounts_index_pk(tenant: &TenantId) -> String {
    format!("T#{tenant}#A")
}

/// Zero-padded so that the lexical order of sort keys is the numeric order of sequences.
pub fn entry_sk(sequence: u64) -> String {
    format!("{ENTRY_SK_PREFIX}{sequence:020}")
}

pub const BATCH_SK: &str = "Q";
pub const BATCH_PROGRESS_SK: &str = "C";
pub const BATCH_IDS_SK: &str = "I";
/// The attribute of a queued transfer naming the submission that claimed its id.
pub const OWNER: &str = "owner";

pub fn batch_pk(tenant: &TenantId, batch: &BatchId) -> String {
    format!("T#{tenant}#Q#{batch}")
}

/// The owner every transfer sent with `Prefer: respond-async` shares: their fields, not their
/// owner, tell a replay from another request.
pub const ASYNC_OWNER: &str = "A";

/// Who claimed a transfer's id for asynchronous application: position `position` of a batch (an
/// owner unique to it), a linked chain (an owner unique to it, named by its first id: only the
/// chain's own message settles its members, whole), or a single transfer sent with
/// `Prefer: respond-async`.
pub fn owner(submission: &Submission, position: u32) -> String {
    match submission {
        Submission::Batch(batch) => format!("B#{batch}#{position}"),
        Submission::Linked(ids) => format!("L#{}", ids.first().map_or("", |id| id.as_str())),
        Submission::Transfer(_) => ASYNC_OWNER.to_owned(),
    }
}

pub fn transfer_pk(tenant: &TenantId, transfer: &TransferId) -> String {
    format!("T#{tenant}#X#{transfer}")
}

/// Partitions per hour of the expiry listing: 8 × 1,000 writes/s before one runs hot.
pub const EXPIRY_SHARDS: u32 = 8;
pub const SWEEP_PK: &str = "S#sweep";
pub const SWEEP_SK: &str = "S";

/// The listing partition of holds expiring in the hour that contains unix second `at`.
pub fn expiry_pk(at: i64, shard: u32) -> String {
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

/// The listing shard of a hold: FNV-1a of tenant and id, stable across processes and releases.
pub fn expiry_shard(tenant: &TenantId, transfer: &TransferId) -> u32 {
    let bytes = tenant.as_str().bytes().chain([b'#']).chain(transfer.as_str().bytes());
    let hash = bytes.fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    hash % EXPIRY_SHARDS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_keys_sort_numerically() {
        assert!(entry_sk(9) < entry_sk(10));
        assert!(entry_sk(u64::MAX - 1) < entry_sk(u64::MAX));
        // The account's two items sort below every entry, so a descending query meets them last.
        assert!(ACCOUNT_SK < BALANCE_SK && BALANCE_SK < entry_sk(0).as_str());
    }

    #[test]
    fn expiry_listings_sort_by_instant_and_spread_over_shards() {
        let t = TenantId::parse("acme").unwrap();
        let id = |i: u32| TransferId::parse(format!("h{i}")).unwrap();
        assert!(expiry_sk(999, &t, &id(1)) < expiry_sk_bound(1000));
        assert!(expiry_sk(1000, &t, &id(1)) > expiry_sk_bound(1000));
        assert_eq!(expiry_pk(3599, 0), "S#0#0");
        assert_eq!(expiry_pk(3600, 0), "S#1#0");
        let shards: std::collections::HashSet<_> = (0..200).map(|i| expiry_shard(&t, &id(i))).collect();
        assert_eq!(shards.len(), EXPIRY_SHARDS as usize);
    }

    #[test]
    fn keys_carry_the_tenant() {
        let t = TenantId::parse("acme").unwrap();
        let a = AccountId::parse("alice").unwrap();
        assert_eq!(account_pk(&t, &a), "T#acme#A#alice");
        assert_eq!(transfer_pk(&t, &TransferId::parse("t1").unwrap()), "T#acme#X#t1");
    }
}
