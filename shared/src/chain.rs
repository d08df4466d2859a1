//! Hash-chained history. Each entry carries a SHA-256 over the hash of the entry before it (on the
//! same account shard) and its own content; the balance keeps the latest, its head. Rewriting,
//! inserting, removing or reordering entries changes the hashes after them, so a head kept outside
//! the table (a signed digest) exposes any rewrite of the history it covers.

use crate::account::AccountBalance;
use crate::digest::HeadLeaf;
pub use crate::hash256::{Hash256, NotAHash};
use crate::money::Balances;
use crate::posting::Entry;

/// What an account shard's history and balance say, against what its chain says they should.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainFault {
    /// The entry at this position does not carry the sequence that follows the one before it:
    /// entries are missing, inserted or out of order.
    OutOfSequence { expected: u64, found: u64 },
    /// The entry's hash is not that of its content after the entry before it: it, or one before
    /// it, was changed.
    Modified { sequence: u64 },
    /// The entry's totals are not those before it moved by its amount.
    TotalsDoNotFollow { sequence: u64 },
    /// The balance counts entries the history lacks, or the history has entries the balance
    /// does not count.
    CountMismatch { balance: u64, entries: u64 },
    /// The balance's head is not the last entry's hash.
    HeadMismatch,
    /// The balance's totals are not the last entry's.
    BalanceMismatch,
    /// A digest signed a head at this sequence, and the history no longer reaches it: its newest
    /// entries were removed.
    SignedHeadMissing { sequence: u64 },
    /// A digest signed a head at this sequence, and the history's entry there hashes otherwise:
    /// the history up to it was rewritten.
    SignedHeadDiffers { sequence: u64 },
}

impl std::fmt::Display for ChainFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainFault::OutOfSequence { expected, found } => {
                write!(f, "entry {found} where {expected} should be: entries missing, inserted or reordered")
            }
            ChainFault::Modified { sequence } => write!(f, "entry {sequence} is not what was written"),
            ChainFault::TotalsDoNotFollow { sequence } => {
                write!(f, "entry {sequence}'s totals do not follow from the entry before it")
            }
            ChainFault::CountMismatch { balance, entries } => {
                write!(f, "the balance counts {balance} entries, the history has {entries}")
            }
            ChainFault::HeadMismatch => f.write_str("the balance's head is not the last entry's hash"),
            ChainFault::BalanceMismatch => f.write_str("the balance's totals are not the last entry's"),
            ChainFault::SignedHeadMissing { sequence } => {
                write!(f, "entry {sequence}, whose hash the digest signed, is gone")
            }
            ChainFault::SignedHeadDiffers { sequence } => {
                write!(
                    f,
                    "entry {sequence} is not the one the digest signed: the history up to it was rewritten"
                )
            }
        }
    }
}

/// A shard's balance as the table holds it: what its history must end at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    pub head: Hash256,
    pub entry_count: u64,
    pub balances: Balances,
}

impl ChainHead {
    /// A shard before its first entry.
    pub const GENESIS: ChainHead =
        ChainHead { head: Hash256::GENESIS, entry_count: 0, balances: Balances::ZERO };

    pub fn of(balance: &AccountBalance) -> ChainHead {
        ChainHead { head: balance.head, entry_count: balance.entry_count, balances: balance.balances }
    }
}

/// Checks one account shard's whole history, oldest first, against its balance: every entry
/// follows the one before it (sequence, hash and totals), and the balance ends where the last
/// entry does. Returns every fault found (none: the history is whole and unchanged since the
/// head was written).
pub fn verify(balance: &ChainHead, entries: &[Entry]) -> Vec<ChainFault> {
    verify_from(&ChainHead::GENESIS, balance, entries)
}

/// [`verify`] for the entries written after `start` (a head checked before): the first must
/// follow it, and the balance must end where the last one does. What the continuous check
/// (`crate::books`) runs on each shard's new entries.
pub fn verify_from(start: &ChainHead, balance: &ChainHead, entries: &[Entry]) -> Vec<ChainFault> {
    let mut faults = Vec::new();
    let (mut previous, mut totals) = (start.head, start.balances);
    for (position, entry) in entries.iter().enumerate() {
        let expected = start.entry_count + position as u64 + 1;
        if entry.sequence != expected {
            faults.push(ChainFault::OutOfSequence { expected, found: entry.sequence });
        }
        let hash = entry.hash_after(&previous);
        if entry.hash != hash {
            faults.push(ChainFault::Modified { sequence: entry.sequence });
        }
        if totals.after(entry.direction, entry.effect, entry.amount) != Some(entry.balances_after) {
            faults.push(ChainFault::TotalsDoNotFollow { sequence: entry.sequence });
        }
        // Follow the chain as written, so one change is reported once, where it is.
        (previous, totals) = (entry.hash, entry.balances_after);
    }
    let counted = start.entry_count + entries.len() as u64;
    if balance.entry_count != counted {
        faults.push(ChainFault::CountMismatch { balance: balance.entry_count, entries: counted });
    }
    if balance.head != previous {
        faults.push(ChainFault::HeadMismatch);
    }
    if balance.balances != totals {
        faults.push(ChainFault::BalanceMismatch);
    }
    faults
}

