//! Reconciliation with a bank statement: an account that mirrors a bank account, its entries matched
//! line by line against the bank's statement of it.
//!
//! A line matches an entry of the same direction (the bank's credit, money in, is a credit to the
//! mirror account; its debit a debit) and amount, posted within `window` of the line's booking
//! date. A line whose reference names the entry's transfer (its id, or its `reference` metadata)
//! takes that entry first; otherwise the nearest in time not yet taken. Each entry matches one line
//! at most. What is left on either side is reported unmatched.
//!
//! A statement is identified by its content (`Statement::digest`): the same statement uploaded
//! twice, in either format, is one reconciliation.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use time::{Date, Duration, OffsetDateTime};

use crate::field::FieldError;
use crate::hash256::Hash256;
use crate::ids::{AccountId, TransferId};
use crate::money::{Amount, Currency, Effect};
use crate::posting::{Direction, Entry};

/// Lines one statement may hold (a reconciliation is stored whole, under DynamoDB's item size).
pub const MAX_LINES: usize = 1_000;
/// How far from a line's booking date an entry may lie, at most.
pub const MAX_WINDOW_DAYS: u8 = 31;
/// The window when none is given: bank booking dates trail the ledger by a day or two.
pub const DEFAULT_WINDOW_DAYS: u8 = 3;

// Dates as `YYYY-MM-DD`.
time::serde::format_description!(iso_date, Date, "[year]-[month]-[day]");

/// One line of a bank statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementLine {
    /// Its position in the statement, from 1.
    pub line: u32,
    #[serde(with = "iso_date")]
    pub booked_on: Date,
    /// The bank's side: `credit` (money in) or `debit` (money out).
    pub direction: Direction,
    pub amount: Amount,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A bank statement of one account, in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The bank's id of the statement, if it has one (camt.053 `Stmt/Id`).
    pub bank_id: Option<String>,
    pub currency: Currency,
    pub lines: Vec<StatementLine>,
}

impl Statement {
    /// `lines` as one statement: at least one, at most `MAX_LINES`.
    pub fn new(
        bank_id: Option<String>,
        currency: Currency,
        lines: Vec<StatementLine>,
    ) -> Result<Self, FieldError> {
        if lines.is_empty() {
            return Err(FieldError::new("has no line"));
        }
        if lines.len() > MAX_LINES {
            return Err(FieldError::new(format!("has {} lines, more than {MAX_LINES}", lines.len())));
        }
        Ok(Statement { bank_id, currency, lines })
    }

    /// Its identity: SHA-256 over the currency and each line's date, side, amount and reference,
    /// so a re-upload (in either format) is recognised.
    pub fn digest(&self) -> Hash256 {
        let mut hash = Sha256::new();
        hash.update(b"ledger.statement.v1");
        hash.update(self.currency.as_str().as_bytes());
        for line in &self.lines {
            let text = format!(
                "\n{}|{}|{}|{}",
                line.booked_on,
                line.direction.code(),
                line.amount.get(),
                line.reference.as_deref().unwrap_or_default()
            );
            hash.update(text.as_bytes());
        }
        Hash256::from_bytes(hash.finalize().into())
    }

    /// The first and last booking dates.
    pub fn period(&self) -> (Date, Date) {
        let dates = self.lines.iter().map(|l| l.booked_on);
        let first = dates.clone().min().unwrap_or(Date::MIN);
        (first, dates.max().unwrap_or(first))
    }
}

/// An entry of the account, as a reconciliation reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryRef {
    pub transfer_id: TransferId,
    pub sequence: u64,
    #[serde(default)]
    pub shard: u16,
    pub direction: Direction,
    pub amount: Amount,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl EntryRef {
    pub fn of(entry: &Entry) -> Self {
        EntryRef {
            transfer_id: entry.transfer_id.clone(),
            sequence: entry.sequence,
            shard: entry.shard,
            direction: entry.direction,
            amount: entry.amount,
            created_at: entry.created_at,
        }
    }
}

/// How a line and an entry were matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// The line's reference names the entry's transfer.
    Reference,
    /// The same side and amount, the nearest in time.
    AmountAndDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matched {
    pub line: StatementLine,
    pub entry: EntryRef,
    pub by: MatchedBy,
}

