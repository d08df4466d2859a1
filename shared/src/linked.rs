//! Linked transfers (TigerBeetle's linked events): `linked: true` ties a transfer to the next one of
//! the same request, and the chain so formed, up to the first transfer not linked, commits whole or
//! not at all, in order. If one member is refused, it keeps its own rule and every other member is
//! refused `linked_failed`; nothing of the chain moves money.
//!
//! A chain is written in ONE DynamoDB transaction (100 items, 4 MB). A member writes at most 8
//! items (its record, its expiry listing, two entries, its event, the hold it resolves and that
//! hold's listing, or the transfer it reverses) with up to two balances of its own, and at most
//! about 310 KB (its record, its event and the transfer it amends, each with 50 metadata values of
//! 500 four-byte characters). So 12 members fit in the worst case, next to a batch's progress
//! update: 12 × 8 + 1 = 97 items, 12 × 310 KB ≈ 3.7 MB.

use std::collections::BTreeSet;
use std::ops::Range;

use crate::error::LedgerError;
use crate::field::FieldError;
use crate::transfer::NewTransfer;

/// The most transfers one linked chain holds.
pub const MAX_LINKED: usize = 12;

/// One linked chain of 1 to [`MAX_LINKED`] transfers with distinct ids, linked in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkedChain(Vec<NewTransfer>);

impl LinkedChain {
    /// Links `transfers` in order (their own `linked` fields need not be set); the error names the
    /// field at fault (`transfers`, or `transfers[i].id` for an id given twice).
    pub fn new(transfers: Vec<NewTransfer>) -> Result<Self, LedgerError> {
        if transfers.is_empty() || transfers.len() > MAX_LINKED {
            let reason = format!("must hold 1 to {MAX_LINKED} transfers");
            return Err(LedgerError::invalid("transfers", FieldError::new(reason)));
        }
        let mut seen = BTreeSet::new();
        for (i, t) in transfers.iter().enumerate() {
            if !seen.insert(&t.id) {
                let reason = format!("{} appears twice in the chain", t.id);
                return Err(LedgerError::invalid(format!("transfers[{i}].id"), FieldError::new(reason)));
            }
        }
        Ok(Self(link(transfers)))
    }

    pub fn transfers(&self) -> &[NewTransfer] {
        &self.0
    }

    pub fn into_transfers(self) -> Vec<NewTransfer> {
        self.0
    }
}

/// `transfers` as one chain: each but the last linked to the next.
fn link(mut transfers: Vec<NewTransfer>) -> Vec<NewTransfer> {
    let last = transfers.len().saturating_sub(1);
    for (i, t) in transfers.iter_mut().enumerate() {
        t.linked = i < last;
    }
    transfers
}

/// The chains of a sequence, in order, as index ranges: a transfer not linked to any other is a
/// chain of one. An unterminated chain at the end runs to the end.
pub fn chains(transfers: &[NewTransfer]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, t) in transfers.iter().enumerate() {
        if !t.linked {
            out.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < transfers.len() {
        out.push(start..transfers.len());
    }
    out
}

/// Checks that every chain of a request ends within it and holds at most [`MAX_LINKED`]
/// transfers; the error names the position of the transfer at fault (its `linked` field).
pub fn check(transfers: &[NewTransfer]) -> Result<(), (usize, FieldError)> {
    for chain in chains(transfers) {
        if chain.len() > MAX_LINKED {
            let reason = format!("a linked chain holds at most {MAX_LINKED} transfers");
            return Err((chain.start + MAX_LINKED - 1, FieldError::new(reason)));
        }
        if transfers[chain.end - 1].linked {
            let reason = "the last transfer of a request cannot be linked: a chain ends at the first \
                          transfer without `linked`";
            return Err((chain.end - 1, FieldError::new(reason)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::transfer;

    fn sequence(flags: &[bool]) -> Vec<NewTransfer> {
        flags
            .iter()
            .enumerate()
            .map(|(i, &linked)| NewTransfer { linked, ..transfer(&format!("t{i}"), "a", "b", 1) })
            .collect()
    }

    #[test]
    fn chains_end_at_the_first_transfer_not_linked() {
        let s = sequence(&[false, true, true, false, false, true, false]);
        assert_eq!(chains(&s), [0..1, 1..4, 4..5, 5..7]);
        assert_eq!(check(&s), Ok(()));
        let chain = LinkedChain::new(sequence(&[false, false, true])).unwrap();
        assert_eq!(chains(chain.transfers()).len(), 1);
        assert_eq!(chains(chain.transfers())[0], 0..3);
    }

    #[test]
    fn an_open_or_too_long_chain_is_refused_at_its_transfer() {
        assert_eq!(check(&sequence(&[false, true])).unwrap_err().0, 1);
        let mut long = vec![true; MAX_LINKED];
        long.push(false);
        assert_eq!(check(&sequence(&long)).unwrap_err().0, MAX_LINKED - 1);
        long.remove(0);
        assert_eq!(check(&sequence(&long)), Ok(()));
        assert!(LinkedChain::new(sequence(&[false; MAX_LINKED + 1])).is_err());
        let twice = vec![transfer("a", "x", "y", 1), transfer("a", "x", "y", 1)];
        assert!(
            matches!(LinkedChain::new(twice), Err(LedgerError::InvalidField { field, .. }) if field == "transfers[1].id")
        );
    }
}
