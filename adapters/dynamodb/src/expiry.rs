//! Expiring holds: the sweeper's side.
//!
//! A hold with a timeout is listed by its expiry instant (`keys::expiry_pk`) in the same transaction
//! that applies it, and unlisted in the one that resolves it, so the listing never misses a hold
//! nor keeps a resolved one for long. The sweeper releases the pending amounts of due holds: it
//! lists what fell due since its cursor and expires each hold through the engine, conditioned like
//! every write (still `pending`, balances at the versions read), so it races posts, voids and other
//! sweeps safely.
//!
//! Nobody waits for the sweeper, and nobody is told "expired" before it is durable: whoever first
//! meets a pending hold past its time (a read of it, a post or void naming it) writes its expiry
//! first, through the same conditional step. So a post decided just before the deadline and
//! landing just after it either lands first (and the hold reads `posted` to everyone) or finds the
//! hold expired and is refused `pending_expired`: never both.

use futures::{StreamExt, TryStreamExt};
use ledger::{Planner, TenantId, Transfer, TransferId, TransferStatus};
use time::OffsetDateTime;

use crate::engine::{State, Step, Written, key};
use crate::error::moot_unless_written;
use crate::items::{self, Item, n, s};
use crate::retry::{MAX_ATTEMPTS, backoff};
use crate::{DynamoStore, StoreError, keys};

/// How far behind its cursor each sweep looks again: a hold whose transaction landed late (after a
/// sweep had passed its instant) is still found. Listings are deleted once handled, so looking
/// again costs only the query.
pub const SWEEP_OVERLAP_SECONDS: i64 = 900;
/// Where the very first sweep starts.
const FIRST_SWEEP_SECONDS: i64 = 24 * 3600;
/// Holds expired at once by one sweep.
const CONCURRENCY: usize = 8;

/// What one sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Holds released by this sweep.
    pub expired: usize,
    /// Listings of holds resolved meanwhile (posted, voided, or expired by another sweep), removed.
    pub resolved: usize,
}

/// The expiry listing item of `transfer`, if it is a pending hold with a timeout.
pub fn listing(tenant: &TenantId, transfer: &Transfer) -> Option<Item> {
    if transfer.status != TransferStatus::Pending {
        return None;
    }
    let mut item = listing_key(tenant, transfer)?;
    item.insert("tenant".into(), s(tenant.as_str()));
    item.insert("transfer_id".into(), s(transfer.request.id.as_str()));
    Some(item)
}

/// The key of the listing of `hold`, if it has a timeout.
pub(crate) fn listing_key(tenant: &TenantId, hold: &Transfer) -> Option<Item> {
    let at = hold.expires_at()?.unix_timestamp();
    let id = &hold.request.id;
    Some(key(keys::expiry_pk(at, keys::expiry_shard(tenant, id)), &keys::expiry_sk(at, tenant, id)))
}

