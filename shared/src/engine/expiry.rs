//! Expiring holds: on a read, before a refusal, and by the sweeper.
//!
//! A hold with a timeout is listed by its expiry instant, in each of its two accounts' listings,
//! in the write that applies it; its expiry unlists it, and a post or void leaves the listings to
//! whoever finds them due (they name a resolved hold, and are removed). The sweeper releases the
//! pending amounts of due holds: it lists what fell due since its mark and expires each hold
//! through the one loop, conditioned like every write (still `pending`, balances at the versions
//! read), so it races posts, voids and other sweeps safely.
//!
//! Nobody waits for the sweeper, and nobody is told "expired" before it is durable: whoever first
//! meets a pending hold past its time (a read of it, a post or void naming it, a read of an
//! account it holds money in, a refusal counting its pending amount) writes its expiry first. So
//! a post decided just before the deadline and landing just after it either lands first (and the
//! hold reads `posted` to everyone) or finds the hold expired and is refused `pending_expired`:
//! never both; and a hold past its time never lowers an available balance anyone reads nor
//! refuses a transfer.

use std::collections::HashMap;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use time::OffsetDateTime;

use super::book::{Book, DueHold, State, Step, Written};
use super::run::{Decided, Next, Path, RELEASE_AT_ONCE, Read, read_state, run};
use crate::ids::{AccountId, TenantId, TransferId};
use crate::plan::Planner;
use crate::port::{StoreError, Sweep};
use crate::transfer::{Transfer, TransferStatus};

/// How far behind its mark each sweep looks again: a hold whose write landed late (after a sweep
/// had passed its instant) is still found. Listings are removed once handled, so looking again
/// costs only the read.
pub const SWEEP_OVERLAP_SECONDS: i64 = 900;
/// Where the very first sweep starts.
const FIRST_SWEEP_SECONDS: i64 = 24 * 3600;
/// Holds expired at once by one sweep.
const SWEEP_CONCURRENCY: usize = 8;
/// Rounds of `RELEASE_AT_ONCE` holds a read of accounts releases before it answers.
const RELEASE_ROUNDS: usize = 10;

/// What an attempt to expire a hold found.
#[derive(Debug)]
pub(crate) enum Expiry {
    /// Released now, by this call.
    Released,
    /// Not pending (any more): posted, voided, or expired by someone else.
    Resolved(Box<Transfer>),
    /// No such transfer.
    Missing,
    /// Still pending, and not due by this clock.
    NotDue,
}

struct ExpireHold {
    id: TransferId,
}

#[async_trait]
impl Path for ExpireHold {
    type Answer = Expiry;

    async fn read<B: Book + ?Sized>(
        &mut self,
        book: &B,
        tenant: &TenantId,
        _now: OffsetDateTime,
    ) -> Result<Read<Self::Answer>, StoreError> {
        let mut found = book.read(tenant, std::slice::from_ref(&self.id), &[]).await?.transfers;
        let Some(stored) = found.remove(&self.id) else { return Ok(Read::Done(Expiry::Missing)) };
        if stored.transfer.status != TransferStatus::Pending {
            return Ok(Read::Done(Expiry::Resolved(Box::new(stored.transfer))));
        }
        let request = stored.transfer.request.clone();
        let known = HashMap::from([(self.id.clone(), stored)]);
        let state = read_state(book, tenant, &[request], false, known).await?;
        Ok(Read::Plan(Vec::new(), state))
    }

    fn expired(&mut self) -> Option<Self::Answer> {
        Some(Expiry::Released)
    }

    fn decided<B: Book + ?Sized>(
        &mut self,
        _book: &B,
        _tenant: &TenantId,
        _state: &State,
        _steps: Vec<Step>,
        _now: OffsetDateTime,
    ) -> Result<Decided<Self::Answer>, StoreError> {
        Ok(Decided::Answer(Expiry::NotDue))
    }

    fn written<B: Book + ?Sized>(
        &mut self,
        _book: &B,
        _tenant: &TenantId,
        _steps: &[Step],
        _planner: &Planner,
        _written: Written,
    ) -> Next<Self::Answer> {
        Next::Done(Expiry::NotDue)
    }

