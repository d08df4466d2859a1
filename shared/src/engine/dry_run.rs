//! The dry run: a sequence decided by the one planner on one consistent read, exactly as the
//! synchronous path would decide it, and nothing written.

use std::collections::HashMap;

use time::OffsetDateTime;

use super::book::{Book, Request, plan};
use super::run::{RELEASE_AT_ONCE, overdue_state, read_state};
use crate::account::AccountBalance;
use crate::error::LedgerError;
use crate::ids::TenantId;
use crate::plan::{Decision, Planner};
use crate::port::{DryRun, StoreError};
use crate::transfer::NewTransfer;

pub(crate) async fn dry_run<B: Book + ?Sized>(
    book: &B,
    tenant: &TenantId,
    transfers: Vec<NewTransfer>,
    now: OffsetDateTime,
) -> Result<DryRun, StoreError> {
    let mut state = read_state(book, tenant, &transfers, true, HashMap::new()).await?;
    let requests: Vec<Request> =
        transfers.into_iter().map(|transfer| Request { transfer, owner: None }).collect();
    // The holds past their time that hold money in these accounts are released first, as a real
    // run releases them before a refusal or a read of the account (their listings read, nothing
    // written).
    let holding: Vec<_> =
        state.accounts.iter().filter(|a| a.balances.holds_pending()).map(|a| a.id.clone()).collect();
    if !holding.is_empty() {
        let due = book.overdue_holds(tenant, &holding, now.unix_timestamp(), RELEASE_AT_ONCE).await?;
        let (holds, _) = overdue_state(book, tenant, &due).await?;
        for account in holds.accounts {
            if !state.accounts.iter().any(|a| a.id == account.id) {
                state.accounts.push(account);
            }
        }
        state.transfers.extend(holds.transfers);
    }
    // A hold past its time is released before anything is decided on it, as a real run writes it.
    let mut expiring = Planner::new(state.accounts.iter().cloned(), now);
    let expired: Vec<_> = state.stored().filter_map(|hold| expiring.expire(hold)).collect();
    for decision in expired {
        if let Some(hold) = decision.outcome()
            && let Some(stored) = state.transfers.get_mut(&hold.request.id)
        {
            stored.transfer = hold.clone();
        }
    }
    for account in &mut state.accounts {
        if let Some(released) = expiring.account(&account.id) {
            *account = released.clone();
        }
    }
    let (steps, planner) = plan(&state, &requests, now, None);
    let mut outcomes = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        match &step.decision {
            Decision::Conflict { fields, .. } => {
                let name =
                    |f: &String| if steps.len() == 1 { f.clone() } else { format!("transfers[{i}].{f}") };
                return Err(
                    LedgerError::IdempotencyConflict { fields: fields.iter().map(name).collect() }.into()
                );
            }
            decision => outcomes.extend(decision.outcome().map(|t| t.clone().observed(now))),
        }
    }
    let mut accounts: Vec<AccountBalance> =
        state.accounts.iter().filter_map(|read| planner.account(&read.id).cloned()).collect();
    accounts.sort_by(|a, b| a.id.cmp(&b.id));
    accounts.dedup_by(|a, b| a.id == b.id);
    Ok(DryRun { transfers: outcomes, accounts })
}