impl DynamoStore {
    /// Releases every hold that fell due up to `now` and is still pending. Safe to run concurrently
    /// and repeatedly: each hold is released at most once.
    pub async fn expire_due_holds(&self, now: OffsetDateTime) -> Result<Sweep, StoreError> {
        let now_s = now.unix_timestamp();
        let cursor = self.get(key(keys::SWEEP_PK.into(), keys::SWEEP_SK)).await?;
        let swept_until = cursor
            .as_ref()
            .and_then(|c| c.get("swept_until")?.as_n().ok()?.parse::<i64>().ok())
            .unwrap_or(now_s - FIRST_SWEEP_SECONDS);
        let from = swept_until - SWEEP_OVERLAP_SECONDS;
        let mut due = Vec::new();
        for hour in from.div_euclid(3600)..=now_s.div_euclid(3600) {
            for shard in 0..keys::EXPIRY_SHARDS {
                due.extend(self.listed(keys::expiry_pk(hour * 3600, shard), from, now_s).await?);
            }
        }
        let outcomes: Vec<bool> = futures::stream::iter(due)
            .map(|(tenant, id, listing)| async move {
                match self.expire_hold(&tenant, &id, now).await? {
                    Expiry::Released => Ok(true),
                    // Its own resolution removed the listing, unless it was a sweep of a hold
                    // resolved by a read or a post: remove what is left.
                    Expiry::Resolved(_) | Expiry::Missing => self.unlist(listing).await.map(|()| false),
                    // Not due by this clock: a later sweep (its overlap) finds it again.
                    Expiry::NotDue => Ok(false),
                }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        let moved = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::SWEEP_PK.into(), keys::SWEEP_SK)))
            .update_expression("SET swept_until = :now")
            .condition_expression("attribute_not_exists(swept_until) OR swept_until < :now")
            .expression_attribute_values(":now", n(now_s))
            .send()
            .await;
        // A failed condition: a later sweep moved the cursor further already.
        moot_unless_written(moved)?;
        let expired = outcomes.iter().filter(|e| **e).count();
        Ok(Sweep { expired, resolved: outcomes.len() - expired })
    }

    /// The listings in partition `pk` due from `from` to `to` (unix seconds, inclusive).
    async fn listed(
        &self,
        pk: String,
        from: i64,
        to: i64,
    ) -> Result<Vec<(TenantId, TransferId, Item)>, StoreError> {
        let pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":from", s(keys::expiry_sk_bound(from)))
            .expression_attribute_values(":to", s(keys::expiry_sk_bound(to + 1)))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        let listed: Vec<Item> = pages.try_collect().await?;
        listed
            .into_iter()
            .map(|item| {
                let field =
                    |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                let tenant = TenantId::parse(field("tenant"));
                let id = TransferId::parse(field("transfer_id"));
                let listing = key(field(keys::PK), &field(keys::SK));
                match (tenant, id) {
                    (Ok(tenant), Ok(id)) => Ok((tenant, id, listing)),
                    _ => Err(StoreError::Corrupt(format!("expiry listing {}", field(keys::SK)))),
                }
            })
            .collect()
    }

    /// Writes the expiry of every hold in `state` that is pending past its time at `now`, before
    /// anything is decided on it. `None` if none is due; otherwise how far the write got (a
    /// cancelled one means something moved: read again).
    pub(crate) async fn expire_due(
        &self,
        tenant: &TenantId,
        state: &State,
        now: OffsetDateTime,
    ) -> Result<Option<Written>, StoreError> {
        let mut planner = Planner::new(state.accounts.iter().cloned(), now);
        let steps: Vec<Step> = state
            .stored()?
            .iter()
            .filter_map(|hold| planner.expire(hold))
            .map(|decision| Step { decision, claim: None, linked: false, correlation: None })
            .collect();
        if steps.is_empty() {
            return Ok(None);
        }
        self.write_steps(tenant, &steps, &mut state.versions(), None).await.map(Some)
    }

    /// Releases hold `id` if it is still pending and due.
    pub(crate) async fn expire_hold(
        &self,
        tenant: &TenantId,
        id: &TransferId,
        now: OffsetDateTime,
    ) -> Result<Expiry, StoreError> {
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let Some(item) = self.get(key(keys::transfer_pk(tenant, id), keys::TRANSFER_SK)).await? else {
                return Ok(Expiry::Missing);
            };
            let hold = items::transfer_from(&item)?;
            if hold.status != TransferStatus::Pending {
                return Ok(Expiry::Resolved(Box::new(hold)));
            }
            let mut state = self.read_balances(tenant, [&hold.request]).await?;
            state.transfers.insert(id.clone(), item);
            match self.expire_due(tenant, &state, now).await? {
                None => return Ok(Expiry::NotDue),
                Some(written) if !written.cancelled => {
                    tracing::info!(tenant = %tenant, transferId = %id, "hold expired");
                    return Ok(Expiry::Released);
                }
                Some(_) => {}
            }
        }
        Err(StoreError::Unavailable(format!("hold {id} stayed contended")))
    }

    async fn unlist(&self, listing: Item) -> Result<(), StoreError> {
        self.client.delete_item().table_name(&self.table).set_key(Some(listing)).send().await?;
        Ok(())
    }
}

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
