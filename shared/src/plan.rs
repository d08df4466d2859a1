//! The planner: given the accounts as they stand and what each id already holds, decide in order
//! what each transfer of a sequence does, pure. Every route (sync, respond-async, batch, expiry)
//! decides through it, inside the one engine (`crate::engine`), which reads its inputs and has the
//! store write its decisions under conditions that fail if an input moved, then plans again from a
//! fresh read.
//!
//! A sequence is decided as if its transfers were applied one by one in order (TigerBeetle's
//! semantics): a later transfer sees the balances the earlier ones left, so "fund, then spend" in
//! one sequence commits whole.

use std::collections::HashMap;

use time::OffsetDateTime;

use crate::account::AccountBalance;
use crate::ids::{AccountId, TransferId};
use crate::money::{Amount, Effect};
use crate::posting::{Entry, apply};
use crate::rule::RuleViolation;
use crate::transfer::{
    MAX_REVERSALS, Movement, NewTransfer, Reversal, Transfer, TransferKind, TransferStatus,
};

/// What the planner decided for one transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Applied: the transfer record and the two entries to write (boxed: the largest variant), and
    /// the transfer it acts on as it leaves it: for a post or void, the hold `posted` or `voided`;
    /// for a reversal, the reversed transfer with this reversal listed.
    Commit { transfer: Transfer, debit: Box<Entry>, credit: Box<Entry>, amends: Option<Box<Transfer>> },
    /// Refused by a rule: the rejection is recorded and the id is spent.
    Reject(Transfer),
    /// The id already holds this very request: its outcome stands and nothing is written.
    Replay(Transfer),
    /// The id holds another request: the named fields differ.
    Conflict { fields: Vec<String>, existing: Transfer },
    /// A hold whose timeout passed, released: the hold as `expired` and its two release entries.
    Expire { hold: Transfer, debit: Box<Entry>, credit: Box<Entry> },
}

impl Decision {
    /// The transfer as recorded after this decision (`None` for a conflict: nothing of it is).
    pub fn outcome(&self) -> Option<&Transfer> {
        match self {
            Decision::Commit { transfer, .. }
            | Decision::Reject(transfer)
            | Decision::Replay(transfer)
            | Decision::Expire { hold: transfer, .. } => Some(transfer),
            Decision::Conflict { .. } => None,
        }
    }

    /// The accounts the decision rests on, and so what its write is conditioned on: a commit or
    /// an expiry writes their balances, conditioned on the versions read; a rejection checks that
    /// they are still at those versions, so that a refusal stands at one instant of every account
    /// it names, as a serial order has it (items read one by one may each be current at a
    /// different instant). A replay or a conflict writes nothing.
    pub fn accounts(&self) -> Vec<&AccountId> {
        match self {
            Decision::Commit { debit, credit, .. } | Decision::Expire { debit, credit, .. } => {
                vec![&debit.account_id, &credit.account_id]
            }
            Decision::Reject(transfer) => transfer
                .movement
                .as_ref()
                .map(|m| vec![&m.debit_account_id, &m.credit_account_id])
                .unwrap_or_default(),
            Decision::Replay(_) | Decision::Conflict { .. } => Vec::new(),
        }
    }

    /// The outcome's code as a batch counts it: `committed` (holds and their resolutions
    /// included), a rule's code, or `queued`.
    pub fn outcome_code(&self) -> &str {
        match self.outcome().map(|t| &t.status) {
            Some(TransferStatus::Rejected { reason }) => reason.code(),
            Some(TransferStatus::Queued) => "queued",
            Some(_) => "committed",
            None => "idempotency_conflict",
        }
    }
}

/// Decides a sequence of transfers against the accounts it was given, in the order asked.
#[derive(Clone, Debug)]
pub struct Planner {
    accounts: HashMap<AccountId, AccountBalance>,
    /// Ids decided earlier in this sequence: a second occurrence replays (or conflicts with) the
    /// first, and a post or void finds a hold here first, as this sequence left it.
    decided: HashMap<TransferId, Transfer>,
    /// Transfers as stored: where a post or void finds a hold applied before this sequence.
    stored: HashMap<TransferId, Transfer>,
    now: OffsetDateTime,
}

