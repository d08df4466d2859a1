//! The books, checked continuously: each run takes up a tenant where its last checkpoint left it,
//! reads only the entries written since, and checks that
//!
//! - each shard's new entries extend the head the checkpoint holds (sequence, hash and totals:
//!   `chain::verify_from`), and its balance is where they end: entries sum to balances;
//! - every entry has its other side: the entry of the same transfer and effect, on the
//!   counterparty, the same amount the other way. A side whose other was not written yet when
//!   its account was read stays open one run; open longer, money was created or lost;
//! - the tenant's balances sum to zero per currency, posted and pending (pending debits equal
//!   pending credits, which are what the open holds reserve), once the open sides are counted.
//!
//! A checkpoint is a signed digest (`crate::digest`) over the heads it checked, with what the next
//! run needs: each shard's currency and totals, and the open sides. Its leaves are a digest
//! document's (`crate::audit::DigestDocument`), so the offline verifier reads it as one. A shard
//! found at fault keeps its last good mark, so the fault is found again on every run until it is
//! dealt with, and no digest ever signs a head that was not checked.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::account::AccountBalance;
use crate::chain::{self, ChainFault, ChainHead};
use crate::digest::{HeadLeaf, SignedDigest};
use crate::ids::{AccountId, TenantId, TransferId};
use crate::money::{Amount, Balances, Currency};
use crate::posting::{Direction, Entry};

/// A shard as the last run checked it: its head (a digest's leaf), currency and totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    #[serde(flatten)]
    pub leaf: HeadLeaf,
    pub currency: Currency,
    #[serde(with = "decimal::balances")]
    pub balances: Balances,
}

impl Mark {
    pub fn of(balance: &AccountBalance) -> Mark {
        Mark { leaf: HeadLeaf::of(balance), currency: balance.currency, balances: balance.balances }
    }

    fn head(&self) -> ChainHead {
        ChainHead { head: self.leaf.head, entry_count: self.leaf.entry_count, balances: self.balances }
    }

    fn shard(&self) -> ShardKey {
        (self.leaf.account_id.clone(), self.leaf.shard)
    }
}

/// One side of a movement whose other side was not checked yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenSide {
    pub transfer_id: TransferId,
    pub effect: String,
    pub account_id: AccountId,
    pub counterparty_account_id: AccountId,
    pub direction: Direction,
    pub amount: Amount,
    pub currency: Currency,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// What it moved of its account's debits less credits: posted, and pending.
    #[serde(with = "decimal")]
    pub posted: i128,
    #[serde(with = "decimal")]
    pub pending: i128,
    /// The run that found it.
    pub since_run: u64,
}

impl OpenSide {
    /// What both sides of one movement share: the debit account first.
    fn pair(&self) -> (TransferId, String, AccountId, AccountId, i128) {
        let (debit, credit) = match self.direction {
            Direction::Debit => (&self.account_id, &self.counterparty_account_id),
            Direction::Credit => (&self.counterparty_account_id, &self.account_id),
        };
        let at = self.created_at.unix_timestamp_nanos();
        (self.transfer_id.clone(), self.effect.clone(), debit.clone(), credit.clone(), at)
    }
}

/// A tenant's books as a run left them: what the next run starts from, and a digest document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    #[serde(flatten)]
    pub signed: SignedDigest,
    /// The runs so far, this one included.
    pub run: u64,
    /// Every shard's mark, in the digest's leaf order.
    pub leaves: Vec<Mark>,
    pub open: Vec<OpenSide>,
}

/// What a run publishes (the `books.checked` event): its signed digest, where its checkpoint is
/// kept, and what it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BooksChecked {
    pub run: u64,
    #[serde(flatten)]
    pub signed: SignedDigest,
    /// The checkpoint's key in the archive (a digest document).
    pub archive_key: String,
    pub shards: usize,
    pub entries: usize,
    pub open_sides: usize,
    /// Each fault found, in words.
    pub faults: Vec<String>,
}

