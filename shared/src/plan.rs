//! The transfer engine's decisions, pure: given the accounts as they stand and what each id already
//! holds, decide in order what each transfer of a sequence does. Every route (sync, respond-async,
//! batch) decides through this one planner; the store only reads its inputs and writes its output
//! under conditions that fail if an input moved, and then plans again from a fresh read.
//!
//! A sequence is decided as if its transfers were applied one by one in order (TigerBeetle's
//! semantics): a later transfer sees the balances the earlier ones left, so "fund, then spend" in
//! one sequence commits whole.

use std::collections::HashMap;

use time::OffsetDateTime;

use crate::account::AccountBalance;
use crate::ids::{AccountId, TransferId};
use crate::posting::{Entry, apply};
use crate::transfer::{NewTransfer, Transfer, TransferStatus};

/// What the planner decided for one transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Applied: the transfer record and the two entries to write (boxed: the largest variant).
    Commit { transfer: Transfer, debit: Box<Entry>, credit: Box<Entry> },
    /// Refused by a rule: the rejection is recorded and the id is spent.
    Reject(Transfer),
    /// The id already holds this very request: its outcome stands and nothing is written.
    Replay(Transfer),
    /// The id holds another request: the named fields differ.
    Conflict { fields: Vec<String>, existing: Transfer },
}

impl Decision {
    /// The transfer as recorded after this decision (`None` for a conflict: nothing of it is).
    pub fn outcome(&self) -> Option<&Transfer> {
        match self {
            Decision::Commit { transfer, .. } | Decision::Reject(transfer) | Decision::Replay(transfer) => {
                Some(transfer)
            }
            Decision::Conflict { .. } => None,
        }
    }

    /// The outcome's code as a batch counts it: `committed`, a rule's code, or `queued`.
    pub fn outcome_code(&self) -> &str {
        match self.outcome().map(|t| &t.status) {
            Some(TransferStatus::Committed) => "committed",
            Some(TransferStatus::Rejected { reason }) => reason.code(),
            Some(TransferStatus::Queued) => "queued",
            None => "idempotency_conflict",
        }
    }
}

/// Decides a sequence of transfers against the accounts it was given, in the order asked.
#[derive(Clone, Debug)]
pub struct Planner {
    accounts: HashMap<AccountId, AccountBalance>,
    /// Ids decided earlier in this sequence: a second occurrence replays (or conflicts with) the first.
    decided: HashMap<TransferId, Transfer>,
    now: OffsetDateTime,
}

impl Planner {
    /// `accounts`: the current state of every account the sequence names that exists.
    pub fn new(accounts: impl IntoIterator<Item = AccountBalance>, now: OffsetDateTime) -> Self {
        let accounts = accounts.into_iter().map(|a| (a.id.clone(), a)).collect();
        Self { accounts, decided: HashMap::new(), now }
    }

    /// Decides `request`, given what its id already holds in the store (`None`: nothing, or only
    /// this request's own queued claim).
    pub fn decide(&mut self, request: &NewTransfer, held: Option<&Transfer>) -> Decision {
        if let Some(existing) = self.decided.get(&request.id).or(held) {
            let fields = request.differing_fields(&existing.request);
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

    fn apply(&mut self, request: &NewTransfer) -> Decision {
        let (debit_id, credit_id) = (&request.debit_account_id, &request.credit_account_id);
        if let Err(rule) = request.check_static() {
            return Decision::Reject(request.clone().rejected(rule, self.now));
        }
        let mut debit = self.accounts.remove(debit_id);
        let mut credit = self.accounts.remove(credit_id);
        let applied = apply(request, debit.as_mut(), credit.as_mut(), self.now);
        for account in [debit, credit].into_iter().flatten() {
            self.accounts.insert(account.id.clone(), account);
        }
        match applied {
            Ok((debit, credit)) => {
                let transfer = request.clone().committed(self.now);
                Decision::Commit { transfer, debit: Box::new(debit), credit: Box::new(credit) }
            }
            Err(rule) => Decision::Reject(request.clone().rejected(rule, self.now)),
        }
    }

    /// The account as the decisions so far left it.
    pub fn account(&self, id: &AccountId) -> Option<&AccountBalance> {
        self.accounts.get(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RuleViolation;
    use crate::fixtures::{self, transfer};

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
        let original = transfer("x1", "bank", "alice", 100).committed(NOW);
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
        assert_eq!(planner.account(&original.request.credit_account_id).unwrap().entry_count, 0);
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
            planner.account(&first.outcome().unwrap().request.credit_account_id).unwrap().balances.balance(),
            5
        );
    }

    #[test]
    fn rules_reject_in_place_and_leave_the_accounts_as_they_were() {
        let mut planner = Planner::new(accounts(), NOW);
        let same = planner.decide(&transfer("a", "alice", "alice", 1), None);
        assert_eq!(
            same,
            Decision::Reject(transfer("a", "alice", "alice", 1).rejected(RuleViolation::SameAccount, NOW))
        );
        assert_eq!(
            planner.decide(&transfer("b", "alice", "nobody", 1), None).outcome_code(),
            "account_not_found"
        );
        let mut usd = transfer("c", "bank", "alice", 1);
        usd.currency = crate::Currency::parse("USD").unwrap();
        assert_eq!(planner.decide(&usd, None).outcome_code(), "currency_mismatch");
        for id in ["bank", "alice"] {
            let account = planner.account(&fixtures::account(id, false).id).unwrap();
            assert_eq!((account.entry_count, account.balances.balance()), (0, 0));
        }
    }
}
