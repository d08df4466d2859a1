//! The double-entry rules: applying a movement to its two accounts, producing one entry on each.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::account::AccountBalance;
use crate::hash256::Hash256;
use crate::ids::{AccountId, TransferId};
pub use crate::money::Direction;
use crate::money::{Amount, Balances, Effect};
use crate::rule::RuleViolation;
use crate::transfer::Movement;

/// One line of an account's history: the account's side of one transfer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub account_id: AccountId,
    /// 1 for the account's first entry, then +1 for each: gapless, in the order applied.
    pub sequence: u64,
    pub transfer_id: TransferId,
    pub direction: Direction,
    /// What the entry does to the account's totals, with `amount`.
    #[serde(flatten)]
    pub effect: Effect,
    pub amount: Amount,
    pub counterparty_account_id: AccountId,
    /// The account's totals right after this entry.
    #[serde(flatten)]
    pub balances_after: Balances,
    /// The instant the entry took effect: never before the account's previous entry, so an
    /// account's entries are in time order as they are in sequence order.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The shard of a hot account it was written to (`crate::shard`); its sequence and totals
    /// are that shard's until a read merges the shards.
    #[serde(default, skip_serializing_if = "is_main")]
    pub shard: u16,
    /// Its link of its shard's chain: over the link before it and its own content
    /// (`crate::chain`).
    #[serde(default)]
    pub hash: Hash256,
}

fn is_main(shard: &u16) -> bool {
    *shard == 0
}

impl Entry {
    pub fn balance_after(&self) -> i128 {
        self.balances_after.balance()
    }

    /// Its hash following `previous` (`crate::chain`): over a fixed, versioned encoding of every
    /// field but its own hash, variable-length fields prefixed with their length so that no two
    /// entries encode alike.
    pub fn hash_after(&self, previous: &Hash256) -> Hash256 {
        let mut hash = Sha256::new();
        let mut field = |bytes: &[u8]| {
            hash.update((bytes.len() as u32).to_be_bytes());
            hash.update(bytes);
        };
        field(b"ledger.entry.v1");
        field(previous.as_bytes());
        field(self.account_id.as_str().as_bytes());
        field(&self.shard.to_be_bytes());
        field(&self.sequence.to_be_bytes());
        field(self.transfer_id.as_str().as_bytes());
        field(self.direction.code().as_bytes());
        field(self.effect.code().as_bytes());
        let held = match self.effect {
            Effect::PostedFromHold { held } => held.get(),
            _ => 0,
        };
        field(&held.to_be_bytes());
        field(&self.amount.get().to_be_bytes());
        field(self.counterparty_account_id.as_str().as_bytes());
        let Balances { debits_pending, debits_posted, credits_pending, credits_posted } = self.balances_after;
        for total in [debits_pending, debits_posted, credits_pending, credits_posted] {
            field(&total.to_be_bytes());
        }
        field(&self.created_at.unix_timestamp_nanos().to_be_bytes());
        Hash256::from_bytes(hash.finalize().into())
    }
}