/// Checks that one account shard's history, oldest first, extends the head a digest signed for
/// it: the entry at the signed sequence is there and has the signed hash. With [`verify`], which
/// shows each entry follows the one before it, the history up to that head is as it was signed.
pub fn extends(signed: &HeadLeaf, entries: &[Entry]) -> Option<ChainFault> {
    if signed.entry_count == 0 {
        // Signed before its first entry: any history extends it.
        return None;
    }
    match entries.get((signed.entry_count - 1) as usize) {
        None => Some(ChainFault::SignedHeadMissing { sequence: signed.entry_count }),
        Some(entry) if entry.sequence == signed.entry_count && entry.hash == signed.head => None,
        Some(_) => Some(ChainFault::SignedHeadDiffers { sequence: signed.entry_count }),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::fixtures;
    use crate::money::{Currency, Direction, Effect};
    use crate::posting::apply;
    use crate::transfer::Movement;
    use crate::{AccountId, Amount, TransferId};
    use proptest::prelude::*;
    use time::OffsetDateTime;

    pub(crate) fn account(id: &str) -> AccountBalance {
        fixtures::account(id, true).open(OffsetDateTime::now_utc()).balance_state()
    }

    /// `amounts` moved from `a` to `b` (even steps) and back (odd ones): both accounts' histories
    /// and their balances after.
    pub(crate) fn history(amounts: &[u64]) -> (AccountBalance, Vec<Entry>, AccountBalance, Vec<Entry>) {
        let (mut a, mut b) = (account("a"), account("b"));
        let (mut of_a, mut of_b) = (Vec::new(), Vec::new());
        let now = OffsetDateTime::now_utc();
        for (i, amount) in amounts.iter().enumerate() {
            let (debit, credit) = if i % 2 == 0 { (&mut a, &mut b) } else { (&mut b, &mut a) };
            let movement = Movement {
                debit_account_id: debit.id.clone(),
                credit_account_id: credit.id.clone(),
                amount: Amount::new(*amount).unwrap(),
                currency: Currency::parse("EUR").unwrap(),
            };
            let id = TransferId::parse(format!("t{i}")).unwrap();
            let (d, c) = apply(&id, &movement, Effect::Posted, Some(debit), Some(credit), now, None).unwrap();
            for entry in [d, c] {
                if entry.account_id == a.id { of_a.push(entry) } else { of_b.push(entry) }
            }
        }
        (a, of_a, b, of_b)
    }

    fn head(balance: &AccountBalance) -> ChainHead {
        ChainHead::of(balance)
    }

    #[test]
    fn hashes_round_trip_as_64_hex_digits_and_nothing_else_parses() {
        let (a, _, _, _) = history(&[5]);
        let text = a.head.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(Hash256::parse(&text), Ok(a.head));
        assert_eq!(serde_json::to_string(&a.head).unwrap(), format!("\"{text}\""));
        for bad in ["", "00", &text[1..], &format!("{}g", &text[1..])] {
            assert_eq!(Hash256::parse(bad), Err(NotAHash), "{bad}");
        }
    }

    #[test]
    fn each_entry_links_to_the_one_before_and_the_balance_keeps_the_last() {
        let (a, entries, b, of_b) = history(&[5, 3, 7]);
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].hash, entries[0].hash_after(&Hash256::GENESIS));
        assert_eq!(entries[2].hash, entries[2].hash_after(&entries[1].hash));
        assert_eq!(a.head, entries[2].hash);
        assert_ne!(a.head, b.head, "each account has its own chain");
        assert_eq!(verify(&head(&a), &entries), vec![]);
        assert_eq!(verify(&head(&b), &of_b), vec![]);
    }

    #[test]
    fn an_edited_amount_is_found_where_it_was_made() {
        let (a, mut entries, _, _) = history(&[5, 3, 7]);
        entries[1].amount = Amount::new(4).unwrap();
        let faults = verify(&head(&a), &entries);
        assert!(faults.contains(&ChainFault::Modified { sequence: 2 }), "{faults:?}");
        assert!(!faults.contains(&ChainFault::Modified { sequence: 3 }), "reported once: {faults:?}");
    }

    #[test]
    fn an_edit_rehashed_along_the_chain_still_misses_the_head_kept_elsewhere() {
        let (a, mut entries, _, _) = history(&[5, 3, 7]);
        // Whoever can write the table recomputes every later hash and the balance: only a head
        // kept outside the table tells.
        let kept = head(&a);
        entries[0].counterparty_account_id = AccountId::parse("mallory").unwrap();
        let mut previous = Hash256::GENESIS;
        for entry in &mut entries {
            entry.hash = entry.hash_after(&previous);
            previous = entry.hash;
        }
        let rewritten = ChainHead { head: previous, ..kept };
        assert_eq!(verify(&rewritten, &entries), vec![]);
        assert_eq!(verify(&kept, &entries), vec![ChainFault::HeadMismatch]);
    }

    #[test]
    fn a_history_must_extend_the_heads_signed_before() {
        let (mut a, mut entries, b, _) = history(&[5, 3, 7, 1]);
        // Digests taken after two entries and after three; a fourth came since.
        let signed = HeadLeaf { entry_count: 3, head: entries[2].hash, ..HeadLeaf::of(&a) };
        let signed_early = HeadLeaf { entry_count: 2, head: entries[1].hash, ..signed.clone() };
        assert_eq!(extends(&signed, &entries), None);
        assert_eq!(extends(&signed_early, &entries), None);
        assert_eq!(extends(&HeadLeaf::of(&account("new")), &[]), None);
        // The newest entry removed, balance and all, so that the chain itself verifies.
        let shorter = entries[..2].to_vec();
        assert_eq!(extends(&signed, &shorter), Some(ChainFault::SignedHeadMissing { sequence: 3 }));
        // The whole chain rewritten from its first entry, every hash recomputed.
        entries[0].counterparty_account_id = AccountId::parse("mallory").unwrap();
        let mut previous = Hash256::GENESIS;
        for entry in &mut entries {
            entry.hash = entry.hash_after(&previous);
            previous = entry.hash;
        }
        a.head = previous;
        assert_eq!(verify(&head(&a), &entries), vec![]);
        assert_eq!(extends(&signed, &entries), Some(ChainFault::SignedHeadDiffers { sequence: 3 }));
        assert_eq!(extends(&signed_early, &entries), Some(ChainFault::SignedHeadDiffers { sequence: 2 }));
        assert_eq!(extends(&HeadLeaf::of(&b), &[]), Some(ChainFault::SignedHeadMissing { sequence: 4 }));
    }

    #[test]
    fn the_newest_entry_deleted_is_found_by_the_count_and_the_head() {
        let (a, mut entries, _, _) = history(&[5, 3, 7]);
        entries.pop();
        let faults = verify(&head(&a), &entries);
        assert!(faults.contains(&ChainFault::CountMismatch { balance: 3, entries: 2 }), "{faults:?}");
        assert!(faults.contains(&ChainFault::HeadMismatch), "{faults:?}");
    }

    #[test]
    fn swapped_and_inserted_entries_are_out_of_sequence() {
        let (a, entries, _, _) = history(&[5, 3, 7, 2]);
        let mut swapped = entries.clone();
        swapped.swap(1, 2);
        let faults = verify(&head(&a), &swapped);
        assert!(faults.contains(&ChainFault::OutOfSequence { expected: 2, found: 3 }), "{faults:?}");
        let mut inserted = entries.clone();
        inserted.insert(2, entries[1].clone());
        let faults = verify(&head(&a), &inserted);
        assert!(faults.contains(&ChainFault::OutOfSequence { expected: 3, found: 2 }), "{faults:?}");
    }

    #[test]
    fn an_edited_balance_is_found() {
        let (mut a, entries, _, _) = history(&[5, 3]);
        a.balances.credits_posted += 100;
        assert_eq!(verify(&head(&a), &entries), vec![ChainFault::BalanceMismatch]);
    }

    proptest! {
        /// Any history verifies, and any single change to any field of any entry is found.
        #[test]
        fn any_history_verifies_and_any_change_is_found(
            amounts in prop::collection::vec(1u64..1_000, 1..12),
            pick in any::<prop::sample::Index>(),
            field in 0usize..5,
        ) {
            let (a, mut entries, _, _) = history(&amounts);
            prop_assert_eq!(verify(&head(&a), &entries), vec![]);
            let entry = pick.get_mut(&mut entries);
            match field {
                0 => entry.amount = Amount::new(entry.amount.get() + 1).unwrap(),
                1 => entry.direction = match entry.direction { Direction::Debit => Direction::Credit, Direction::Credit => Direction::Debit },
                2 => entry.created_at += time::Duration::nanoseconds(1),
                3 => entry.transfer_id = TransferId::parse("other").unwrap(),
                _ => entry.balances_after.debits_pending += 1,
            }
            prop_assert!(!verify(&head(&a), &entries).is_empty());
        }
    }
}