impl Planner {
    /// `accounts`: the current state of every account the sequence names that exists.
    pub fn new(accounts: impl IntoIterator<Item = AccountBalance>, now: OffsetDateTime) -> Self {
        let accounts = accounts.into_iter().map(|a| (a.id.clone(), a)).collect();
        Self { accounts, decided: HashMap::new(), stored: HashMap::new(), now }
    }

    /// Adds the stored state of the holds the sequence's posts and voids name.
    pub fn with_stored(mut self, transfers: impl IntoIterator<Item = Transfer>) -> Self {
        self.stored.extend(transfers.into_iter().map(|t| (t.request.id.clone(), t)));
        self
    }

    /// Decides `request`, given what its id already holds in the store (`None`: nothing, or only
    /// this request's own queued claim).
    pub fn decide(&mut self, request: &NewTransfer, held: Option<&Transfer>) -> Decision {
        if let Some(existing) = self.decided.get(&request.id).or(held) {
            let fields = existing.differences(request);
            let existing = existing.clone();
            return if fields.is_empty() {
                Decision::Replay(existing)
            } else {
                Decision::Conflict { fields: fields.into_iter().map(str::to_owned).collect(), existing }
            };
        }
        let decision = self.apply(request);
        if let Some(outcome) = decision.outcome() {
            self.decided.insert(request.id.clone(), outcome.clone());
        }
        decision
    }

    /// Decides a linked chain (`members`, each with what its id holds in the store): all of it or
    /// none. If every member's id is held, each replays (or conflicts) on its own: the chain was
    /// decided before. If only some are, the chain cannot apply as asked: those replay (or
    /// conflict) and the others are refused `linked_failed`. Otherwise the members are decided in
    /// order; if one is refused, it keeps its rule, every other member is refused `linked_failed`,
    /// and the accounts stay as they were.
    pub fn decide_chain(&mut self, members: &[(&NewTransfer, Option<&Transfer>)]) -> Vec<Decision> {
        let held: Vec<bool> = members
            .iter()
            .map(|(request, held)| held.is_some() || self.decided.contains_key(&request.id))
            .collect();
        if held.contains(&true) {
            let all_held = !held.contains(&false);
            return members
                .iter()
                .zip(held)
                .map(|(member, held)| {
                    if all_held || held {
                        self.decide(member.0, member.1)
                    } else {
                        self.refuse_linked(member.0)
                    }
                })
                .collect();
        }
        let mut trial = self.clone();
        let decisions: Vec<Decision> =
            members.iter().map(|(request, _)| trial.decide(request, None)).collect();
        let Some(failed) = decisions.iter().position(|d| !matches!(d, Decision::Commit { .. })) else {
            *self = trial;
            return decisions;
        };
        members
            .iter()
            .zip(decisions)
            .enumerate()
            .map(|(i, ((request, _), decision))| {
                if i == failed {
                    if let Some(outcome) = decision.outcome() {
                        self.decided.insert(request.id.clone(), outcome.clone());
                    }
                    decision
                } else {
                    self.refuse_linked(request)
                }
            })
            .collect()
    }

    /// `request` refused because another member of its chain was.
    fn refuse_linked(&mut self, request: &NewTransfer) -> Decision {
        let outcome = request.clone().rejected(RuleViolation::LinkedFailed, None, self.now);
        self.decided.insert(request.id.clone(), outcome.clone());
        Decision::Reject(outcome)
    }

    /// Releases `hold` (as stored) if it is pending and its timeout has passed; `None` otherwise
    /// (resolved meanwhile, not due yet, or not a hold).
    pub fn expire(&mut self, hold: &Transfer) -> Option<Decision> {
        let hold = self.decided.get(&hold.request.id).unwrap_or(hold).clone();
        if !hold.is_due(self.now) {
            return None;
        }
        let movement = hold.movement.clone()?;
        let (debit, credit) = self.entries(&hold.request.id, &movement, Effect::Released, None).ok()?;
        let hold = Transfer { status: TransferStatus::Expired, ..hold };
        self.decided.insert(hold.request.id.clone(), hold.clone());
        Some(Decision::Expire { hold, debit: Box::new(debit), credit: Box::new(credit) })
    }

