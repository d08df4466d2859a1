//! Transfer records bound to their entries. Entries are chained and signed (`crate::chain`,
//! `crate::digest`); a transfer's item is not, and one write could make it say another amount,
//! other accounts or another outcome. So the verifier derives from the entries what each record
//! must say and reports every record that says otherwise: the sides its kind and status imply
//! (accounts, direction, effect, amount), the post or void that resolved a hold (both ways), and
//! the reversals a transfer lists (both ways). Entries naming a transfer without a record are
//! reported too. Unbound, by design: metadata (which `transfer_change` may change) and a refusal's
//! reason (a refused transfer has no entries to derive it from). And each account's pending totals
//! must be what its open holds reserve (`check_pending`).

use std::collections::BTreeMap;

use crate::ids::{AccountId, TransferId};
use crate::money::{Direction, Effect};
use crate::posting::Entry;
use crate::transfer::{Movement, Transfer, TransferKind, TransferStatus};

/// One account's side of a movement, as an entry records it or a record implies it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Side {
    pub account_id: AccountId,
    pub counterparty_account_id: AccountId,
    pub direction: &'static str,
    pub effect: &'static str,
    /// The hold a `posted_from_hold` side resolves (0 for any other).
    pub held: u64,
    pub amount: u64,
}

impl Side {
    fn new(
        account: &AccountId,
        counterparty: &AccountId,
        direction: Direction,
        effect: Effect,
        amount: u64,
    ) -> Self {
        let held = match effect {
            Effect::PostedFromHold { held } => held.get(),
            _ => 0,
        };
        Side {
            account_id: account.clone(),
            counterparty_account_id: counterparty.clone(),
            direction: direction.code(),
            effect: effect.code(),
            held,
            amount,
        }
    }

    fn of(entry: &Entry) -> Self {
        Side::new(
            &entry.account_id,
            &entry.counterparty_account_id,
            entry.direction,
            entry.effect,
            entry.amount.get(),
        )
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Side { account_id, counterparty_account_id, direction, effect, amount, .. } = self;
        write!(f, "{direction} {account_id} {amount} {effect} (with {counterparty_account_id})")
    }
}

/// What is wrong with one transfer's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferFault {
    /// Entries name the transfer and there is no record of it.
    NoRecord,
    /// The record's status cannot follow from its kind (a hold `committed`, a post `pending`), or
    /// it says it moved money and names no movement.
    StatusDoesNotFitKind,
    /// The record does not say what its entries did: the sides it implies, and those found.
    EntriesDiffer { record: Vec<Side>, entries: Vec<Side> },
    /// The hold or the reversed transfer the record acts on has no record.
    ActsOnMissing(TransferId),
    /// A hold and the post or void that resolved it do not name each other alike.
    ResolutionDiffers { hold: TransferId, resolved_by: TransferId },
    /// A transfer and one of its reversals do not name each other alike.
    ReversalDiffers { reversed: TransferId, reversal: TransferId },
}

impl std::fmt::Display for TransferFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |sides: &[Side]| {
            if sides.is_empty() {
                "none".to_owned()
            } else {
                sides.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            }
        };
        match self {
            TransferFault::NoRecord => f.write_str("entries name it and it has no record"),
            TransferFault::StatusDoesNotFitKind => f.write_str("its status cannot follow from its kind"),
            TransferFault::EntriesDiffer { record, entries } => {
                write!(f, "its record says {}; its entries say {}", list(record), list(entries))
            }
            TransferFault::ActsOnMissing(id) => write!(f, "the transfer it acts on, {id}, has no record"),
            TransferFault::ResolutionDiffers { hold, resolved_by } => {
                write!(f, "hold {hold} and {resolved_by}, which resolved it, do not name each other alike")
            }
            TransferFault::ReversalDiffers { reversed, reversal } => {
                write!(f, "{reversed} and its reversal {reversal} do not name each other alike")
            }
        }
    }
}