impl BooksChecked {
    pub fn new(checkpoint: &Checkpoint, report: &BooksReport, archive_key: String) -> Self {
        BooksChecked {
            run: checkpoint.run,
            signed: checkpoint.signed.clone(),
            archive_key,
            shards: report.shards,
            entries: report.entries,
            open_sides: report.open,
            faults: report.faults.iter().map(ToString::to_string).collect(),
        }
    }
}

/// Something a run found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BooksFault {
    /// A shard's history since its mark does not follow it, or its balance is not where its
    /// entries end.
    Chain { account_id: AccountId, shard: u16, fault: ChainFault },
    /// A shard the last run checked is gone.
    ShardMissing { account_id: AccountId, shard: u16 },
    /// A side of a movement whose other side has not appeared in a whole run since.
    Unpaired { transfer_id: TransferId, account_id: AccountId },
    /// The tenant's balances in `currency` do not sum to zero (debits less credits, the open
    /// sides counted): money was created or lost.
    Unbalanced { currency: Currency, posted: i128, pending: i128 },
}

impl std::fmt::Display for BooksFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BooksFault::Chain { account_id, shard, fault } => {
                write!(f, "account {account_id} (shard {shard}): {fault}")
            }
            BooksFault::ShardMissing { account_id, shard } => {
                write!(f, "account {account_id} (shard {shard}): its balance item is gone")
            }
            BooksFault::Unpaired { transfer_id, account_id } => {
                write!(f, "transfer {transfer_id}: the entry on {account_id} has no other side")
            }
            BooksFault::Unbalanced { currency, posted, pending } => write!(
                f,
                "{currency} does not balance: debits less credits are {posted} posted, {pending} pending"
            ),
        }
    }
}

/// Per currency: the tenant's totals as the run read them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CurrencyTotals {
    pub debits_posted: u128,
    pub credits_posted: u128,
    pub debits_pending: u128,
    pub credits_pending: u128,
}

/// What one run did and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BooksReport {
    pub tenant: TenantId,
    pub run: u64,
    pub shards: usize,
    /// Entries read: those written since the last checkpoint.
    pub entries: usize,
    pub open: usize,
    pub totals: BTreeMap<Currency, CurrencyTotals>,
    pub faults: Vec<BooksFault>,
}

type ShardKey = (AccountId, u16);

/// 128-bit numbers in a checkpoint as decimal strings: a checkpoint flattens its signed digest,
/// and serde reads a flattened struct through a buffer that holds no 128-bit number.
mod decimal {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &i128, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i128, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(D::Error::custom)
    }

    pub mod balances {
        use serde::de::Error;
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        use crate::money::Balances;

        #[derive(Serialize, Deserialize)]
        struct Text {
            debits_pending: String,
            debits_posted: String,
            credits_pending: String,
            credits_posted: String,
        }

        pub fn serialize<S: Serializer>(b: &Balances, serializer: S) -> Result<S::Ok, S::Error> {
            Text {
                debits_pending: b.debits_pending.to_string(),
                debits_posted: b.debits_posted.to_string(),
                credits_pending: b.credits_pending.to_string(),
                credits_posted: b.credits_posted.to_string(),
            }
            .serialize(serializer)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Balances, D::Error> {
            let text = Text::deserialize(deserializer)?;
            let number = |s: &str| s.parse::<u128>().map_err(D::Error::custom);
            Ok(Balances {
                debits_pending: number(&text.debits_pending)?,
                debits_posted: number(&text.debits_posted)?,
                credits_pending: number(&text.credits_pending)?,
                credits_posted: number(&text.credits_posted)?,
            })
        }
    }
}