/// Applies `effect` of `movement` (transfer `transfer_id`) to its two accounts (`None` where an
/// account does not exist): on success the accounts hold their new totals and entry counts, and
/// the two new entries are returned (debit, credit). On a rule violation nothing is changed.
///
/// Money leaves only an open account and enters only one not frozen whole nor closed. An account
/// without overdraft must keep its available balance (posted, less pending debits) at or above
/// minus its overdraft limit after a posting or a hold, and one with a maximum balance its balance
/// plus pending credits at or below it; resolving a hold never lowers the one nor raises the
/// other, so a post crosses no bound.
///
/// Both entries take effect at `now`, or at the later of the two accounts' latest entries if a
/// writer with a later clock got there first: each account's history stays in time order. An
/// imported movement (`effective`) takes effect at that past instant, which must not be before
/// either account's latest entry (nor after `now`).
pub fn apply(
    transfer_id: &TransferId,
    movement: &Movement,
    effect: Effect,
    debit: Option<&mut AccountBalance>,
    credit: Option<&mut AccountBalance>,
    now: OffsetDateTime,
    effective: Option<OffsetDateTime>,
) -> Result<(Entry, Entry), RuleViolation> {
    if movement.debit_account_id == movement.credit_account_id {
        return Err(RuleViolation::SameAccount);
    }
    let not_found = |id: &AccountId| RuleViolation::AccountNotFound { account_id: id.clone() };
    let debit = debit.ok_or_else(|| not_found(&movement.debit_account_id))?;
    let credit = credit.ok_or_else(|| not_found(&movement.credit_account_id))?;
    debug_assert_eq!(debit.id, movement.debit_account_id);
    debug_assert_eq!(credit.id, movement.credit_account_id);

    for account in [&*debit, &*credit] {
        if account.currency != movement.currency {
            return Err(RuleViolation::CurrencyMismatch { account_id: account.id.clone() });
        }
    }
    let limit =
        |account: &AccountBalance| RuleViolation::BalanceLimitExceeded { account_id: account.id.clone() };
    let amount = movement.amount;
    let debit_after = debit.balances.after(Direction::Debit, effect, amount).ok_or_else(|| limit(debit))?;
    let credit_after =
        credit.balances.after(Direction::Credit, effect, amount).ok_or_else(|| limit(credit))?;
    let latest = [debit.last_entry_at, credit.last_entry_at]
        .into_iter()
        .flatten()
        .fold(OffsetDateTime::UNIX_EPOCH, OffsetDateTime::max);
    let at = match effective {
        None => latest.max(now),
        Some(at) if at > now => return Err(RuleViolation::EffectiveAtInFuture),
        Some(at) => {
            let regressed =
                [&*debit, &*credit].into_iter().find(|a| a.last_entry_at.is_some_and(|last| at < last));
            if let Some(account) = regressed {
                return Err(RuleViolation::EffectiveAtBeforeLatestEntry { account_id: account.id.clone() });
            }
            at
        }
    };
    // Releasing a hold moves no money: it is never refused (a hold on a frozen account still
    // expires). Posting a hold moves what it reserved, so a freeze stops it; the bounds were
    // checked when the hold was made, and resolving it neither lowers `available` nor raises the
    // balance with pending credits.
    if effect != Effect::Released {
        let status = |account: &AccountBalance| match account.status {
            crate::account::AccountStatus::Closed => {
                RuleViolation::AccountClosed { account_id: account.id.clone() }
            }
            _ => RuleViolation::AccountFrozen { account_id: account.id.clone() },
        };
        if !debit.status.debits_allowed() {
            return Err(status(debit));
        }
        if !credit.status.credits_allowed() {
            return Err(status(credit));
        }
    }
    if matches!(effect, Effect::Posted | Effect::Held) {
        if debit.below_floor(&debit_after) {
            return Err(RuleViolation::InsufficientFunds { account_id: debit.id.clone() });
        }
        if credit.above_max(&credit_after) {
            return Err(RuleViolation::MaxBalanceExceeded { account_id: credit.id.clone() });
        }
    }

    let entry = |account: &mut AccountBalance, after: Balances, direction, counterparty: &AccountId| {
        account.balances = after;
        account.entry_count += 1;
        account.last_entry_at = Some(at);
        let mut entry = Entry {
            account_id: account.id.clone(),
            sequence: account.entry_count,
            transfer_id: transfer_id.clone(),
            direction,
            effect,
            amount,
            counterparty_account_id: counterparty.clone(),
            balances_after: after,
            created_at: at,
            shard: account.shard,
            hash: Hash256::GENESIS,
        };
        entry.hash = entry.hash_after(&account.head);
        account.head = entry.hash;
        entry
    };
    let (debit_was, credit_was) = (debit.entry_count, credit.entry_count);
    let debit_entry = entry(debit, debit_after, Direction::Debit, &movement.credit_account_id);
    let credit_entry = entry(credit, credit_after, Direction::Credit, &movement.debit_account_id);
    // Double entry: one side each, the same amount and effect, at the same instant; each account's
    // history gapless (its next sequence) and in time order.
    assert!(debit_entry.direction == Direction::Debit && credit_entry.direction == Direction::Credit);
    assert!(debit_entry.amount == credit_entry.amount && debit_entry.effect == credit_entry.effect);
    assert_eq!((debit_entry.sequence, credit_entry.sequence), (debit_was + 1, credit_was + 1));
    assert!(
        debit_entry.created_at == credit_entry.created_at
            && (effective.is_some() || debit_entry.created_at >= now)
    );
    Ok((debit_entry, credit_entry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{self, transfer};
    use crate::money::{Currency, POSTED_LIMIT};
    use crate::transfer::NewTransfer;
    use proptest::prelude::*;

    fn account(id: &str, currency: &str, allow_overdraft: bool) -> AccountBalance {
        let mut account = fixtures::account(id, allow_overdraft);
        account.currency = Currency::parse(currency).unwrap();
        account.open(OffsetDateTime::UNIX_EPOCH).balance_state()
    }

    const NOW: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

    /// Posts `transfer` now.
    fn post(
        transfer: &NewTransfer,
        debit: Option<&mut AccountBalance>,
        credit: Option<&mut AccountBalance>,
    ) -> Result<(Entry, Entry), RuleViolation> {
        let movement = transfer.kind.movement().expect("an immediate transfer");
        apply(&transfer.id, movement, Effect::Posted, debit, credit, NOW, None)
    }

    #[test]
    fn funding_moves_money_and_writes_two_entries() {
        let (mut bank, mut alice) = (account("bank", "EUR", true), account("alice", "EUR", false));
        let (d, c) = post(&transfer("t", "bank", "alice", 100), Some(&mut bank), Some(&mut alice)).unwrap();
        assert_eq!((bank.balances.balance(), alice.balances.balance()), (-100, 100));
        assert_eq!((d.sequence, d.balance_after(), d.direction), (1, -100, Direction::Debit));
        assert_eq!((c.sequence, c.balance_after(), c.direction), (1, 100, Direction::Credit));
        assert_eq!(c.counterparty_account_id.as_str(), "bank");
    }

    #[test]
    fn entries_never_take_effect_before_an_accounts_latest_entry() {
        let (mut bank, mut alice) = (account("bank", "EUR", true), account("alice", "EUR", false));
        let later = NOW + time::Duration::milliseconds(5);
        alice.last_entry_at = Some(later);
        // A writer whose clock is behind the one that wrote alice's latest entry.
        let (d, c) = post(&transfer("t", "bank", "alice", 1), Some(&mut bank), Some(&mut alice)).unwrap();
        assert_eq!((d.created_at, c.created_at), (later, later));
        assert_eq!((bank.last_entry_at, alice.last_entry_at), (Some(later), Some(later)));
    }

    #[test]
    fn overdraft_is_refused_without_permission_and_nothing_changes() {
        let (mut alice, mut bob) = (account("alice", "EUR", false), account("bob", "EUR", false));
        let before = (alice.clone(), bob.clone());
        let err = post(&transfer("t", "alice", "bob", 1), Some(&mut alice), Some(&mut bob)).unwrap_err();
        assert_eq!(err.code(), "insufficient_funds");
        assert_eq!((alice, bob), before);
    }

    #[test]
    fn exact_balance_may_be_spent() {
        let (mut bank, mut alice, mut bob) =
            (account("bank", "EUR", true), account("alice", "EUR", false), account("bob", "EUR", false));
        post(&transfer("t1", "bank", "alice", 7), Some(&mut bank), Some(&mut alice)).unwrap();
        post(&transfer("t2", "alice", "bob", 7), Some(&mut alice), Some(&mut bob)).unwrap();
        assert_eq!((alice.balances.balance(), bob.balances.balance()), (0, 7));
    }

    #[test]
    fn each_rule_has_its_code() {
        let (mut eur, mut usd) = (account("eur", "EUR", true), account("usd", "USD", true));
        let t = transfer("t", "eur", "usd", 1);
        assert_eq!(post(&t, Some(&mut eur), Some(&mut usd)).unwrap_err().code(), "currency_mismatch");
        assert_eq!(post(&t, Some(&mut eur), None).unwrap_err().code(), "account_not_found");
        let same = transfer("t", "eur", "eur", 1);
        assert_eq!(same.check_static().unwrap_err().code(), "same_account");
        let mut full = account("full", "EUR", false);
        full.balances.credits_posted = POSTED_LIMIT;
        let into_full = transfer("t", "eur", "full", 1);
        let err = post(&into_full, Some(&mut eur), Some(&mut full)).unwrap_err();
        assert_eq!(err, RuleViolation::BalanceLimitExceeded { account_id: full.id.clone() });
    }

    fn hold_of(
        t: &NewTransfer,
        debit: &mut AccountBalance,
        credit: &mut AccountBalance,
        effect: Effect,
    ) -> Result<(Entry, Entry), RuleViolation> {
        let movement = t.kind.movement().expect("an immediate transfer");
        apply(&t.id, movement, effect, Some(debit), Some(credit), NOW, None)
    }

    #[test]
    fn a_frozen_or_closed_account_moves_no_money_but_its_holds_still_release() {
        use crate::account::AccountStatus::{Closed, DebitsFrozen, Frozen};
        let (mut bank, mut alice) = (account("bank", "EUR", true), account("alice", "EUR", false));
        let fund = transfer("f", "bank", "alice", 10);
        post(&fund, Some(&mut bank), Some(&mut alice)).unwrap();
        let out = transfer("o", "alice", "bank", 1);
        hold_of(&out, &mut alice, &mut bank, Effect::Held).unwrap();
        alice.status = DebitsFrozen;
        assert_eq!(post(&out, Some(&mut alice), Some(&mut bank)).unwrap_err().code(), "account_frozen");
        let held = Effect::PostedFromHold { held: Amount::new(1).unwrap() };
        assert_eq!(hold_of(&out, &mut alice, &mut bank, held).unwrap_err().code(), "account_frozen");
        // Credits still land on an account frozen for debits only; not on one frozen whole.
        post(&transfer("in", "bank", "alice", 1), Some(&mut bank), Some(&mut alice)).unwrap();
        alice.status = Frozen;
        let into = transfer("in2", "bank", "alice", 1);
        assert_eq!(post(&into, Some(&mut bank), Some(&mut alice)).unwrap_err().code(), "account_frozen");
        // Releasing the hold moves nothing: it is never refused.
        hold_of(&out, &mut alice, &mut bank, Effect::Released).unwrap();
        assert_eq!((alice.balances.available(), alice.balances.debits_pending), (11, 0));
        alice.status = Closed;
        assert_eq!(post(&into, Some(&mut bank), Some(&mut alice)).unwrap_err().code(), "account_closed");
    }

    #[test]
    fn an_overdraft_limit_and_a_maximum_bound_the_balance_with_holds_counted() {
        use crate::money::Limit;
        let (mut bank, mut line) = (account("bank", "EUR", true), account("line", "EUR", false));
        line.bounds.overdraft_limit = Some(Limit::new(100).unwrap());
        line.bounds.max_balance = Some(Limit::new(50).unwrap());
        hold_of(&transfer("h", "line", "bank", 60), &mut line, &mut bank, Effect::Held).unwrap();
        assert_eq!(
            post(&transfer("x", "line", "bank", 41), Some(&mut line), Some(&mut bank)).unwrap_err().code(),
            "insufficient_funds"
        );
        post(&transfer("y", "line", "bank", 40), Some(&mut line), Some(&mut bank)).unwrap();
        assert_eq!(line.balances.available(), -100);
        // Up to 50 with what is pending in: the balance is -40, a hold in of 90 brings it to 50,
        // one more unit is refused.
        hold_of(&transfer("in", "bank", "line", 90), &mut bank, &mut line, Effect::Held).unwrap();
        assert_eq!(
            post(&transfer("z", "bank", "line", 1), Some(&mut bank), Some(&mut line)).unwrap_err().code(),
            "max_balance_exceeded"
        );
    }

    proptest! {
        /// The bank invariant on the pure rules: whatever mix of transfers is attempted, balances
        /// sum to zero, no account without overdraft goes negative, and each account's entries
        /// replay to its totals with gapless sequence numbers.
        #[test]
        fn random_transfers_conserve_money(ops in prop::collection::vec((0usize..5, 0usize..5, 1u64..1_000), 1..200)) {
            let mut accounts: Vec<AccountBalance> = (0..5).map(|i| account(&format!("a{i}"), "EUR", i == 0)).collect();
            let mut entries: Vec<Vec<Entry>> = vec![Vec::new(); 5];
            for (n, (from, to, amount)) in ops.into_iter().enumerate() {
                let t = transfer(&format!("t{n}"), &format!("a{from}"), &format!("a{to}"), amount);
                if from == to {
                    prop_assert_eq!(t.check_static(), Err(RuleViolation::SameAccount));
                    continue;
                }
                let (lo, hi) = (from.min(to), from.max(to));
                let (left, right) = accounts.split_at_mut(hi);
                let (a_lo, a_hi) = (&mut left[lo], &mut right[0]);
                let (debit, credit) = if from < to { (a_lo, a_hi) } else { (a_hi, a_lo) };
                if let Ok((d, c)) = post(&t, Some(debit), Some(credit)) {
                    entries[from].push(d);
                    entries[to].push(c);
                }
            }
            prop_assert_eq!(accounts.iter().map(|a| a.balances.balance()).sum::<i128>(), 0);
            for (account, history) in accounts.iter().zip(&entries) {
                prop_assert!(account.allow_overdraft || account.balances.balance() >= 0);
                prop_assert_eq!(account.entry_count, history.len() as u64);
                let mut replayed = Balances::default();
                for (i, entry) in history.iter().enumerate() {
                    prop_assert_eq!(entry.sequence, i as u64 + 1);
                    replayed = replayed.after(entry.direction, entry.effect, entry.amount).unwrap();
                    prop_assert_eq!(replayed, entry.balances_after);
                }
                prop_assert_eq!(replayed, account.balances);
            }
        }
    }
}