/// A fault and the transfer it was found on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferFinding {
    pub transfer_id: TransferId,
    pub fault: TransferFault,
}

/// Checks every record in `transfers` (one tenant's) against `entries` (every entry of its
/// accounts, any order): returns every fault, none if each record says what its entries did.
pub fn check<'a>(
    transfers: &[Transfer],
    entries: impl IntoIterator<Item = &'a Entry>,
) -> Vec<TransferFinding> {
    let records: BTreeMap<&TransferId, &Transfer> = transfers.iter().map(|t| (&t.request.id, t)).collect();
    let mut found: BTreeMap<&TransferId, Vec<Side>> = BTreeMap::new();
    for entry in entries {
        found.entry(&entry.transfer_id).or_default().push(Side::of(entry));
    }
    let mut findings = Vec::new();
    for (id, sides) in &mut found {
        if !records.contains_key(id) {
            findings.push(TransferFinding { transfer_id: (*id).clone(), fault: TransferFault::NoRecord });
        }
        sides.sort();
    }
    for transfer in transfers {
        let id = &transfer.request.id;
        let mut fault = |fault| findings.push(TransferFinding { transfer_id: id.clone(), fault });
        let entries = found.get(id).cloned().unwrap_or_default();
        match implied_sides(transfer, &records) {
            Ok(record) if record != entries => fault(TransferFault::EntriesDiffer { record, entries }),
            Ok(_) => {}
            Err(found) => fault(found),
        }
        for link in links(transfer, &records) {
            fault(link);
        }
    }
    findings
}

/// An account whose pending totals are not what its open holds reserve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingFinding {
    pub account_id: AccountId,
    /// Its pending (debits, credits) as its balance items hold them, summed over its shards.
    pub stored: (u128, u128),
    /// The (debits, credits) its holds whose records say `pending` reserve.
    pub open_holds: (u128, u128),
}

impl std::fmt::Display for PendingFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ((d, c), (hd, hc)) = (self.stored, self.open_holds);
        write!(f, "pending debits {d} and credits {c}, where its open holds reserve {hd} and {hc}")
    }
}

/// Checks each account's pending totals (`pending`: (debits, credits), summed over its shards)
/// against the holds in `transfers` whose records say `pending`: a hold reserves its amount on its
/// debit account's pending debits and its credit account's pending credits until it is posted,
/// voided or expired. Returns every account where the two differ.
pub fn check_pending(
    transfers: &[Transfer],
    pending: &BTreeMap<AccountId, (u128, u128)>,
) -> Vec<PendingFinding> {
    let mut reserved: BTreeMap<&AccountId, (u128, u128)> = pending.keys().map(|a| (a, (0, 0))).collect();
    for transfer in transfers {
        let open = matches!(transfer.request.kind, TransferKind::Pending { .. })
            && transfer.status == TransferStatus::Pending;
        if let (true, Some(m)) = (open, &transfer.movement) {
            let amount = u128::from(m.amount.get());
            reserved.entry(&m.debit_account_id).or_default().0 += amount;
            reserved.entry(&m.credit_account_id).or_default().1 += amount;
        }
    }
    reserved
        .into_iter()
        .filter_map(|(account, open_holds)| {
            let stored = pending.get(account).copied().unwrap_or_default();
            (stored != open_holds).then(|| PendingFinding { account_id: account.clone(), stored, open_holds })
        })
        .collect()
}

