//! Builders of valid domain values for tests, in every crate of the workspace (feature `fixtures`):
//! one place that knows how to spell a transfer or an account, so tests say only what matters to
//! them.

use crate::{AccountId, Amount, Currency, Metadata, NewAccount, NewTransfer, TransferId};

/// A transfer of `amount` minor units of EUR, without metadata.
///
/// # Panics
/// If an id or the amount is not valid: fixtures are written by hand, with valid values.
pub fn transfer(id: &str, debit: &str, credit: &str, amount: u64) -> NewTransfer {
    NewTransfer {
        id: TransferId::parse(id).expect("a valid transfer id"),
        debit_account_id: AccountId::parse(debit).expect("a valid debit account id"),
        credit_account_id: AccountId::parse(credit).expect("a valid credit account id"),
        amount: Amount::new(amount).expect("a valid amount"),
        currency: eur(),
        metadata: Metadata::default(),
    }
}

/// An account request in EUR, without metadata.
///
/// # Panics
/// If the id is not valid.
pub fn account(id: &str, allow_overdraft: bool) -> NewAccount {
    NewAccount {
        id: AccountId::parse(id).expect("a valid account id"),
        currency: eur(),
        allow_overdraft,
        metadata: Metadata::default(),
    }
}

pub fn eur() -> Currency {
    Currency::parse("EUR").expect("EUR is a currency")
}
