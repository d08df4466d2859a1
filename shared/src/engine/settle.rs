//! Settling queued submissions (the worker's side), through the same loop as the sync path.
//!
//! A batch settles as if its transfers were applied one by one in submitted order, whatever the
//! delivery: a message only says "batch B has work"; the order comes from the batch's ids, and its
//! cursor says how many are settled. Every write moves the cursor only if it still stands where it
//! was read, so concurrent, duplicated or redriven deliveries of the same batch cooperate: each
//! transfer is applied once and counted once, in order.
//!
//! Single transfers and chains queued with `Prefer: respond-async` promise no order among
//! themselves; each settles its own claim, once (the claim's condition), netted with the others
//! of the delivery.

use std::collections::HashMap;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::book::{Book, Progress, Request, State, Step, StoredTransfer, Written};
use super::run::{Decided, Next, Path, Read, read_state};
use crate::batch::{Owner, Submission};
use crate::ids::{BatchId, TenantId, TransferId};
use crate::plan::{Decision, Planner};
use crate::port::{BatchRun, Settled, StoreError};
use crate::transfer::{NewTransfer, TransferStatus};

/// Transfers of a batch planned at once: one read of their ids and accounts.
pub const WINDOW: usize = 96;

/// How many transfers a queued path plans at once: the whole window while writes land; after a
/// cancelled write, one transfer (or one chain), then twice as many after each write that lands.
/// A large write touches many accounts and takes long to list and send, so beside a stream of
/// small writers on the same accounts it is cancelled again and again, and each try costs seconds
/// on a loaded store: halving would spend the budget (and the message's receives) on writes that
/// never land. One transfer commits as soon as a synchronous one would, and the run progresses.
#[derive(Debug)]
pub(crate) struct Window {
    limit: usize,
}

impl Window {
    pub(crate) fn new() -> Self {
        Self { limit: WINDOW }
    }

    /// How many of `requests` to plan now: at most the limit, never ending inside a linked chain.
    pub(crate) fn take(&self, requests: &[Request]) -> usize {
        if requests.len() <= self.limit {
            return requests.len();
        }
        // The chain holding the last request taken ends at the first member not linked onward.
        let last = self.limit - 1;
        requests[last..].iter().position(|r| !r.transfer.linked).map_or(requests.len(), |end| last + end + 1)
    }

    pub(crate) fn cancelled(&mut self) {
        self.limit = 1;
    }

    pub(crate) fn landed(&mut self) {
        self.limit = (self.limit * 2).min(WINDOW);
    }
}

impl Settled {
    pub fn of(decision: &Decision) -> Self {
        match decision {
            Decision::Commit { .. } | Decision::Expire { .. } => Settled::Committed,
            Decision::Reject(_) => Settled::Rejected(decision.outcome_code().to_owned()),
            Decision::Replay(_) | Decision::Conflict { .. } => Settled::AlreadySettled,
        }
    }
}

/// The state to plan `requests` on, given their ids' items read already.
async fn state_of<B: Book + ?Sized>(
    book: &B,
    tenant: &TenantId,
    requests: &[Request],
    claims: HashMap<TransferId, StoredTransfer>,
) -> Result<State, StoreError> {
    let transfers: Vec<NewTransfer> = requests.iter().map(|r| r.transfer.clone()).collect();
    read_state(book, tenant, &transfers, false, claims).await
}

pub(crate) struct SettleQueued {
    ids: Vec<TransferId>,
    owners: Vec<Owner>,
    settled: Vec<Option<Settled>>,
    /// Which transfer each planned request is.
    positions: Vec<usize>,
    window: Window,
}

impl SettleQueued {
    pub(crate) fn new(submissions: &[Submission]) -> Self {
        let (mut ids, mut owners) = (Vec::new(), Vec::new());
        for submission in submissions {
            for id in submission.transfer_ids() {
                ids.push(id.clone());
                owners.push(submission.owner(0));
            }
        }
        let settled = vec![None; ids.len()];
        Self { ids, owners, settled, positions: Vec::new(), window: Window::new() }
    }
}

