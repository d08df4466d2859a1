//! Settling queued submissions (the worker's side), through the same engine as the sync path.
//!
//! A batch settles as if its transfers were applied one by one in submitted order, whatever the
//! delivery: the message only says "batch B has work"; the order comes from the batch's ids item,
//! and its progress item's cursor says how many are settled. Every transaction moves the cursor
//! only if it still stands where it was read, so concurrent, duplicated or redriven deliveries of
//! the same batch cooperate: each transfer is applied once and counted once, in order.
//!
//! Single transfers queued with `Prefer: respond-async` promise no order among themselves; each
//! settles its own claim, once (the claim's condition), netted with the others of the delivery.

use std::collections::{BTreeSet, HashMap};

use ledger::{BatchId, Decision, NewTransfer, Submission, TenantId, TransferId, TransferStatus};
use time::OffsetDateTime;

use crate::engine::{self, Progress, Request, State, Step, key};
use crate::items::{self, Item};
use crate::reads::MAX_READ_KEYS;
use crate::retry::{MAX_ATTEMPTS, backoff};
use crate::{DynamoStore, StoreError, keys};

/// How a queued transfer settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settled {
    Committed,
    /// Refused by a rule (its code).
    Rejected(String),
    /// Settled already (an earlier delivery, or the request that first held its id): nothing written.
    AlreadySettled,
}

impl Settled {
    fn of(step: &Step) -> Self {
        match &step.decision {
            Decision::Commit { .. } | Decision::Expire { .. } => Settled::Committed,
            Decision::Reject(_) => Settled::Rejected(step.decision.outcome_code().to_owned()),
            Decision::Replay(_) | Decision::Conflict { .. } => Settled::AlreadySettled,
        }
    }
}

/// What one run over a batch did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchRun {
    /// The transfers this run settled, in order.
    pub settled: Vec<Settled>,
    /// Every transfer of the batch is settled (or the batch was never accepted: nothing to do).
    pub done: bool,
}

/// Transfers of a batch planned at once: one read of their ids and accounts (100 keys a call).
const WINDOW: usize = 96;

impl DynamoStore {
    /// Settles `batch` from its cursor on, in order, as far as it can now. Not done means: try again
    /// later (the store stayed contended, or a transfer's id is held by a submission not applied yet).
    pub async fn settle_batch(
        &self,
        tenant: &TenantId,
        batch: &BatchId,
        now: OffsetDateTime,
    ) -> Result<BatchRun, StoreError> {
        let mut run = BatchRun::default();
        let Some(ids) = self.batch_ids(tenant, batch).await? else {
            run.done = true;
            return Ok(run);
        };
        let submission = Submission::Batch(batch.clone());
        let mut contended = 0;
        while contended < MAX_ATTEMPTS {
            let status = self.batch_status(tenant, batch).await?;
            let cursor = status.counts.total.saturating_sub(status.counts.queued);
            let start = cursor as usize;
            if start >= ids.len() {
                run.done = true;
                return Ok(run);
            }
            let window = &ids[start..ids.len().min(start + WINDOW)];
            let claims = self.transfer_items(tenant, window).await?;
            let mut requests = Vec::with_capacity(window.len());
            for (offset, id) in window.iter().enumerate() {
                let item = claims.get(id);
                let Some(item) = item else {
                    return Err(StoreError::Corrupt(format!("transfer {id} of batch {batch} has no item")));
                };
                let transfer = items::transfer_from(item)?.request;
                let owner = keys::owner(&submission, (start + offset) as u32);
                requests.push(Request { transfer, owner: Some(owner) });
            }
            // A linked chain is planned and written whole: the window ends where a chain does.
            if start + window.len() < ids.len() {
                requests
                    .truncate(requests.iter().rposition(|r| !r.transfer.linked).map_or(0, |last| last + 1));
            }
            let planned = requests.len();
            let state = self.read_accounts(tenant, requests.iter().map(|r| &r.transfer), claims).await?;
            if self.expire_due(tenant, &state, now).await?.is_some() {
                contended += 1;
                continue;
            }
            let (mut steps, _) = engine::plan(&state, &requests, now)?;
            // A transfer whose id another submission holds, not applied yet, is waited for: in
            // order, nothing after it (nor any of its chain) may go ahead of it.
            if let Some(mut waiting) = steps.iter().position(is_waiting) {
                while waiting > 0 && requests[waiting - 1].transfer.linked {
                    waiting -= 1;
                }
                steps.truncate(waiting);
            }
            if steps.is_empty() {
                return Ok(run);
            }
            let mut progress = Progress { batch: batch.clone(), cursor, batch_as_read: status.batch(), now };
            let written =
                self.write_steps(tenant, &steps, &mut state.versions(), Some(&mut progress)).await?;
            run.settled.extend(steps[..written.steps].iter().map(Settled::of));
            if written.cancelled {
                contended += 1;
                backoff(contended).await;
            } else if written.steps < planned {
                return Ok(run);
            }
        }
        Ok(run)
    }

