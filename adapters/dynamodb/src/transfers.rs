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

use ledger::linked::LinkedChain;
use ledger::{Decision, LedgerError, NewTransfer, TenantId, Transfer, TransferId};
use time::OffsetDateTime;

use crate::engine::{self, Request, State, Step, key};
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
        Ok(match self.apply(tenant, vec![request], now).await? {
            Created::New(mut one) => Created::New(one.remove(0)),
            Created::Replayed(mut one) => Created::Replayed(one.remove(0)),
        })
    }

    /// Applies a linked chain once, whole or not at all (see `ledger::linked`): every member
    /// committed, or every member rejected (one by its own rule, the others `linked_failed`). A
    /// retry of the same chain replays every outcome; a chain naming an id that holds anything
    /// else (another transfer, or the same one decided outside this chain) is an
    /// `IdempotencyConflict` naming `transfers[i]`'s fields, and writes nothing.
    pub async fn create_linked(
        &self,
        tenant: &TenantId,
        chain: LinkedChain,
        now: OffsetDateTime,
    ) -> Result<Created<Vec<Transfer>>, StoreError> {
        self.apply(tenant, chain.into_transfers(), now).await
    }

    /// The one synchronous path: read, expire what is due, plan, write under conditions, and on a
    /// cancelled transaction read and plan again, until `CONTENTION_BUDGET` runs out.
    async fn apply(
        &self,
        tenant: &TenantId,
        transfers: Vec<NewTransfer>,
        now: OffsetDateTime,
    ) -> Result<Created<Vec<Transfer>>, StoreError> {
        let requests: Vec<Request> =
            transfers.into_iter().map(|transfer| Request { transfer, owner: None }).collect();
        let started = Instant::now();
        let (mut use_cache, mut contended) = (requests.len() == 1, 0);
        while started.elapsed() < CONTENTION_BUDGET {
            let cached = if use_cache { self.cached_state(tenant, &requests[0].transfer) } else { None };
            let from_cache = cached.is_some();
            let state = match cached {
                Some(state) => state,
                None => {
                    let state = self.read_state(tenant, requests.iter().map(|r| &r.transfer)).await?;
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
            if let Some(answer) = held_answer(&steps, now) {
                return answer;
            }
            if from_cache && steps.iter().any(|s| matches!(s.decision, Decision::Reject(_))) {
                use_cache = false;
                continue;
            }
            let written = self.write_steps(tenant, &steps, &mut state.versions(), None).await?;
            let accounts: Vec<_> = steps
                .iter()
                .filter_map(|s| s.decision.outcome()?.movement.as_ref())
                .flat_map(|m| [&m.debit_account_id, &m.credit_account_id])
                .collect();
            if !written.cancelled {
                for account in accounts.into_iter().filter_map(|id| planner.account(id)) {
                    self.balances.put(tenant, account);
                }
                let outcomes = steps.iter().map(|s| s.decision.outcome().cloned());
                let outcomes: Option<Vec<Transfer>> = outcomes.collect();
                return outcomes.map(Created::New).ok_or_else(|| StoreError::Unexpected("no outcome".into()));
            }
            // Cancelled: an account moved, an id was taken, or another transaction held an item.
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
        let first = &requests[0].transfer.id;
        Err(StoreError::Unavailable(format!("accounts of transfer {first} stayed contended")))
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

/// The answer when ids of the request hold transfers already, so nothing is to be written: every
/// one of them replays (as it stands at `now`), or the request conflicts. `None`: all are new.
fn held_answer(steps: &[Step], now: OffsetDateTime) -> Option<Result<Created<Vec<Transfer>>, StoreError>> {
    let name = |i: usize, field: &str| {
        if steps.len() == 1 { field.to_owned() } else { format!("transfers[{i}].{field}") }
    };
    let mut replays = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        match &step.decision {
            Decision::Conflict { fields, .. } => {
                let fields = fields.iter().map(|f| name(i, f)).collect();
                return Some(Err(LedgerError::IdempotencyConflict { fields }.into()));
            }
            Decision::Replay(existing) => replays.push(existing.clone().observed(now)),
            Decision::Commit { .. } | Decision::Reject(_) | Decision::Expire { .. } => {}
        }
    }
    match replays.len() {
        0 => None,
        n if n == steps.len() => Some(Ok(Created::Replayed(replays))),
        // Some ids hold transfers decided apart from this chain: it cannot apply as asked.
        _ => {
            let fields = steps
                .iter()
                .enumerate()
                .filter(|(_, s)| matches!(s.decision, Decision::Replay(_)))
                .map(|(i, _)| name(i, "id"))
                .collect();
            Some(Err(LedgerError::IdempotencyConflict { fields }.into()))
        }
    }
}