/// Which entries a run needs: of each shard read, those after its mark, up to its balance's count
/// (`from` and `to` sequences, inclusive). A shard with no new entry needs none.
pub fn wanted(previous: Option<&Checkpoint>, balances: &[AccountBalance]) -> Vec<(AccountId, u16, u64, u64)> {
    let marks = marks_by_shard(previous);
    balances
        .iter()
        .filter_map(|balance| {
            let from = marks.get(&(balance.id.clone(), balance.shard)).map_or(0, |m| m.leaf.entry_count) + 1;
            (balance.entry_count >= from)
                .then(|| (balance.id.clone(), balance.shard, from, balance.entry_count))
        })
        .collect()
}

fn marks_by_shard(previous: Option<&Checkpoint>) -> BTreeMap<ShardKey, &Mark> {
    previous.map_or(&[][..], |c| &c.leaves[..]).iter().map(|mark| (mark.shard(), mark)).collect()
}

/// The run after `previous` (none: the tenant's first), over every shard's balance as read and
/// the entries [`wanted`] named (`entries`, oldest first per shard): the new marks and open sides,
/// and what was found. The caller signs the marks' digest into the checkpoint (`checkpoint`).
pub fn check(
    tenant: &TenantId,
    previous: Option<&Checkpoint>,
    balances: &[AccountBalance],
    entries: &BTreeMap<ShardKey, Vec<Entry>>,
) -> (Vec<Mark>, Vec<OpenSide>, BooksReport) {
    let run = previous.map_or(0, |c| c.run) + 1;
    let marks = marks_by_shard(previous);
    let mut faults = Vec::new();
    let mut next = Vec::with_capacity(balances.len());
    let mut sides = Vec::new();
    let mut read = std::collections::BTreeSet::new();
    // One balance per shard: of two reads of one, the first.
    let balances: Vec<&AccountBalance> =
        balances.iter().filter(|b| read.insert((b.id.clone(), b.shard))).collect();
    for balance in balances.iter().copied() {
        let key = (balance.id.clone(), balance.shard);
        let mark = marks.get(&key).copied();
        let start = mark.map_or(ChainHead::GENESIS, Mark::head);
        let new = entries.get(&key).map_or(&[][..], |e| &e[..]);
        let shard_faults = chain::verify_from(&start, &ChainHead::of(balance), new);
        if shard_faults.is_empty() {
            next.push(Mark::of(balance));
            let mut before = start.balances;
            for entry in new {
                sides.push(side(entry, balance.currency, &before, run));
                before = entry.balances_after;
            }
        } else {
            next.extend(mark.cloned());
            faults.extend(shard_faults.into_iter().map(|fault| BooksFault::Chain {
                account_id: balance.id.clone(),
                shard: balance.shard,
                fault,
            }));
        }
    }
    for (account_id, shard) in marks.keys().filter(|key| !read.contains(*key)) {
        faults.push(BooksFault::ShardMissing { account_id: account_id.clone(), shard: *shard });
        next.extend(marks.get(&(account_id.clone(), *shard)).map(|m| (*m).clone()));
    }
    let open = pair_off(previous.map_or(&[][..], |c| &c.open[..]), sides);
    for side in open.iter().filter(|side| side.since_run < run) {
        faults.push(BooksFault::Unpaired {
            transfer_id: side.transfer_id.clone(),
            account_id: side.account_id.clone(),
        });
    }
    let totals = totals(&balances);
    for (currency, (posted, pending)) in imbalance(&balances, &open) {
        if posted != 0 || pending != 0 {
            faults.push(BooksFault::Unbalanced { currency, posted, pending });
        }
    }
    let report = BooksReport {
        tenant: tenant.clone(),
        run,
        shards: read.len(),
        entries: entries.values().map(Vec::len).sum(),
        open: open.len(),
        totals,
        faults,
    };
    (next, open, report)
}

