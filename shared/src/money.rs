//! Money: currencies, amounts in a currency's minor unit, and posted totals that cannot overflow.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::field::{FieldError, WholeNumber};

/// An ISO-4217-shaped currency code: exactly three upper-case ASCII letters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        match raw.as_bytes() {
            &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_uppercase) => Ok(Self([a, b, c])),
            _ => Err(FieldError::new("must be three upper-case letters, e.g. EUR")),
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII upper-case letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl TryFrom<String> for Currency {
    type Error = FieldError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.as_str().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A transfer amount in the currency's minor unit: 1 ..= 2^63-1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "WholeNumber", into = "u64")]
pub struct Amount(u64);

impl Amount {
    pub const MAX: u64 = i64::MAX as u64;

    pub fn new(minor_units: u64) -> Result<Self, FieldError> {
        if (1..=Self::MAX).contains(&minor_units) {
            Ok(Self(minor_units))
        } else {
            Err(FieldError::new(format!("must be an integer from 1 to {}", Self::MAX)))
        }
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

impl TryFrom<u64> for Amount {
    type Error = FieldError;
    fn try_from(raw: u64) -> Result<Self, Self::Error> {
        Self::new(raw)
    }
}

impl TryFrom<WholeNumber> for Amount {
    type Error = FieldError;
    fn try_from(raw: WholeNumber) -> Result<Self, Self::Error> {
        Self::new(u64::try_from(raw.0).unwrap_or(0))
    }
}

impl From<Amount> for u64 {
    fn from(a: Amount) -> u64 {
        a.0
    }
}

/// A bound on an account's balance in the currency's minor unit (an overdraft limit, a maximum
/// balance): 0 ..= 2^63-1, as an amount but zero allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "WholeNumber", into = "u64")]
pub struct Limit(u64);

impl Limit {
    pub const ZERO: Limit = Limit(0);

    pub fn new(minor_units: u64) -> Result<Self, FieldError> {
        if minor_units <= Amount::MAX {
            Ok(Self(minor_units))
        } else {
            Err(FieldError::new(format!("must be an integer from 0 to {}", Amount::MAX)))
        }
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

impl TryFrom<WholeNumber> for Limit {
    type Error = FieldError;
    fn try_from(raw: WholeNumber) -> Result<Self, Self::Error> {
        u64::try_from(raw.0)
            .map_err(|_| FieldError::new(format!("must be an integer from 0 to {}", Amount::MAX)))
            .and_then(Self::new)
    }
}

impl From<Limit> for u64 {
    fn from(l: Limit) -> u64 {
        l.0
    }
}

/// The largest posted total an account may reach: 10^38 - 1, the largest integer a DynamoDB
/// number holds exactly (38 digits). It fits u128, and any balance (credits - debits) fits i128.
pub const POSTED_LIMIT: u128 = 10u128.pow(38) - 1;

/// An account's totals: posted (applied) and pending (held by holds not resolved yet).
/// `balance = credits_posted - debits_posted`; `available = balance - debits_pending`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balances {
    pub debits_pending: u128,
    pub debits_posted: u128,
    pub credits_pending: u128,
    pub credits_posted: u128,
}

/// What one entry does to its account's totals, on the entry's side (debit or credit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// The amount is posted.
    Posted,
    /// The amount is held: added to the pending total.
    Held,
    /// A hold of `held` is resolved by posting the amount (at most `held`): the pending total
    /// drops by `held` and the posted total grows by the amount.
    PostedFromHold { held: Amount },
    /// A hold of the amount is released (voided or expired): the pending total drops by it.
    Released,
}

impl Effect {
    /// Its name as stored, serialized and hashed (`Entry::hash_after`).
    pub fn code(self) -> &'static str {
        match self {
            Effect::Posted => "posted",
            Effect::Held => "held",
            Effect::PostedFromHold { .. } => "posted_from_hold",
            Effect::Released => "released",
        }
    }
}

impl Balances {
    /// An account's totals before any entry.
    pub const ZERO: Balances =
        Balances { debits_pending: 0, debits_posted: 0, credits_pending: 0, credits_posted: 0 };

    pub fn balance(&self) -> i128 {
        // Every total is <= POSTED_LIMIT < i128::MAX, so neither the casts nor the difference overflow.
        self.credits_posted as i128 - self.debits_posted as i128
    }

    /// What the account may still spend without overdraft: the balance less what holds reserve.
    pub fn available(&self) -> i128 {
        self.balance() - self.debits_pending as i128
    }

    /// Whether a hold holds money in the account, out or in.
    pub fn holds_pending(&self) -> bool {
        self.debits_pending > 0 || self.credits_pending > 0
    }

    /// The totals after debiting `amount`, or `None` if the debit total would pass POSTED_LIMIT.
    pub fn debited(self, amount: Amount) -> Option<Self> {
        self.after(Direction::Debit, Effect::Posted, amount)
    }

    /// The totals after crediting `amount`, or `None` if the credit total would pass POSTED_LIMIT.
    pub fn credited(self, amount: Amount) -> Option<Self> {
        self.after(Direction::Credit, Effect::Posted, amount)
    }

    /// The totals after `effect` of `amount` on the `direction` side, or `None` if a total would
    /// pass POSTED_LIMIT.
    ///
    /// A release of more than is pending leaves zero pending. It cannot happen on totals that
    /// include the hold; it happens on a hold and a balance read at different instants (the hold
    /// resolved meanwhile, or created after the balance was read), and the store writes nothing
    /// decided on such a pair: it conditions the write on the hold still pending and the balance
    /// at the version read, one of which then fails. So the release decides nothing by itself and
    /// can never refuse a transfer by mistake.
    pub fn after(self, direction: Direction, effect: Effect, amount: Amount) -> Option<Self> {
        let mut next = self;
        let (pending, posted) = match direction {
            Direction::Debit => (&mut next.debits_pending, &mut next.debits_posted),
            Direction::Credit => (&mut next.credits_pending, &mut next.credits_posted),
        };
        let amount = u128::from(amount.get());
        match effect {
            Effect::Posted => *posted = posted.checked_add(amount)?,
            Effect::Held => *pending = pending.checked_add(amount)?,
            Effect::PostedFromHold { held } => {
                *pending = pending.saturating_sub(held.get().into());
                *posted = posted.checked_add(amount)?;
            }
            Effect::Released => *pending = pending.saturating_sub(amount),
        }
        (*pending <= POSTED_LIMIT && *posted <= POSTED_LIMIT).then_some(next)
    }
}

/// The side of a transfer an entry is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Debit,
    Credit,
}

impl Direction {
    /// Its name as stored, serialized and hashed (`Entry::hash_after`).
    pub fn code(self) -> &'static str {
        match self {
            Direction::Debit => "debit",
            Direction::Credit => "credit",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_is_three_upper_case_letters() {
        assert_eq!(Currency::parse("EUR").unwrap().as_str(), "EUR");
        for bad in ["eur", "EU", "EURO", "E1R", "", "ÉUR"] {
            assert!(Currency::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn amount_range_is_one_to_i64_max() {
        assert!(Amount::new(0).is_err());
        assert!(Amount::new(1).is_ok());
        assert!(Amount::new(i64::MAX as u64).is_ok());
        assert!(Amount::new(i64::MAX as u64 + 1).is_err());
        assert!(Amount::new(u64::MAX).is_err());
    }

    #[test]
    fn totals_stop_at_the_posted_limit() {
        let max = Amount::new(Amount::MAX).unwrap();
        let near = Balances {
            debits_posted: POSTED_LIMIT - 1,
            credits_posted: POSTED_LIMIT - 1,
            ..Balances::default()
        };
        assert_eq!(near.debited(max), None);
        assert_eq!(near.credited(max), None);
        let one = Amount::new(1).unwrap();
        assert_eq!(near.credited(one).unwrap().credits_posted, POSTED_LIMIT);
        assert_eq!(near.credited(one).unwrap().credited(one), None);
    }

    #[test]
    fn holds_reserve_and_resolve_on_the_pending_totals() {
        let amount = |a| Amount::new(a).unwrap();
        let held = Balances { credits_posted: 100, ..Balances::default() }
            .after(Direction::Debit, Effect::Held, amount(60))
            .unwrap();
        assert_eq!((held.balance(), held.available(), held.debits_pending), (100, 40, 60));
        let posted =
            held.after(Direction::Debit, Effect::PostedFromHold { held: amount(60) }, amount(25)).unwrap();
        assert_eq!((posted.balance(), posted.available(), posted.debits_pending), (75, 75, 0));
        let voided = held.after(Direction::Debit, Effect::Released, amount(60)).unwrap();
        assert_eq!(voided, Balances { credits_posted: 100, ..Balances::default() });
        // A release never leaves a negative pending total.
        assert_eq!(held.after(Direction::Debit, Effect::Released, amount(61)).unwrap().debits_pending, 0);
        assert_eq!(held.after(Direction::Credit, Effect::Released, amount(1)).unwrap().credits_pending, 0);
    }

    #[test]
    fn extreme_balances_fit_i128() {
        let all_debit = Balances { debits_posted: POSTED_LIMIT, ..Balances::default() };
        assert_eq!(all_debit.balance(), -(POSTED_LIMIT as i128));
        let all_credit = Balances { credits_posted: POSTED_LIMIT, ..Balances::default() };
        assert_eq!(all_credit.balance(), POSTED_LIMIT as i128);
    }
}