/// The sides a record's kind and status say its transfer wrote, in order.
fn implied_sides(
    transfer: &Transfer,
    records: &BTreeMap<&TransferId, &Transfer>,
) -> Result<Vec<Side>, TransferFault> {
    use TransferKind as K;
    use TransferStatus as S;
    let effects = match (&transfer.request.kind, &transfer.status) {
        (_, S::Queued | S::Rejected { .. }) => return Ok(Vec::new()),
        (K::Immediate(_) | K::Reversal { .. }, S::Committed) => vec![Effect::Posted],
        (K::Pending { .. }, S::Pending | S::Posted { .. } | S::Voided { .. }) => vec![Effect::Held],
        (K::Pending { .. }, S::Expired) => vec![Effect::Held, Effect::Released],
        (K::VoidPending { .. }, S::Committed) => vec![Effect::Released],
        (K::PostPending { pending_id, .. }, S::Committed) => {
            let hold =
                records.get(pending_id).ok_or_else(|| TransferFault::ActsOnMissing(pending_id.clone()))?;
            let held = hold.movement.as_ref().ok_or(TransferFault::StatusDoesNotFitKind)?.amount;
            vec![Effect::PostedFromHold { held }]
        }
        _ => return Err(TransferFault::StatusDoesNotFitKind),
    };
    let movement = transfer.movement.as_ref().ok_or(TransferFault::StatusDoesNotFitKind)?;
    let mut sides: Vec<Side> = effects.into_iter().flat_map(|effect| pair(movement, effect)).collect();
    sides.sort();
    Ok(sides)
}

/// A movement's debit and credit sides with `effect`.
fn pair(m: &Movement, effect: Effect) -> [Side; 2] {
    let (debit, credit, amount) = (&m.debit_account_id, &m.credit_account_id, m.amount.get());
    [
        Side::new(debit, credit, Direction::Debit, effect, amount),
        Side::new(credit, debit, Direction::Credit, effect, amount),
    ]
}

/// Whether the transfers a record names name it back alike: a hold and its post or void, a
/// transfer and its reversals. A broken link is found on the record that names the other, and
/// the fault names both.
fn links(transfer: &Transfer, records: &BTreeMap<&TransferId, &Transfer>) -> Vec<TransferFault> {
    use TransferKind as K;
    use TransferStatus as S;
    let id = &transfer.request.id;
    let amount = transfer.movement.as_ref().map(|m| m.amount);
    let applied = transfer.status == S::Committed;
    let mut faults = Vec::new();
    match (&transfer.request.kind, &transfer.status) {
        // A hold names its resolution: the resolution must name it, be applied, and agree.
        (K::Pending { .. }, S::Posted { resolved_by, posted_amount }) => {
            let agrees = records.get(resolved_by).is_some_and(|by| {
                matches!(&by.request.kind, K::PostPending { pending_id, .. } if pending_id == id)
                    && by.status == S::Committed
                    && by.movement.as_ref().map(|m| m.amount) == Some(*posted_amount)
            });
            if !agrees {
                faults.push(TransferFault::ResolutionDiffers {
                    hold: id.clone(),
                    resolved_by: resolved_by.clone(),
                });
            }
        }
        (K::Pending { .. }, S::Voided { resolved_by }) => {
            let agrees = records.get(resolved_by).is_some_and(|by| {
                matches!(&by.request.kind, K::VoidPending { pending_id } if pending_id == id)
                    && by.status == S::Committed
            });
            if !agrees {
                faults.push(TransferFault::ResolutionDiffers {
                    hold: id.clone(),
                    resolved_by: resolved_by.clone(),
                });
            }
        }
        // An applied post or void: its hold must name it (a hold that does not is reported here,
        // as the hold's own status names no one to check from).
        (K::PostPending { pending_id, .. } | K::VoidPending { pending_id }, _) if applied => {
            match records.get(pending_id) {
                None => faults.push(TransferFault::ActsOnMissing(pending_id.clone())),
                Some(hold) => {
                    let names_it = match &hold.status {
                        S::Posted { resolved_by, .. } | S::Voided { resolved_by } => resolved_by == id,
                        _ => false,
                    };
                    if !names_it {
                        faults.push(TransferFault::ResolutionDiffers {
                            hold: pending_id.clone(),
                            resolved_by: id.clone(),
                        });
                    }
                }
            }
        }
        // An applied reversal: the reversed transfer must list it, with its amount.
        (K::Reversal { reversed_id, .. }, _) if applied => match records.get(reversed_id) {
            None => faults.push(TransferFault::ActsOnMissing(reversed_id.clone())),
            Some(reversed) => {
                if !reversed.reversals.iter().any(|r| &r.id == id && Some(r.amount) == amount) {
                    faults.push(TransferFault::ReversalDiffers {
                        reversed: reversed_id.clone(),
                        reversal: id.clone(),
                    });
                }
            }
        },
        _ => {}
    }
    // A transfer's listed reversals: each must be an applied reversal of it, of that amount.
    for listed in &transfer.reversals {
        let agrees = records.get(&listed.id).is_some_and(|r| {
            matches!(&r.request.kind, K::Reversal { reversed_id, .. } if reversed_id == id)
                && r.status == S::Committed
                && r.movement.as_ref().map(|m| m.amount) == Some(listed.amount)
        });
        if !agrees {
            faults.push(TransferFault::ReversalDiffers { reversed: id.clone(), reversal: listed.id.clone() });
        }
    }
    faults
}