/// What a reconciliation found, and the adjusting transfers it made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciliation {
    /// The statement's digest: the reconciliation's id.
    pub id: Hash256,
    pub account_id: AccountId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement_id: Option<String>,
    #[serde(with = "iso_date")]
    pub from: Date,
    #[serde(with = "iso_date")]
    pub to: Date,
    pub window_days: u8,
    pub matched: Vec<Matched>,
    pub unmatched_lines: Vec<StatementLine>,
    pub unmatched_entries: Vec<EntryRef>,
    /// The transfers that booked the unmatched lines, if adjustments were asked for.
    pub adjustments: Vec<TransferId>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The entries a statement is matched against: those of the account posted (not held nor
/// released: a bank books money that moved) from `window` before its first line's date to
/// `window` after its last's.
pub fn window(statement: &Statement, window_days: u8) -> (OffsetDateTime, OffsetDateTime) {
    let (first, last) = statement.period();
    let days = Duration::days(i64::from(window_days));
    (first.midnight().assume_utc() - days, last.next_day().unwrap_or(last).midnight().assume_utc() + days)
}

fn moved_money(entry: &Entry) -> bool {
    matches!(entry.effect, Effect::Posted | Effect::PostedFromHold { .. })
}

/// Matches `statement` against the account's `entries` (any order); `references` holds each
/// transfer's `reference` metadata. Returns the matches, the unmatched lines, and the entries within
/// the window that no line matched.
pub fn reconcile(
    statement: &Statement,
    entries: &[Entry],
    references: &BTreeMap<TransferId, String>,
    window_days: u8,
) -> (Vec<Matched>, Vec<StatementLine>, Vec<EntryRef>) {
    let (from, to) = window(statement, window_days);
    let mut candidates: Vec<&Entry> =
        entries.iter().filter(|e| moved_money(e) && e.created_at >= from && e.created_at < to).collect();
    candidates.sort_by_key(|e| (e.created_at, e.shard, e.sequence));
    let mut taken = BTreeSet::new();
    let mut matched = Vec::new();
    let mut unmatched = Vec::new();
    let reach = Duration::days(i64::from(window_days) + 1);
    for line in &statement.lines {
        let noon = line.booked_on.midnight().assume_utc() + Duration::hours(12);
        let fits = |e: &&Entry| {
            e.direction == line.direction && e.amount == line.amount && (e.created_at - noon).abs() <= reach
        };
        let names = |e: &&Entry| {
            line.reference.as_deref().is_some_and(|r| {
                r == e.transfer_id.as_str() || references.get(&e.transfer_id).is_some_and(|m| m == r)
            })
        };
        let free = candidates.iter().enumerate().filter(|(i, e)| !taken.contains(i) && fits(e));
        let by_reference = free.clone().find(|(_, e)| names(e));
        let found = match by_reference {
            Some((i, _)) => Some((i, MatchedBy::Reference)),
            None => free
                .min_by_key(|(_, e)| (e.created_at - noon).abs())
                .map(|(i, _)| (i, MatchedBy::AmountAndDate)),
        };
        match found {
            Some((i, by)) => {
                taken.insert(i);
                matched.push(Matched { line: line.clone(), entry: EntryRef::of(candidates[i]), by });
            }
            None => unmatched.push(line.clone()),
        }
    }
    let left =
        candidates.iter().enumerate().filter(|(i, _)| !taken.contains(i)).map(|(_, e)| EntryRef::of(e));
    (matched, unmatched, left.collect())
}

/// The id of the transfer that books unmatched line `line` of reconciliation `id`: the same on
/// every retry, so an adjustment is made once.
pub fn adjustment_id(id: &Hash256, line: u32) -> Result<TransferId, FieldError> {
    let hex = id.to_string();
    TransferId::parse(format!("rec-{}-{line}", hex.get(..16).unwrap_or(&hex)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::tests::history;
    use time::macros::date;

    fn line(n: u32, on: Date, direction: Direction, amount: u64, reference: Option<&str>) -> StatementLine {
        StatementLine {
            line: n,
            booked_on: on,
            direction,
            amount: Amount::new(amount).unwrap(),
            reference: reference.map(str::to_owned),
            description: None,
        }
    }

    #[test]
    fn lines_match_by_reference_first_then_by_amount_and_nearest_date_each_entry_once() {
        // a and b take turns paying: b's entries are t0 credit 5, t1 debit 3, t2 credit 7, t3 debit 4,
        // t4 credit 5, all now.
        let (_, _, _, of_b) = history(&[5, 3, 7, 4, 5]);
        let today = of_b[0].created_at.date();
        let eur = Currency::parse("EUR").unwrap();
        let statement = Statement::new(
            None,
            eur,
            vec![
                line(1, today, Direction::Credit, 5, Some("t4")),
                line(2, today, Direction::Credit, 5, None),
                line(3, today, Direction::Debit, 3, None),
                line(4, today, Direction::Credit, 9, None),
                line(5, today, Direction::Credit, 5, None),
            ],
        )
        .unwrap();
        let (matched, unmatched, left) = reconcile(&statement, &of_b, &BTreeMap::new(), 3);
        let pairs: Vec<_> =
            matched.iter().map(|m| (m.line.line, m.entry.transfer_id.as_str(), m.by)).collect();
        assert_eq!(
            pairs,
            [
                (1, "t4", MatchedBy::Reference),
                (2, "t0", MatchedBy::AmountAndDate),
                (3, "t1", MatchedBy::AmountAndDate)
            ]
        );
        assert_eq!(unmatched.iter().map(|l| l.line).collect::<Vec<_>>(), [4, 5], "no entry twice");
        assert_eq!(left.iter().map(|e| e.transfer_id.as_str()).collect::<Vec<_>>(), ["t2", "t3"]);
        // Out of the window, nothing matches.
        let old = Statement::new(None, eur, vec![line(1, date!(2001 - 01 - 01), Direction::Credit, 5, None)])
            .unwrap();
        let (matched, unmatched, left) = reconcile(&old, &of_b, &BTreeMap::new(), 3);
        assert_eq!((matched.len(), unmatched.len(), left.len()), (0, 1, 0));
    }

    #[test]
    fn a_statement_is_known_by_its_lines_whatever_its_format_and_an_adjustment_id_is_stable() {
        let eur = Currency::parse("EUR").unwrap();
        let mut lines = vec![line(1, date!(2026 - 12 - 01), Direction::Credit, 100, Some("r"))];
        let a = Statement::new(Some("camt-1".into()), eur, lines.clone()).unwrap();
        lines[0].description = Some("from the CSV".into());
        let b = Statement::new(None, eur, lines.clone()).unwrap();
        assert_eq!(a.digest(), b.digest());
        lines[0].amount = Amount::new(101).unwrap();
        assert_ne!(a.digest(), Statement::new(None, eur, lines).unwrap().digest());
        assert_eq!(adjustment_id(&a.digest(), 7).unwrap(), adjustment_id(&b.digest(), 7).unwrap());
        assert!(Statement::new(None, eur, Vec::new()).is_err());
    }
}