#[async_trait]
impl Path for SettleQueued {
    type Answer = Vec<Option<Settled>>;

    async fn read<B: Book + ?Sized>(
        &mut self,
        book: &B,
        tenant: &TenantId,
        _now: OffsetDateTime,
    ) -> Result<Read<Self::Answer>, StoreError> {
        let pending: Vec<usize> = (0..self.ids.len()).filter(|i| self.settled[*i].is_none()).collect();
        if pending.is_empty() {
            return Ok(Read::Done(self.settled.clone()));
        }
        let mut wanted: Vec<TransferId> = pending.iter().map(|i| self.ids[*i].clone()).collect();
        wanted.sort();
        wanted.dedup();
        let claims = book.read(tenant, &wanted, &[]).await?.transfers;
        // The engine settles what is still its own queued claim, and replays (writes nothing for)
        // what is settled already or held by another submission that settles it.
        let (mut requests, mut positions) = (Vec::new(), Vec::new());
        for &i in &pending {
            match claims.get(&self.ids[i]) {
                Some(stored) => {
                    let transfer = stored.transfer.request.clone();
                    requests.push(Request { transfer, owner: Some(self.owners[i].clone()) });
                    positions.push(i);
                }
                // No claim: nothing to settle.
                None => self.settled[i] = Some(Settled::AlreadySettled),
            }
        }
        if requests.is_empty() {
            return Ok(Read::Done(self.settled.clone()));
        }
        // A submission's members are consecutive, so a cut that ends no chain ends no submission.
        let taken = self.window.take(&requests);
        requests.truncate(taken);
        positions.truncate(taken);
        self.positions = positions;
        let state = state_of(book, tenant, &requests, claims).await?;
        Ok(Read::Plan(requests, state))
    }

    fn decided<B: Book + ?Sized>(
        &mut self,
        _book: &B,
        _tenant: &TenantId,
        _state: &State,
        steps: Vec<Step>,
        _now: OffsetDateTime,
    ) -> Result<Decided<Self::Answer>, StoreError> {
        Ok(Decided::Write(steps))
    }

    fn written<B: Book + ?Sized>(
        &mut self,
        _book: &B,
        _tenant: &TenantId,
        steps: &[Step],
        _planner: &Planner,
        written: Written,
    ) -> Next<Self::Answer> {
        for (step, &i) in steps[..written.steps].iter().zip(&self.positions) {
            self.settled[i] = Some(Settled::of(&step.decision));
        }
        if written.cancelled {
            self.window.cancelled();
            Next::Contended
        } else if self.settled.iter().any(Option::is_none) {
            // Planned only part of what is pending (the window): the rest now.
            self.window.landed();
            Next::Again
        } else {
            Next::Done(self.settled.clone())
        }
    }

    /// What settled, and `None` for the rest: their messages come back.
    fn gave_up(self) -> Result<Self::Answer, StoreError> {
        Ok(self.settled)
    }
}

pub(crate) struct SettleBatch {
    batch: BatchId,
    ids: Option<Vec<TransferId>>,
    run: BatchRun,
    /// Requests planned in the current window.
    planned: usize,
    progress: Option<Progress>,
    window: Window,
    until: std::time::Instant,
}

impl SettleBatch {
    pub(crate) fn new(batch: &BatchId, until: std::time::Instant) -> Self {
        Self {
            batch: batch.clone(),
            ids: None,
            run: BatchRun::default(),
            planned: 0,
            progress: None,
            window: Window::new(),
            until,
        }
    }
}

/// Whether the step replays a transfer another submission has queued and not applied yet.
fn is_waiting(step: &Step) -> bool {
    matches!(&step.decision, Decision::Replay(t) if t.status == TransferStatus::Queued)
}