    fn apply(&mut self, request: &NewTransfer) -> Decision {
        let now = self.now;
        let reject = |rule, movement| Decision::Reject(request.clone().rejected(rule, movement, now));
        if let Err(rule) = request.check_static() {
            return reject(rule, None);
        }
        let (movement, effect, amended) = match &request.kind {
            TransferKind::Immediate(movement) => (movement.clone(), Effect::Posted, None),
            TransferKind::Pending { movement, .. } => (movement.clone(), Effect::Held, None),
            TransferKind::PostPending { pending_id, amount } => {
                let (hold, held) = match self.open_hold(pending_id) {
                    Ok(found) => found,
                    Err((rule, movement)) => return reject(rule, movement),
                };
                let amount = amount.unwrap_or(held.amount);
                let movement = Movement { amount, ..held.clone() };
                if amount > held.amount {
                    let rule = RuleViolation::ExceedsPendingAmount { pending_id: pending_id.clone() };
                    return reject(rule, Some(movement));
                }
                let posted =
                    TransferStatus::Posted { resolved_by: request.id.clone(), posted_amount: amount };
                (
                    movement,
                    Effect::PostedFromHold { held: held.amount },
                    Some(Transfer { status: posted, ..hold }),
                )
            }
            TransferKind::VoidPending { pending_id } => {
                let (hold, held) = match self.open_hold(pending_id) {
                    Ok(found) => found,
                    Err((rule, movement)) => return reject(rule, movement),
                };
                let voided = TransferStatus::Voided { resolved_by: request.id.clone() };
                (held, Effect::Released, Some(Transfer { status: voided, ..hold }))
            }
            TransferKind::Reversal { reversed_id, amount } => {
                let (mut original, posted) = match self.reversible(reversed_id) {
                    Ok(found) => found,
                    Err((rule, movement)) => return reject(rule, movement),
                };
                let remaining = posted.amount.get().saturating_sub(original.reversed_amount());
                let amount = amount.map(Amount::get).unwrap_or(remaining);
                let back = |amount| Movement {
                    debit_account_id: posted.credit_account_id.clone(),
                    credit_account_id: posted.debit_account_id.clone(),
                    amount,
                    currency: posted.currency,
                };
                let reversed_id = reversed_id.clone();
                let Some(amount) = Amount::new(amount).ok().filter(|a| a.get() <= remaining) else {
                    let shown = Amount::new(amount).unwrap_or(posted.amount);
                    return reject(RuleViolation::ExceedsReversibleAmount { reversed_id }, Some(back(shown)));
                };
                if original.reversals.len() >= MAX_REVERSALS {
                    return reject(RuleViolation::TooManyReversals { reversed_id }, Some(back(amount)));
                }
                original.reversals.push(Reversal { id: request.id.clone(), amount });
                (back(amount), Effect::Posted, Some(original))
            }
        };
        match self.entries(&request.id, &movement, effect, request.effective_at) {
            Ok((debit, credit)) => {
                if let Some(amended) = &amended {
                    self.decided.insert(amended.request.id.clone(), amended.clone());
                }
                Decision::Commit {
                    transfer: request.clone().applied(movement, self.now),
                    debit: Box::new(debit),
                    credit: Box::new(credit),
                    amends: amended.map(Box::new),
                }
            }
            Err(rule) => reject(rule, Some(movement)),
        }
    }

    /// The hold `pending_id` as this sequence sees it, and its movement, if it is open: otherwise
    /// the rule that refuses to resolve it (with the hold's movement, if there is one).
    fn open_hold(
        &self,
        pending_id: &TransferId,
    ) -> Result<(Transfer, Movement), (RuleViolation, Option<Movement>)> {
        let found = self.decided.get(pending_id).or_else(|| self.stored.get(pending_id));
        let not_found = || (RuleViolation::PendingNotFound { pending_id: pending_id.clone() }, None);
        let hold = found.cloned().ok_or_else(not_found)?;
        let movement = hold.movement.clone();
        let pending_id = pending_id.clone();
        let rule = match hold.clone().observed(self.now).status {
            TransferStatus::Pending => {
                return movement.map(|m| (hold, m)).ok_or_else(not_found);
            }
            TransferStatus::Queued => return Err(not_found()),
            TransferStatus::Posted { .. } => RuleViolation::PendingAlreadyPosted { pending_id },
            TransferStatus::Voided { .. } => RuleViolation::PendingAlreadyVoided { pending_id },
            TransferStatus::Expired => RuleViolation::PendingExpired { pending_id },
            TransferStatus::Committed | TransferStatus::Rejected { .. } => {
                RuleViolation::NotPending { pending_id }
            }
        };
        Err((rule, movement))
    }