    fn gave_up(self) -> Result<Self::Answer, StoreError> {
        Err(StoreError::Unavailable(format!("hold {} stayed contended", self.id)))
    }
}

/// Releases hold `id` if it is still pending and due at `now`.
pub(crate) async fn expire_hold<B: Book>(
    book: &B,
    tenant: &TenantId,
    id: &TransferId,
    now: OffsetDateTime,
) -> Result<Expiry, StoreError> {
    run(book, tenant, ExpireHold { id: id.clone() }, now).await
}

/// The transfer as it stands at `now`; a hold pending past its time is expired first.
pub(crate) async fn get_transfer<B: Book>(
    book: &B,
    tenant: &TenantId,
    id: &TransferId,
    now: OffsetDateTime,
) -> Result<Transfer, StoreError> {
    let not_found = || StoreError::not_found("transfer", id);
    let mut found = book.read(tenant, std::slice::from_ref(id), &[]).await?.transfers;
    let transfer = found.remove(id).ok_or_else(not_found)?.transfer;
    if !transfer.is_due(now) {
        return Ok(transfer);
    }
    match expire_hold(book, tenant, id, now).await? {
        Expiry::Resolved(transfer) => Ok(*transfer),
        Expiry::Missing => Err(not_found()),
        Expiry::Released | Expiry::NotDue => Ok(transfer.observed(now)),
    }
}

/// Releases the holds of `accounts` that are pending past their time at `now` (found in the
/// accounts' own listings); removes the listings of those resolved meanwhile. How many it released.
pub(crate) async fn release_overdue<B: Book>(
    book: &B,
    tenant: &TenantId,
    accounts: &[AccountId],
    now: OffsetDateTime,
) -> Result<usize, StoreError> {
    let mut released = 0;
    for _ in 0..RELEASE_ROUNDS {
        let due = book.overdue_holds(tenant, accounts, now.unix_timestamp(), RELEASE_AT_ONCE).await?;
        let found = due.len();
        released += release_all(book, due, now).await?.iter().filter(|r| **r).count();
        if found < RELEASE_AT_ONCE {
            break;
        }
    }
    Ok(released)
}

/// Releases at most `limit` holds listed as due up to `now` that are still pending (fairly across
/// the listing's shards, `Book::due_holds`); removes the listings of those resolved meanwhile;
/// moves the sweeps' mark once every due listing was taken.
pub(crate) async fn sweep<B: Book>(book: &B, now: OffsetDateTime, limit: usize) -> Result<Sweep, StoreError> {
    let now_s = now.unix_timestamp();
    let swept_until = book.swept_until().await?.unwrap_or(now_s - FIRST_SWEEP_SECONDS);
    let (due, every) = book.due_holds(swept_until - SWEEP_OVERLAP_SECONDS, now_s, limit).await?;
    // Cut at the limit: the mark stays, and the next sweep takes what is left (what this one
    // handled is unlisted).
    let more = !every;
    let outcomes = release_all(book, due, now).await?;
    if !more {
        book.advance_sweep(now_s).await?;
    }
    let expired = outcomes.iter().filter(|e| **e).count();
    Ok(Sweep { expired, resolved: outcomes.len() - expired, more })
}

/// Releases each listed hold that is still pending and due at `now`, `SWEEP_CONCURRENCY` at a
/// time; removes the listings of those resolved meanwhile (a post or void leaves them). Whether
/// each was released by this call.
async fn release_all<B: Book>(
    book: &B,
    due: Vec<DueHold>,
    now: OffsetDateTime,
) -> Result<Vec<bool>, StoreError> {
    futures::stream::iter(due)
        .map(|hold| async move {
            match expire_hold(book, &hold.tenant, &hold.transfer, now).await? {
                Expiry::Released => Ok(true),
                Expiry::Resolved(_) | Expiry::Missing => book.unlist(&hold).await.map(|()| false),
                // Not due by this clock: a later sweep (its overlap) finds it again.
                Expiry::NotDue => Ok(false),
            }
        })
        .buffer_unordered(SWEEP_CONCURRENCY)
        .try_collect()
        .await
}
