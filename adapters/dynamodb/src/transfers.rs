//! Synchronous transfers: the engine (`engine`) on a sequence of one, whose id must be new.
//!
//! A transfer is applied by ONE TransactWriteItems: put the transfer (only if its id is new),
//! update both accounts (only if each is still at the version read), put one entry on each. The
//! consistent read before it supplies the versions and the balances after; it decides nothing on
//! its own, since a stale read makes the transaction's conditions fail and the whole attempt is
//! redone. So no read-then-write race can move money twice or overdraw an account.
//!
//! When both accounts' latest states are in the balance cache (this store wrote or read them a
//! moment ago), the transfer goes straight to the write with those versions: one request. A stale
//! entry fails the conditions like a stale read does; a refusal is never decided on cached state.

use std::time::{Duration, Instant};

use ledger::{Decision, LedgerError, NewTransfer, TenantId, Transfer, TransferId};
use time::OffsetDateTime;

use crate::engine::{self, Request, State, key};
use crate::expiry::Expiry;
use crate::items;
use crate::retry::backoff;
use crate::{Created, DynamoStore, StoreError, keys};

/// How long a synchronous transfer keeps retrying transactions that met other writers before the
/// store is reported unavailable: contention is waited out, not answered with an error. Under the
/// API function's 10 s timeout (template.yaml), with room for the last attempt.
pub const CONTENTION_BUDGET: Duration = Duration::from_secs(8);

impl DynamoStore {
    /// Applies `request` once. Returns the recorded transfer: committed, or rejected by a business
    /// rule (a rejection is recorded too, and the id is spent). A retry of an identical request
    /// returns the id's outcome as `Created::Replayed` (status `queued` if a queued submission holds
    /// it and has not applied it yet); a request that reuses the id with other fields is an
    /// `IdempotencyConflict`.
    pub async fn create_transfer(
        &self,
        tenant: &TenantId,
        request: NewTransfer,
        now: OffsetDateTime,
    ) -> Result<Created<Transfer>, StoreError> {
        let requests = [Request { transfer: request, owner: None }];
        let request = &requests[0].transfer;
        let started = Instant::now();
        let (mut use_cache, mut contended) = (true, 0);
        while started.elapsed() < CONTENTION_BUDGET {
            let cached = if use_cache { self.cached_state(tenant, request) } else { None };
            let from_cache = cached.is_some();
            let state = match cached {
                Some(state) => state,
                None => {
                    let state = self.read_state(tenant, [request]).await?;
                    if self.expire_due(tenant, &state, now).await?.is_some() {
                        continue;
                    }
                    for account in &state.accounts {
                        self.balances.put(tenant, account);
                    }
                    state
                }
            };
            let (steps, planner) = engine::plan(&state, &requests, now)?;
            match &steps[0].decision {
                Decision::Replay(existing) => return Ok(Created::Replayed(existing.clone().observed(now))),
                Decision::Conflict { fields, .. } => {
                    return Err(LedgerError::IdempotencyConflict { fields: fields.clone() }.into());
                }
                Decision::Reject(_) if from_cache => {
                    use_cache = false;
                    continue;
                }
                Decision::Commit { .. } | Decision::Reject(_) | Decision::Expire { .. } => {}
            }
            let written = self.write_steps(tenant, &steps, &mut state.versions(), None).await?;
            let movement = steps[0].decision.outcome().and_then(|t| t.movement.as_ref());
            let accounts: Vec<_> =
                movement.into_iter().flat_map(|m| [&m.debit_account_id, &m.credit_account_id]).collect();
            if !written.cancelled {
                for account in accounts.into_iter().filter_map(|id| planner.account(id)) {
                    self.balances.put(tenant, account);
                }
                let outcome = steps[0].decision.outcome().cloned();
                return outcome.map(Created::New).ok_or_else(|| StoreError::Unexpected("no outcome".into()));
            }
            // Cancelled: an account moved, the id was taken, or another transaction held an item.
            for id in accounts {
                self.balances.forget(tenant, id);
            }
            if from_cache {
                use_cache = false;
            } else {
                contended += 1;
                backoff(contended).await;
            }
        }
        Err(StoreError::Unavailable(format!("accounts of transfer {} stayed contended", request.id)))
    }

    /// One strongly consistent GetItem of the transfer's item: applied, rejected or still queued;
    /// a hold as it stands at `now`. A hold pending past its time is expired first (see `expiry`),
    /// so a read never shows `expired` for a hold that a post in flight then posts.
    pub async fn get_transfer(
        &self,
        tenant: &TenantId,
        id: &TransferId,
        now: OffsetDateTime,
    ) -> Result<Transfer, StoreError> {
        let not_found = || LedgerError::NotFound { what: "transfer", id: id.to_string() }.into();
        let item = self.get(key(keys::transfer_pk(tenant, id), keys::TRANSFER_SK)).await?;
        let transfer = items::transfer_from(&item.ok_or_else(not_found)?)?;
        if !transfer.is_due(now) {
            return Ok(transfer);
        }
        match self.expire_hold(tenant, id, now).await? {
            Expiry::Resolved(transfer) => Ok(*transfer),
            Expiry::Missing => Err(not_found()),
            Expiry::Released | Expiry::NotDue => Ok(transfer.observed(now)),
        }
    }

    /// Both accounts' cached states, as a state that has not read the transfer id (its write puts
    /// the transfer only if the id is new).
    /// A post or void names its accounts through its hold, which only a read finds: never cached.
    fn cached_state(&self, tenant: &TenantId, request: &NewTransfer) -> Option<State> {
        let movement = request.kind.movement()?;
        let debit = self.balances.get(tenant, &movement.debit_account_id)?;
        let credit = self.balances.get(tenant, &movement.credit_account_id)?;
        Some(State { accounts: vec![debit, credit], ..State::default() })
    }
}