    /// The transfer `reversed_id` as this sequence sees it, and what it posted, if a reversal can
    /// move some of it back: otherwise the rule that refuses.
    fn reversible(
        &self,
        reversed_id: &TransferId,
    ) -> Result<(Transfer, Movement), (RuleViolation, Option<Movement>)> {
        let found = self.decided.get(reversed_id).or_else(|| self.stored.get(reversed_id));
        let reversed = || reversed_id.clone();
        let not_found = || (RuleViolation::ReversedTransferNotFound { reversed_id: reversed() }, None);
        let original = found.cloned().ok_or_else(not_found)?;
        let posts =
            matches!(original.request.kind, TransferKind::Immediate(_) | TransferKind::PostPending { .. });
        match (&original.status, original.movement.clone()) {
            (TransferStatus::Queued, _) => Err(not_found()),
            (TransferStatus::Committed, Some(movement)) if posts => Ok((original, movement)),
            _ => Err((RuleViolation::NotReversible { reversed_id: reversed() }, None)),
        }
    }

    /// Applies `effect` of `movement` to the accounts as this sequence left them.
    fn entries(
        &mut self,
        transfer_id: &TransferId,
        movement: &Movement,
        effect: Effect,
        effective: Option<OffsetDateTime>,
    ) -> Result<(Entry, Entry), RuleViolation> {
        let (debit_id, credit_id) = (&movement.debit_account_id, &movement.credit_account_id);
        let mut debit = self.accounts.remove(debit_id);
        let mut credit = self.accounts.remove(credit_id);
        let applied =
            apply(transfer_id, movement, effect, debit.as_mut(), credit.as_mut(), self.now, effective);
        for account in [debit, credit].into_iter().flatten() {
            self.accounts.insert(account.id.clone(), account);
        }
        applied
    }