    /// Settles single transfers and linked chains queued with `Prefer: respond-async` (each chain
    /// whole). Returns, for each of their transfers in order, how it settled, or `None` if it could
    /// not be settled now (deliver it again).
    pub async fn settle_transfers(
        &self,
        tenant: &TenantId,
        submissions: &[Submission],
        now: OffsetDateTime,
    ) -> Result<Vec<Option<Settled>>, StoreError> {
        let (mut ids, mut owners) = (Vec::new(), Vec::new());
        for submission in submissions {
            for id in submission.transfer_ids() {
                ids.push(id.clone());
                owners.push(keys::owner(submission, 0));
            }
        }
        let mut settled: Vec<Option<Settled>> = vec![None; ids.len()];
        for attempt in 0..MAX_ATTEMPTS {
            let pending: Vec<usize> = (0..ids.len()).filter(|i| settled[*i].is_none()).collect();
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                backoff(attempt).await;
            }
            let wanted: Vec<TransferId> = pending.iter().map(|i| ids[*i].clone()).collect();
            let claims = self.transfer_items(tenant, &wanted).await?;
            // The engine settles what is still its own queued claim, and replays (writes nothing
            // for) what is settled already or held by another submission that settles it.
            let (mut requests, mut positions) = (Vec::new(), Vec::new());
            for &i in &pending {
                match claims.get(&ids[i]) {
                    Some(item) => {
                        let transfer = items::transfer_from(item)?.request;
                        requests.push(Request { transfer, owner: Some(owners[i].clone()) });
                        positions.push(i);
                    }
                    // No claim: nothing to settle.
                    None => settled[i] = Some(Settled::AlreadySettled),
                }
            }
            if requests.is_empty() {
                break;
            }
            let state = self.read_accounts(tenant, requests.iter().map(|r| &r.transfer), claims).await?;
            if self.expire_due(tenant, &state, now).await?.is_some() {
                continue;
            }
            let (steps, _) = engine::plan(&state, &requests, now)?;
            let written = self.write_steps(tenant, &steps, &mut state.versions(), None).await?;
            for (step, &i) in steps[..written.steps].iter().zip(&positions) {
                settled[i] = Some(Settled::of(step));
            }
            if !written.cancelled {
                break;
            }
        }
        Ok(settled)
    }

    /// The transfer items of `ids` that exist, by id.
    pub(crate) async fn transfer_items(
        &self,
        tenant: &TenantId,
        ids: &[TransferId],
    ) -> Result<HashMap<TransferId, Item>, StoreError> {
        let unique: BTreeSet<&TransferId> = ids.iter().collect();
        let wanted: Vec<Item> =
            unique.into_iter().map(|id| key(keys::transfer_pk(tenant, id), keys::TRANSFER_SK)).collect();
        let mut found = HashMap::with_capacity(wanted.len());
        for chunk in wanted.chunks(MAX_READ_KEYS) {
            for item in self.batch_get(chunk.to_vec()).await? {
                found.insert(items::transfer_from(&item)?.request.id, item);
            }
        }
        Ok(found)
    }

    /// The state to plan `transfers` on, given their ids' items already read.
    async fn read_accounts<'a>(
        &self,
        tenant: &TenantId,
        transfers: impl IntoIterator<Item = &'a NewTransfer>,
        claims: HashMap<TransferId, Item>,
    ) -> Result<State, StoreError> {
        let mut state = self.read_balances(tenant, transfers).await?;
        state.transfers.extend(claims);
        Ok(state)
    }
}

/// Whether the step replays a transfer another submission has queued and not applied yet.
fn is_waiting(step: &Step) -> bool {
    matches!(&step.decision, Decision::Replay(t) if t.status == TransferStatus::Queued)
}
