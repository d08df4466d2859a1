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
//! | queued marker   | `T#{tenant}#X#{transfer}` | `Q#{batch}`        | -              | -           |
//! | batch           | `T#{tenant}#Q#{batch}`    | `Q`                | -              | -           |
//! | batch enqueued  | `T#{tenant}#Q#{batch}`    | `S`                | -              | -           |
//! | batch counts    | `T#{tenant}#Q#{batch}`    | `C`                | -              | -           |
//!
//! The balance item is apart from the profile so that a transfer rewrites only small items, never
//! the metadata nor the index copy of the profile.

use ledger::{AccountId, BatchId, TenantId, TransferId};

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
pub const BATCH_ENQUEUED_SK: &str = "S";
pub const BATCH_COUNTS_SK: &str = "C";
pub const MARKER_SK_PREFIX: &str = "Q#";

pub fn batch_pk(tenant: &TenantId, batch: &BatchId) -> String {
    format!("T#{tenant}#Q#{batch}")
}

/// The queued marker of a transfer in a batch: it sorts below the transfer's own item (`Q#` < `X`).
pub fn marker_sk(batch: &BatchId) -> String {
    format!("{MARKER_SK_PREFIX}{batch}")
}

pub fn transfer_pk(tenant: &TenantId, transfer: &TransferId) -> String {
    format!("T#{tenant}#X#{transfer}")
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
    fn keys_carry_the_tenant() {
        let t = TenantId::parse("acme").unwrap();
        let a = AccountId::parse("alice").unwrap();
        assert_eq!(account_pk(&t, &a), "T#acme#A#alice");
        assert_eq!(transfer_pk(&t, &TransferId::parse("t1").unwrap()), "T#acme#X#t1");
    }
}