fn side(entry: &Entry, currency: Currency, before: &Balances, run: u64) -> OpenSide {
    let moved = |after: u128, before: u128| after as i128 - before as i128;
    let after = &entry.balances_after;
    OpenSide {
        transfer_id: entry.transfer_id.clone(),
        effect: entry.effect.code().to_owned(),
        account_id: entry.account_id.clone(),
        counterparty_account_id: entry.counterparty_account_id.clone(),
        direction: entry.direction,
        amount: entry.amount,
        currency,
        created_at: entry.created_at,
        posted: moved(after.debits_posted, before.debits_posted)
            - moved(after.credits_posted, before.credits_posted),
        pending: moved(after.debits_pending, before.debits_pending)
            - moved(after.credits_pending, before.credits_pending),
        since_run: run,
    }
}

/// The sides still open once each side found meets its other: one debit and one credit of the
/// same movement, the same amount, cancel.
fn pair_off(open: &[OpenSide], found: Vec<OpenSide>) -> Vec<OpenSide> {
    let mut waiting: BTreeMap<_, Vec<OpenSide>> = BTreeMap::new();
    for side in open.iter().cloned().chain(found) {
        let sides = waiting.entry(side.pair()).or_default();
        match sides.iter().position(|o| o.direction != side.direction && o.amount == side.amount) {
            Some(other) => {
                sides.swap_remove(other);
            }
            None => sides.push(side),
        }
    }
    waiting.into_values().flatten().collect()
}

fn totals(balances: &[&AccountBalance]) -> BTreeMap<Currency, CurrencyTotals> {
    let mut totals: BTreeMap<Currency, CurrencyTotals> = BTreeMap::new();
    for balance in balances {
        let (total, b) = (totals.entry(balance.currency).or_default(), &balance.balances);
        total.debits_posted += b.debits_posted;
        total.credits_posted += b.credits_posted;
        total.debits_pending += b.debits_pending;
        total.credits_pending += b.credits_pending;
    }
    totals
}