#[cfg(test)]
mod tests {
    use time::{Duration, OffsetDateTime};

    use super::*;
    use crate::account::AccountBalance;
    use crate::fixtures::{self, hold, post, reversal, transfer, void};
    use crate::money::Amount;
    use crate::plan::{Decision, Planner};
    use crate::transfer::NewTransfer;

    const NOW: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

    fn id(raw: &str) -> TransferId {
        TransferId::parse(raw).unwrap()
    }

    /// What the engine writes for `steps`, decided in order: every record as it is left, and
    /// every entry. Then the hold `expiring` (a 1-second timeout) expires.
    fn ledger(steps: &[NewTransfer]) -> (Vec<Transfer>, Vec<Entry>) {
        let names = [("bank", true), ("alice", false), ("bob", false)];
        let accounts: Vec<AccountBalance> =
            names.iter().map(|(id, o)| fixtures::account(id, *o).open(NOW).balance_state()).collect();
        let mut planner = Planner::new(accounts, NOW);
        let mut records: BTreeMap<TransferId, Transfer> = BTreeMap::new();
        let mut entries = Vec::new();
        for step in steps.iter().chain([&hold("expiring", "alice", "bob", 3, Some(1))]) {
            match planner.decide(step, None) {
                Decision::Commit { transfer, debit, credit, amends } => {
                    entries.extend([*debit, *credit]);
                    for t in [Some(transfer), amends.map(|a| *a)].into_iter().flatten() {
                        records.insert(t.request.id.clone(), t);
                    }
                }
                Decision::Reject(t) => {
                    records.insert(t.request.id.clone(), t);
                }
                other => panic!("{other:?}"),
            }
        }
        let later =
            names.iter().map(|(n, _)| planner.account(&AccountId::parse(*n).unwrap()).unwrap().clone());
        let mut sweeper = Planner::new(later, NOW + Duration::seconds(2));
        let Some(Decision::Expire { hold, debit, credit }) = sweeper.expire(&records[&id("expiring")]) else {
            panic!("the hold expires");
        };
        entries.extend([*debit, *credit]);
        records.insert(hold.request.id.clone(), hold);
        (records.into_values().collect(), entries)
    }

    fn steps() -> Vec<NewTransfer> {
        vec![
            transfer("fund", "bank", "alice", 100),
            transfer("pay", "alice", "bob", 30),
            hold("h1", "alice", "bob", 20, None),
            post("p1", "h1", Some(15)),
            hold("h2", "alice", "bob", 5, None),
            void("v2", "h2"),
            reversal("r1", "pay", Some(10)),
            reversal("r2", "pay", Some(5)),
            transfer("refused", "bob", "alice", 1_000),
        ]
    }