    /// The account as the decisions so far left it.
    pub fn account(&self, id: &AccountId) -> Option<&AccountBalance> {
        self.accounts.get(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{self, transfer};
    use crate::rule::RuleViolation;

    const NOW: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

    fn accounts() -> Vec<AccountBalance> {
        [("bank", true), ("alice", false), ("bob", false)]
            .into_iter()
            .map(|(id, overdraft)| fixtures::account(id, overdraft).open(NOW).balance_state())
            .collect()
    }

    fn codes(planner: &mut Planner, sequence: &[NewTransfer]) -> Vec<String> {
        sequence.iter().map(|t| planner.decide(t, None).outcome_code().to_owned()).collect()
    }

    #[test]
    fn fund_then_spend_commits_whole_in_order() {
        let mut sequence = vec![transfer("fund", "bank", "alice", 1_000)];
        sequence.extend((0..200).map(|i| transfer(&format!("s{i}"), "alice", "bob", 10)));
        let mut planner = Planner::new(accounts(), NOW);
        let outcomes = codes(&mut planner, &sequence);
        assert_eq!(outcomes.iter().filter(|c| *c == "committed").count(), 101);
        // In order: the funding, then exactly the first 100 spends.
        assert!(outcomes[..101].iter().all(|c| c == "committed"));
        assert!(outcomes[101..].iter().all(|c| c == "insufficient_funds"));
        let alice = planner.account(&fixtures::account("alice", false).id).unwrap();
        assert_eq!((alice.balances.balance(), alice.entry_count), (0, 101));
    }

    #[test]
    fn the_same_sequence_in_another_order_decides_otherwise() {
        let spend = transfer("s", "alice", "bob", 10);
        let fund = transfer("f", "bank", "alice", 10);
        let mut planner = Planner::new(accounts(), NOW);
        assert_eq!(codes(&mut planner, &[spend, fund]), ["insufficient_funds", "committed"]);
    }

    #[test]
    fn an_id_held_replays_when_identical_and_conflicts_naming_the_fields_otherwise() {
        let original = fixtures::committed(transfer("x1", "bank", "alice", 100), NOW);
        let mut planner = Planner::new(accounts(), NOW);
        assert_eq!(
            planner.decide(&transfer("x1", "bank", "alice", 100), Some(&original)),
            Decision::Replay(original.clone())
        );
        match planner.decide(&transfer("x1", "bank", "alice", 999), Some(&original)) {
            Decision::Conflict { fields, .. } => assert_eq!(fields, ["amount"]),
            other => panic!("{other:?}"),
        }
        // Nothing moved for either.
        assert_eq!(
            planner.account(&original.movement.as_ref().unwrap().credit_account_id).unwrap().entry_count,
            0
        );
    }

    #[test]
    fn an_id_twice_in_a_sequence_is_decided_once() {
        let mut planner = Planner::new(accounts(), NOW);
        let first = planner.decide(&transfer("x", "bank", "alice", 5), None);
        assert!(matches!(first, Decision::Commit { .. }));
        assert!(matches!(planner.decide(&transfer("x", "bank", "alice", 5), None), Decision::Replay(_)));
        assert!(matches!(planner.decide(&transfer("x", "bank", "bob", 5), None), Decision::Conflict { .. }));
        // A rejected id is spent as well.
        let refused = planner.decide(&transfer("y", "bob", "alice", 5), None);
        assert_eq!(refused.outcome_code(), "insufficient_funds");
        assert!(matches!(planner.decide(&transfer("y", "bob", "alice", 5), None), Decision::Replay(_)));
        assert_eq!(
            planner
                .account(&first.outcome().unwrap().movement.as_ref().unwrap().credit_account_id)
                .unwrap()
                .balances
                .balance(),
            5
        );
    }

    #[test]
    fn rules_reject_in_place_and_leave_the_accounts_as_they_were() {
        let mut planner = Planner::new(accounts(), NOW);
        let same = planner.decide(&transfer("a", "alice", "alice", 1), None);
        assert_eq!(
            same,
            Decision::Reject(transfer("a", "alice", "alice", 1).rejected(
                RuleViolation::SameAccount,
                None,
                NOW
            ))
        );
        assert_eq!(
            planner.decide(&transfer("b", "alice", "nobody", 1), None).outcome_code(),
            "account_not_found"
        );
        let usd = fixtures::with_currency(transfer("c", "bank", "alice", 1), "USD");
        assert_eq!(planner.decide(&usd, None).outcome_code(), "currency_mismatch");
        for id in ["bank", "alice"] {
            let account = planner.account(&fixtures::account(id, false).id).unwrap();
            assert_eq!((account.entry_count, account.balances.balance()), (0, 0));
        }
    }

    fn decide(planner: &mut Planner, t: &NewTransfer) -> String {
        planner.decide(t, None).outcome_code().to_owned()
    }

    fn totals(planner: &Planner, id: &str) -> (i128, i128, u128, u128) {
        let b = planner.account(&fixtures::account(id, false).id).unwrap().balances;
        (b.balance(), b.available(), b.debits_pending, b.credits_pending)
    }

    #[test]
    fn a_hold_reserves_then_a_post_posts_part_and_releases_the_rest() {
        let mut planner = Planner::new(accounts(), NOW);
        assert_eq!(decide(&mut planner, &transfer("fund", "bank", "alice", 100)), "committed");
        assert_eq!(decide(&mut planner, &fixtures::hold("h", "alice", "bob", 60, None)), "committed");
        assert_eq!(totals(&planner, "alice"), (100, 40, 60, 0));
        assert_eq!(totals(&planner, "bob"), (0, 0, 0, 60));
        // The hold counts: 41 more would overdraw.
        assert_eq!(decide(&mut planner, &transfer("s", "alice", "bob", 41)), "insufficient_funds");
        assert_eq!(
            decide(&mut planner, &fixtures::hold("h2", "alice", "bob", 41, None)),
            "insufficient_funds"
        );
        assert_eq!(decide(&mut planner, &fixtures::post("p0", "h", Some(61))), "exceeds_pending_amount");
        match planner.decide(&fixtures::post("p", "h", Some(25)), None) {
            Decision::Commit { transfer, amends: Some(hold), .. } => {
                assert_eq!(transfer.movement.unwrap().amount.get(), 25);
                assert!(
                    matches!(hold.status, TransferStatus::Posted { posted_amount, .. } if posted_amount.get() == 25)
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(totals(&planner, "alice"), (75, 75, 0, 0));
        assert_eq!(totals(&planner, "bob"), (25, 25, 0, 0));
        assert_eq!(decide(&mut planner, &fixtures::post("p2", "h", None)), "pending_already_posted");
        assert_eq!(decide(&mut planner, &fixtures::void("v", "h")), "pending_already_posted");
    }

    #[test]
    fn a_hold_resolves_at_most_once_and_only_a_hold_resolves() {
        let mut planner = Planner::new(accounts(), NOW);
        decide(&mut planner, &transfer("fund", "bank", "alice", 100));
        decide(&mut planner, &fixtures::hold("h", "alice", "bob", 60, None));
        assert_eq!(decide(&mut planner, &fixtures::void("v", "h")), "committed");
        assert_eq!(totals(&planner, "alice"), (100, 100, 0, 0));
        assert_eq!(decide(&mut planner, &fixtures::void("v2", "h")), "pending_already_voided");
        assert_eq!(decide(&mut planner, &fixtures::post("p", "h", None)), "pending_already_voided");
        assert_eq!(decide(&mut planner, &fixtures::post("p3", "fund", None)), "not_pending");
        assert_eq!(decide(&mut planner, &fixtures::post("p4", "nothing", None)), "pending_not_found");
        // A rejected hold can never be posted.
        assert_eq!(
            decide(&mut planner, &fixtures::hold("big", "alice", "bob", 1_000, None)),
            "insufficient_funds"
        );
        assert_eq!(decide(&mut planner, &fixtures::post("p5", "big", None)), "not_pending");
        assert_eq!(totals(&planner, "alice"), (100, 100, 0, 0));
    }

    #[test]
    fn an_expired_hold_cannot_be_resolved_and_expires_once() {
        let later = NOW + time::Duration::seconds(60);
        let hold = fixtures::committed(fixtures::hold("h", "bank", "alice", 10, Some(60)), NOW);
        let mut before = Planner::new(accounts(), NOW).with_stored([hold.clone()]);
        assert_eq!(before.expire(&hold), None, "not due yet");
        let mut planner = Planner::new(accounts(), later).with_stored([hold.clone()]);
        assert_eq!(decide(&mut planner, &fixtures::post("p", "h", None)), "pending_expired");
        assert_eq!(decide(&mut planner, &fixtures::void("v", "h")), "pending_expired");
        // The stored hold still holds (as the accounts read would show): expiry releases it.
        let mut planner = Planner::new(
            accounts().into_iter().map(|mut a| {
                if a.id.as_str() == "bank" {
                    a.balances.debits_pending = 10
                } else if a.id.as_str() == "alice" {
                    a.balances.credits_pending = 10
                }
                a
            }),
            later,
        )
        .with_stored([hold.clone()]);
        match planner.expire(&hold) {
            Some(Decision::Expire { hold, debit, .. }) => {
                assert_eq!(hold.status, TransferStatus::Expired);
                assert_eq!((debit.effect, debit.balances_after.debits_pending), (Effect::Released, 0));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(planner.expire(&hold), None, "expires once");
    }

    #[test]
    fn a_hold_and_its_post_in_one_sequence_commit_in_order() {
        let mut planner = Planner::new(accounts(), NOW);
        let sequence = [
            fixtures::post("p", "h", None),
            transfer("fund", "bank", "alice", 50),
            fixtures::hold("h", "alice", "bob", 50, Some(30)),
            fixtures::post("p2", "h", Some(20)),
        ];
        assert_eq!(
            codes(&mut planner, &sequence),
            ["pending_not_found", "committed", "committed", "committed"]
        );
        assert_eq!(totals(&planner, "alice"), (30, 30, 0, 0));
    }

    #[test]
    fn reversals_move_back_part_then_the_rest_and_never_more_than_was_posted() {
        let mut planner = Planner::new(accounts(), NOW);
        assert_eq!(decide(&mut planner, &transfer("fund", "bank", "alice", 100)), "committed");
        assert_eq!(decide(&mut planner, &transfer("pay", "alice", "bob", 60)), "committed");
        assert_eq!(
            decide(&mut planner, &fixtures::reversal("r0", "pay", Some(61))),
            "exceeds_reversible_amount"
        );
        match planner.decide(&fixtures::reversal("r1", "pay", Some(25)), None) {
            Decision::Commit { transfer, amends: Some(original), .. } => {
                let m = transfer.movement.unwrap();
                assert_eq!(
                    (m.debit_account_id.as_str(), m.credit_account_id.as_str(), m.amount.get()),
                    ("bob", "alice", 25)
                );
                assert_eq!(original.reversed_amount(), 25);
                assert_eq!(original.reversals[0].id.as_str(), "r1");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(totals(&planner, "alice"), (65, 65, 0, 0));
        assert_eq!(
            decide(&mut planner, &fixtures::reversal("r2", "pay", Some(36))),
            "exceeds_reversible_amount"
        );
        // Omitted: all that remains.
        match planner.decide(&fixtures::reversal("r3", "pay", None), None) {
            Decision::Commit { transfer, amends: Some(original), .. } => {
                assert_eq!(transfer.movement.unwrap().amount.get(), 35);
                assert_eq!(original.reversed_amount(), 60);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(totals(&planner, "bob"), (0, 0, 0, 0));
        assert_eq!(decide(&mut planner, &fixtures::reversal("r4", "pay", None)), "exceeds_reversible_amount");
        assert_eq!(
            decide(&mut planner, &fixtures::reversal("r5", "pay", Some(1))),
            "exceeds_reversible_amount"
        );
    }

    #[test]
    fn only_what_posted_money_is_reversible_and_a_reversal_can_overdraw_nobody() {
        let mut planner = Planner::new(accounts(), NOW);
        decide(&mut planner, &transfer("fund", "bank", "alice", 100));
        decide(&mut planner, &transfer("pay", "alice", "bob", 50));
        decide(&mut planner, &transfer("spent", "bob", "alice", 40));
        // Bob spent 40 of the 50: reversing all would overdraw him.
        assert_eq!(decide(&mut planner, &fixtures::reversal("r", "pay", None)), "insufficient_funds");
        assert_eq!(decide(&mut planner, &fixtures::reversal("r2", "pay", Some(10))), "committed");
        assert_eq!(decide(&mut planner, &fixtures::reversal("r3", "r2", None)), "not_reversible");
        assert_eq!(
            decide(&mut planner, &fixtures::reversal("r4", "nothing", None)),
            "reversed_transfer_not_found"
        );
        assert_eq!(decide(&mut planner, &fixtures::hold("h", "alice", "bob", 5, None)), "committed");
        assert_eq!(decide(&mut planner, &fixtures::reversal("r5", "h", None)), "not_reversible");
        assert_eq!(decide(&mut planner, &fixtures::post("p", "h", Some(3))), "committed");
        assert_eq!(decide(&mut planner, &fixtures::reversal("r6", "h", None)), "not_reversible");
        assert_eq!(decide(&mut planner, &fixtures::reversal("r7", "p", None)), "committed");
        assert_eq!(decide(&mut planner, &transfer("big", "bob", "alice", 1_000)), "insufficient_funds");
        assert_eq!(decide(&mut planner, &fixtures::reversal("r8", "big", None)), "not_reversible");
        assert_eq!(totals(&planner, "alice"), (100 - 50 + 40 + 10 - 3 + 3, 100 - 50 + 40 + 10, 0, 0));
    }

    #[test]
    fn a_transfer_takes_at_most_max_reversals() {
        let mut planner = Planner::new(accounts(), NOW);
        decide(&mut planner, &transfer("pay", "bank", "alice", 1_000));
        for i in 0..MAX_REVERSALS {
            assert_eq!(
                decide(&mut planner, &fixtures::reversal(&format!("r{i}"), "pay", Some(1))),
                "committed"
            );
        }
        assert_eq!(
            decide(&mut planner, &fixtures::reversal("one-more", "pay", Some(1))),
            "too_many_reversals"
        );
    }

    fn chain(transfers: Vec<NewTransfer>) -> Vec<NewTransfer> {
        crate::linked::LinkedChain::new(transfers).unwrap().into_transfers()
    }

    fn chain_codes(planner: &mut Planner, members: &[NewTransfer]) -> Vec<String> {
        let members: Vec<_> = members.iter().map(|t| (t, None)).collect();
        planner.decide_chain(&members).iter().map(|d| d.outcome_code().to_owned()).collect()
    }

    #[test]
    fn a_linked_chain_commits_whole_in_order_or_not_at_all() {
        let mut planner = Planner::new(accounts(), NOW);
        let paid = chain(vec![
            transfer("fund", "bank", "alice", 100),
            transfer("pay", "alice", "bob", 90),
            transfer("fee", "alice", "bank", 10),
        ]);
        assert_eq!(chain_codes(&mut planner, &paid), ["committed"; 3]);
        assert_eq!(totals(&planner, "alice"), (0, 0, 0, 0));
        // The fee fails: the payment before it does not apply either.
        let refused = chain(vec![
            transfer("fund2", "bank", "alice", 50),
            transfer("pay2", "alice", "bob", 45),
            transfer("fee2", "alice", "bank", 10),
            fixtures::reversal("undo", "pay", Some(1)),
        ]);
        assert_eq!(
            chain_codes(&mut planner, &refused),
            ["linked_failed", "linked_failed", "insufficient_funds", "linked_failed"]
        );
        assert_eq!((totals(&planner, "alice"), totals(&planner, "bob")), ((0, 0, 0, 0), (90, 90, 0, 0)));
        // Every id is spent: the chain again replays each outcome.
        let members: Vec<_> = refused.iter().map(|t| (t, None)).collect();
        assert!(planner.decide_chain(&members).iter().all(|d| matches!(d, Decision::Replay(_))));
        // A chain naming an id decided apart from it cannot apply as asked.
        let mixed = chain(vec![transfer("pay", "alice", "bob", 90), transfer("tip", "bank", "bob", 5)]);
        assert_eq!(chain_codes(&mut planner, &mixed), ["committed", "linked_failed"]);
        assert_eq!(totals(&planner, "bob"), (90, 90, 0, 0));
    }

    proptest::proptest! {
        /// Whatever mix of transfers, holds, posts, voids, expiries and reversals: money is
        /// conserved, pending debits equal pending credits, no account without overdraft has a
        /// negative available balance, every hold resolves at most once, and no transfer is
        /// reversed by more than it posted.
        #[test]
        fn holds_conserve_money_and_resolve_once(ops in proptest::collection::vec((0u8..6, 0usize..3, 0usize..3, 1u64..200, 0usize..8), 1..150)) {
            let names = ["bank", "alice", "bob"];
            let mut planner = Planner::new(accounts(), NOW);
            let mut resolutions: HashMap<String, usize> = HashMap::new();
            for (n, (op, from, to, amount, hold)) in ops.into_iter().enumerate() {
                let (id, pending) = (format!("t{n}"), format!("t{hold}"));
                let t = match op {
                    0 => transfer(&id, names[from], names[to], amount),
                    1 => fixtures::hold(&id, names[from], names[to], amount, Some(1)),
                    2 => fixtures::post(&id, &pending, Some(amount).filter(|a| a % 2 == 0)),
                    3 => fixtures::void(&id, &pending),
                    4 => fixtures::reversal(&id, &pending, Some(amount).filter(|a| a % 3 != 0)),
                    _ => {
                        let stored = planner.decided.get(&TransferId::parse(pending).unwrap()).cloned();
                        let mut later = planner.clone();
                        later.now = NOW + time::Duration::seconds(1);
                        if let Some(Decision::Expire { .. }) = stored.and_then(|h| later.expire(&h)) {
                            *resolutions.entry(format!("t{hold}")).or_default() += 1;
                            planner = Planner { now: NOW, ..later };
                        }
                        continue;
                    }
                };
                if let Decision::Commit { amends: Some(hold), .. } = planner.decide(&t, None)
                    && hold.status != TransferStatus::Committed
                {
                    *resolutions.entry(hold.request.id.to_string()).or_default() += 1;
                }
                let all: Vec<_> = names.iter().map(|n| planner.account(&fixtures::account(n, false).id).unwrap().clone()).collect();
                proptest::prop_assert_eq!(all.iter().map(|a| a.balances.balance()).sum::<i128>(), 0);
                proptest::prop_assert_eq!(all.iter().map(|a| a.balances.debits_pending).sum::<u128>(), all.iter().map(|a| a.balances.credits_pending).sum::<u128>());
                for a in &all {
                    proptest::prop_assert!(a.allow_overdraft || a.balances.available() >= 0, "{:?}", a);
                }
            }
            proptest::prop_assert!(resolutions.values().all(|&n| n == 1), "{:?}", resolutions);
            for t in planner.decided.values() {
                let posted = t.movement.as_ref().map_or(0, |m| m.amount.get());
                proptest::prop_assert!(t.reversed_amount() <= posted, "{:?}", t);
            }
        }
    }
}