/// Per currency, debits less credits over every balance, less what the open sides moved: zero
/// when the books balance.
fn imbalance(balances: &[&AccountBalance], open: &[OpenSide]) -> BTreeMap<Currency, (i128, i128)> {
    let mut sums: BTreeMap<Currency, (i128, i128)> = BTreeMap::new();
    for (currency, t) in totals(balances) {
        // Every total is below `POSTED_LIMIT`, far below i128::MAX.
        let posted = t.debits_posted as i128 - t.credits_posted as i128;
        let pending = t.debits_pending as i128 - t.credits_pending as i128;
        sums.insert(currency, (posted, pending));
    }
    for side in open {
        let sum = sums.entry(side.currency).or_default();
        sum.0 -= side.posted;
        sum.1 -= side.pending;
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::tests::history;
    use crate::digest::DigestTree;

    fn tenant() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    fn all(pairs: &[(&AccountBalance, &[Entry])]) -> BTreeMap<ShardKey, Vec<Entry>> {
        pairs.iter().map(|(b, e)| ((b.id.clone(), b.shard), e.to_vec())).collect()
    }

    /// The run after `marks` and `open`, as a checkpoint would hold them (its signature unused).
    fn after(run: u64, marks: Vec<Mark>, open: Vec<OpenSide>) -> Checkpoint {
        let signed = SignedDigest {
            digest: DigestTree::default().digest(tenant(), OffsetDateTime::UNIX_EPOCH),
            key_id: String::new(),
            signature: Vec::new(),
        };
        Checkpoint { signed, run, leaves: marks, open }
    }

    #[test]
    fn a_side_read_before_its_other_stays_open_one_run_then_is_unpaired() {
        let (a, of_a, b, of_b) = history(&[5, 3, 7]);
        // b read before the transfers: its balance and no entries; a read after.
        let b_before = AccountBalance {
            balances: Balances::ZERO,
            entry_count: 0,
            head: Default::default(),
            ..b.clone()
        };
        let (marks, open, report) =
            check(&tenant(), None, &[a.clone(), b_before.clone()], &all(&[(&a, &of_a)]));
        assert_eq!(report.faults, vec![], "a side open for one run is no fault");
        assert_eq!(open.len(), 3);
        let first = after(1, marks, open);
        // The next run reads b's entries: every side meets its other.
        let (_, open, report) = check(&tenant(), Some(&first), &[a.clone(), b.clone()], &all(&[(&b, &of_b)]));
        assert_eq!((report.faults.clone(), open.len()), (vec![], 0));
        // Had b's entries never been written, a's sides would stay unpaired: money from nowhere.
        let (_, open, report) = check(&tenant(), Some(&first), &[a.clone(), b_before], &BTreeMap::new());
        assert_eq!(open.len(), 3);
        assert_eq!(report.faults.iter().filter(|f| matches!(f, BooksFault::Unpaired { .. })).count(), 3);
    }

    #[test]
    fn an_edited_balance_is_found_every_run_and_its_mark_stays() {
        let (a, of_a, b, of_b) = history(&[5, 3]);
        let (marks, open, report) =
            check(&tenant(), None, &[a.clone(), b.clone()], &all(&[(&a, &of_a), (&b, &of_b)]));
        assert_eq!(report.faults, vec![]);
        let first = after(1, marks, open);
        let mut edited = a.clone();
        edited.balances.credits_posted += 100;
        for _ in 0..2 {
            let (marks, _, report) =
                check(&tenant(), Some(&first), &[edited.clone(), b.clone()], &BTreeMap::new());
            assert!(report.faults.contains(&BooksFault::Chain {
                account_id: a.id.clone(),
                shard: 0,
                fault: ChainFault::BalanceMismatch
            }));
            assert!(report.faults.iter().any(|f| matches!(f, BooksFault::Unbalanced { .. })));
            assert_eq!(marks, first.leaves, "a faulty shard keeps its last good mark");
        }
    }

    #[test]
    fn a_history_that_lost_its_newest_entries_or_a_shard_is_found() {
        let (a, of_a, b, of_b) = history(&[5, 3, 7]);
        let (marks, open, _) =
            check(&tenant(), None, &[a.clone(), b.clone()], &all(&[(&a, &of_a), (&b, &of_b)]));
        let first = after(1, marks, open);
        // a's newest entry deleted and its balance rolled back to the one before it.
        let rolled_back = AccountBalance {
            entry_count: 2,
            head: of_a[1].hash,
            balances: of_a[1].balances_after,
            ..a.clone()
        };
        let (_, _, report) = check(&tenant(), Some(&first), &[rolled_back, b.clone()], &BTreeMap::new());
        assert!(report.faults.contains(&BooksFault::Chain {
            account_id: a.id.clone(),
            shard: 0,
            fault: ChainFault::CountMismatch { balance: 2, entries: 3 }
        }));
        let (_, _, report) = check(&tenant(), Some(&first), std::slice::from_ref(&b), &BTreeMap::new());
        assert!(report.faults.contains(&BooksFault::ShardMissing { account_id: a.id.clone(), shard: 0 }));
        assert_eq!(wanted(Some(&first), &[a.clone(), b.clone()]), vec![], "nothing new to read");
    }

    #[test]
    fn a_checkpoint_round_trips_as_json() {
        let (a, of_a, b, _) = history(&[5, 3]);
        let t = TenantId::parse("acme").unwrap();
        let entries = [((a.id.clone(), 0), of_a.clone())].into_iter().collect();
        let (marks, open, _) = check(&t, None, &[a, b], &entries);
        let signed = SignedDigest {
            digest: DigestTree::default().digest(t, OffsetDateTime::UNIX_EPOCH),
            key_id: "k".into(),
            signature: vec![1, 2],
        };
        let checkpoint = Checkpoint { signed, run: 1, leaves: marks, open };
        let json = serde_json::to_string(&checkpoint).unwrap();
        assert_eq!(serde_json::from_str::<Checkpoint>(&json).unwrap(), checkpoint);
    }
}