    fn faults(transfers: &[Transfer], entries: &[Entry]) -> Vec<(String, TransferFault)> {
        check(transfers, entries).into_iter().map(|f| (f.transfer_id.to_string(), f.fault)).collect()
    }

    fn edit(transfers: &mut [Transfer], raw: &str, change: impl FnOnce(&mut Transfer)) {
        change(transfers.iter_mut().find(|t| t.request.id == id(raw)).unwrap());
    }

    #[test]
    fn every_kind_and_outcome_as_written_is_bound() {
        let (transfers, entries) = ledger(&steps());
        assert_eq!((transfers.len(), entries.len()), (10, 20));
        assert!(transfers.iter().any(|t| matches!(t.status, TransferStatus::Rejected { .. })));
        assert!(transfers.iter().any(|t| t.status == TransferStatus::Expired));
        assert_eq!(faults(&transfers, &entries), vec![]);
    }

    #[test]
    fn an_edited_amount_account_or_outcome_is_found_on_that_transfer() {
        let (clean, entries) = ledger(&steps());
        let amount = |a| Amount::new(a).unwrap();

        let mut transfers = clean.clone();
        edit(&mut transfers, "pay", |t| t.movement.as_mut().unwrap().amount = amount(3));
        let found = faults(&transfers, &entries);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(matches!(&found[0], (t, TransferFault::EntriesDiffer { .. }) if t == "pay"), "{found:?}");
        let text = found[0].1.to_string();
        assert!(text.contains("debit alice 3 posted") && text.contains("debit alice 30 posted"), "{text}");

        let mut transfers = clean.clone();
        edit(&mut transfers, "fund", |t| {
            t.movement.as_mut().unwrap().credit_account_id = AccountId::parse("bob").unwrap()
        });
        assert_eq!(faults(&transfers, &entries).len(), 1);

        // A refused transfer made to look applied; an applied one made to look refused.
        let mut transfers = clean.clone();
        edit(&mut transfers, "refused", |t| t.status = TransferStatus::Committed);
        let refusal = clean.iter().find(|t| t.request.id == id("refused")).unwrap().status.clone();
        edit(&mut transfers, "fund", |t| t.status = refusal);
        let found: Vec<_> = faults(&transfers, &entries).into_iter().map(|(t, _)| t).collect();
        assert_eq!(found, ["fund", "refused"]);

        // A hold's status changed: to committed (not a hold's), or expired back to pending.
        let mut transfers = clean.clone();
        edit(&mut transfers, "h2", |t| t.status = TransferStatus::Committed);
        edit(&mut transfers, "expiring", |t| t.status = TransferStatus::Pending);
        let found = faults(&transfers, &entries);
        assert!(found.contains(&("h2".into(), TransferFault::StatusDoesNotFitKind)), "{found:?}");
        assert!(
            found.iter().any(|(t, f)| t == "expiring" && matches!(f, TransferFault::EntriesDiffer { .. }))
        );
        // And v2, applied, no longer named by the hold it voided.
        let unnamed = TransferFault::ResolutionDiffers { hold: id("h2"), resolved_by: id("v2") };
        assert!(found.contains(&("v2".into(), unnamed)), "{found:?}");
    }

    /// Each account's pending (debits, credits) after `entries` (accounts of one shard).
    fn pending_after(entries: &[Entry]) -> BTreeMap<AccountId, (u128, u128)> {
        let mut last: BTreeMap<AccountId, &Entry> = BTreeMap::new();
        for entry in entries {
            let newer = last.get(&entry.account_id).is_none_or(|e| e.sequence < entry.sequence);
            if newer {
                last.insert(entry.account_id.clone(), entry);
            }
        }
        last.into_iter()
            .map(|(a, e)| (a, (e.balances_after.debits_pending, e.balances_after.credits_pending)))
            .collect()
    }

