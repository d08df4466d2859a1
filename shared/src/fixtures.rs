//! Builders of valid domain values for tests, in every crate of the workspace (feature `fixtures`):
//! one place that knows how to spell a transfer or an account, so tests say only what matters to
//! them.

use time::OffsetDateTime;

use crate::account::NewAccount;
use crate::ids::{AccountId, TransferId};
use crate::metadata::Metadata;
use crate::money::{Amount, Currency};
use crate::transfer::{Movement, NewTransfer, Timeout, Transfer, TransferKind};

fn movement(debit: &str, credit: &str, amount: u64) -> Movement {
    Movement {
        debit_account_id: AccountId::parse(debit).expect("a valid debit account id"),
        credit_account_id: AccountId::parse(credit).expect("a valid credit account id"),
        amount: Amount::new(amount).expect("a valid amount"),
        currency: eur(),
    }
}

fn new_transfer(id: &str, kind: TransferKind) -> NewTransfer {
    NewTransfer {
        effective_at: None,
        id: TransferId::parse(id).expect("a valid transfer id"),
        kind,
        metadata: Metadata::default(),
        linked: false,
    }
}

/// A transfer of `amount` minor units of EUR, without metadata.
///
/// # Panics
/// If an id or the amount is not valid: fixtures are written by hand, with valid values.
pub fn transfer(id: &str, debit: &str, credit: &str, amount: u64) -> NewTransfer {
    new_transfer(id, TransferKind::Immediate(movement(debit, credit, amount)))
}

/// A hold of `amount` minor units of EUR, expiring after `timeout` seconds if given.
pub fn hold(id: &str, debit: &str, credit: &str, amount: u64, timeout: Option<u64>) -> NewTransfer {
    let timeout = timeout.map(|t| Timeout::new(t).expect("a valid timeout"));
    new_transfer(id, TransferKind::Pending { movement: movement(debit, credit, amount), timeout })
}

/// A post of hold `pending_id`: `amount` of it, or all of it.
pub fn post(id: &str, pending_id: &str, amount: Option<u64>) -> NewTransfer {
    let pending_id = TransferId::parse(pending_id).expect("a valid pending id");
    let amount = amount.map(|a| Amount::new(a).expect("a valid amount"));
    new_transfer(id, TransferKind::PostPending { pending_id, amount })
}

/// A void of hold `pending_id`.
pub fn void(id: &str, pending_id: &str) -> NewTransfer {
    let pending_id = TransferId::parse(pending_id).expect("a valid pending id");
    new_transfer(id, TransferKind::VoidPending { pending_id })
}

/// A reversal of transfer `reversed_id`: `amount` of it, or all that is not reversed yet.
pub fn reversal(id: &str, reversed_id: &str, amount: Option<u64>) -> NewTransfer {
    let reversed_id = TransferId::parse(reversed_id).expect("a valid reversed id");
    let amount = amount.map(|a| Amount::new(a).expect("a valid amount"));
    new_transfer(id, TransferKind::Reversal { reversed_id, amount })
}

/// `transfer` in another currency.
///
/// # Panics
/// If the transfer names no movement of its own (a post or void) or the currency is not valid.
pub fn with_currency(mut transfer: NewTransfer, currency: &str) -> NewTransfer {
    let currency = Currency::parse(currency).expect("a valid currency");
    match &mut transfer.kind {
        TransferKind::Immediate(m) | TransferKind::Pending { movement: m, .. } => m.currency = currency,
        _ => panic!("a post, void or reversal has no currency of its own"),
    }
    transfer
}

/// An immediate transfer or a hold as applied at `now`.
///
/// # Panics
/// If the transfer names no movement of its own.
pub fn committed(transfer: NewTransfer, now: OffsetDateTime) -> Transfer {
    let movement = transfer.kind.movement().cloned().expect("a transfer with its own movement");
    transfer.applied(movement, now)
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
        bounds: crate::account::Bounds::default(),
        effective_at: None,
        shards: crate::shard::ShardCount::ONE,
    }
}

pub fn eur() -> Currency {
    Currency::parse("EUR").expect("EUR is a currency")
}