#[async_trait]
impl Path for SettleBatch {
    type Answer = BatchRun;

    async fn read<B: Book + ?Sized>(
        &mut self,
        book: &B,
        tenant: &TenantId,
        now: OffsetDateTime,
    ) -> Result<Read<Self::Answer>, StoreError> {
        if self.ids.is_none() {
            match book.batch_ids(tenant, &self.batch).await? {
                Some(ids) => self.ids = Some(ids),
                // Never accepted: nothing to do.
                None => {
                    self.run.done = true;
                    return Ok(Read::Done(std::mem::take(&mut self.run)));
                }
            }
        }
        let ids = self.ids.as_deref().unwrap_or_default();
        let status = book.batch_progress(tenant, &self.batch).await?;
        let cursor = status.cursor();
        let start = cursor as usize;
        if start >= ids.len() {
            self.run.done = true;
            return Ok(Read::Done(std::mem::take(&mut self.run)));
        }
        let window = &ids[start..ids.len().min(start + WINDOW)];
        let claims = book.read(tenant, window, &[]).await?.transfers;
        let mut requests = Vec::with_capacity(window.len());
        for (offset, id) in window.iter().enumerate() {
            let Some(stored) = claims.get(id) else {
                let batch = &self.batch;
                return Err(StoreError::Corrupt(format!("transfer {id} of batch {batch} has no item")));
            };
            let owner = Owner::Batch { batch: self.batch.clone(), position: (start + offset) as u32 };
            requests.push(Request { transfer: stored.transfer.request.clone(), owner: Some(owner) });
        }
        // A linked chain is planned and written whole: the window ends where a chain does.
        if start + window.len() < ids.len() {
            requests.truncate(requests.iter().rposition(|r| !r.transfer.linked).map_or(0, |last| last + 1));
        }
        requests.truncate(self.window.take(&requests));
        self.planned = requests.len();
        self.progress =
            Some(Progress { batch: self.batch.clone(), cursor, batch_as_read: status.batch(), now });
        let state = state_of(book, tenant, &requests, claims).await?;
        Ok(Read::Plan(requests, state))
    }

    fn decided<B: Book + ?Sized>(
        &mut self,
        _book: &B,
        _tenant: &TenantId,
        _state: &State,
        mut steps: Vec<Step>,
        _now: OffsetDateTime,
    ) -> Result<Decided<Self::Answer>, StoreError> {
        // A transfer whose id another submission holds, not applied yet, is waited for: in order,
        // nothing after it (nor any of its chain) may go ahead of it.
        if let Some(mut waiting) = steps.iter().position(is_waiting) {
            while waiting > 0 && steps[waiting - 1].linked {
                waiting -= 1;
            }
            steps.truncate(waiting);
        }
        if steps.is_empty() {
            return Ok(Decided::Answer(std::mem::take(&mut self.run)));
        }
        Ok(Decided::Write(steps))
    }

    fn progress(&mut self) -> Option<&mut Progress> {
        self.progress.as_mut()
    }

    fn until(&self) -> Option<std::time::Instant> {
        Some(self.until)
    }

    fn written<B: Book + ?Sized>(
        &mut self,
        _book: &B,
        _tenant: &TenantId,
        steps: &[Step],
        _planner: &Planner,
        written: Written,
    ) -> Next<Self::Answer> {
        self.run.settled.extend(steps[..written.steps].iter().map(|s| Settled::of(&s.decision)));
        if written.cancelled {
            self.window.cancelled();
            Next::Contended
        } else if written.steps < self.planned {
            // Stopped short of the window (a transfer waited for): come back later.
            Next::Done(std::mem::take(&mut self.run))
        } else {
            self.window.landed();
            Next::Again
        }
    }

    /// What this run settled, not done: its message comes back.
    fn gave_up(self) -> Result<Self::Answer, StoreError> {
        Ok(self.run)
    }
}