    #[test]
    fn pending_totals_are_the_open_holds_and_a_hold_reopened_or_a_total_edited_is_found() {
        let mut with_open = steps();
        with_open.push(hold("open", "alice", "bob", 7, None));
        let (transfers, entries) = ledger(&with_open);
        let pending = pending_after(&entries);
        let alice = AccountId::parse("alice").unwrap();
        assert_eq!(pending[&alice], (7, 0));
        assert_eq!(check_pending(&transfers, &pending), vec![]);

        // h2, voided, made pending again: alice and bob each show a reservation nothing holds.
        let mut reopened = transfers.clone();
        edit(&mut reopened, "h2", |t| t.status = TransferStatus::Pending);
        let found = check_pending(&reopened, &pending);
        let summary: Vec<_> = found.iter().map(|f| (f.account_id.as_str(), f.stored, f.open_holds)).collect();
        assert_eq!(summary, [("alice", (7, 0), (12, 0)), ("bob", (0, 7), (0, 12))]);

        // A pending total edited (its chain would say so too).
        let mut edited = pending.clone();
        edited.insert(alice.clone(), (0, 0));
        let found = check_pending(&transfers, &edited);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].to_string(),
            "pending debits 0 and credits 0, where its open holds reserve 7 and 0"
        );
    }

    #[test]
    fn a_reopened_hold_a_dropped_reversal_and_a_deleted_record_are_each_found() {
        let (clean, entries) = ledger(&steps());

        // h1 made open again (so it could be posted twice): p1 still resolved it.
        let mut transfers = clean.clone();
        edit(&mut transfers, "h1", |t| t.status = TransferStatus::Pending);
        let reopened = TransferFault::ResolutionDiffers { hold: id("h1"), resolved_by: id("p1") };
        assert_eq!(faults(&transfers, &entries), vec![("p1".into(), reopened)]);

        // h1 said posted for another amount than p1 posted.
        let mut transfers = clean.clone();
        edit(&mut transfers, "h1", |t| {
            t.status =
                TransferStatus::Posted { resolved_by: id("p1"), posted_amount: Amount::new(20).unwrap() }
        });
        assert_eq!(faults(&transfers, &entries).len(), 1);

        // pay's second reversal dropped from its list (so more of it could be reversed again).
        let mut transfers = clean.clone();
        edit(&mut transfers, "pay", |t| t.reversals.truncate(1));
        let dropped = TransferFault::ReversalDiffers { reversed: id("pay"), reversal: id("r2") };
        assert_eq!(faults(&transfers, &entries), vec![("r2".into(), dropped)]);

        // A reversal listed that never happened.
        let mut transfers = clean.clone();
        edit(&mut transfers, "fund", |t| {
            t.reversals.push(crate::transfer::Reversal { id: id("r1"), amount: Amount::new(10).unwrap() })
        });
        let listed = TransferFault::ReversalDiffers { reversed: id("fund"), reversal: id("r1") };
        assert_eq!(faults(&transfers, &entries), vec![("fund".into(), listed)]);

        // p1's record deleted: its entries name it, and its hold names it.
        let transfers: Vec<Transfer> = clean.iter().filter(|t| t.request.id != id("p1")).cloned().collect();
        let found = faults(&transfers, &entries);
        assert!(found.contains(&("p1".into(), TransferFault::NoRecord)), "{found:?}");
        let gone = TransferFault::ResolutionDiffers { hold: id("h1"), resolved_by: id("p1") };
        assert!(found.contains(&("h1".into(), gone)), "{found:?}");

        // A record added for a transfer that never moved money.
        let mut transfers = clean.clone();
        transfers.push(fixtures::committed(transfer("ghost", "bank", "bob", 50), NOW));
        let found = faults(&transfers, &entries);
        assert!(
            matches!(&found[..], [(t, TransferFault::EntriesDiffer { entries, .. })] if t == "ghost" && entries.is_empty())
        );
    }
}
