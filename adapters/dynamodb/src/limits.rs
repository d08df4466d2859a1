//! Per-tenant request limits on DynamoDB. A tenant's bucket is one item holding its TAT
//! (`ledger::rate`), and admitting a request is one conditional UpdateItem on it: `SET tat = :next`
//! while the bucket is full, `SET tat = tat + :spend` while it is not and has room. Both are atomic,
//! so API instances running at once never admit more than the limit between them, with no read
//! before the write. A refusal's failed condition returns the item, so the instance learns the TAT
//! and refuses that tenant locally (no call) until its bucket can have room again, and at least
//! `HOLD_OFF` (plus jitter, so that instances do not all come back at once): a flood costs the
//! table at most about 7 writes a second per instance, not one per request.
//!
//! The item is written once per admitted request (twice when this instance's view of the bucket
//! was stale: the first write's condition fails and returns the real TAT), so a tenant's rate is at
//! most `ledger::rate::MAX_PER_SECOND`, under the 1,000 writes a second one item sustains.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use ledger::{RateLimit, TenantId, Verdict};
use rand::Rng;
use time::OffsetDateTime;

use crate::engine::key;
use crate::items::{n, number};
use crate::{DynamoStore, StoreError, keys};

const TAT: &str = "tat";
/// Writes one admission may try before it counts as refused (each failure returns the bucket's
/// current TAT, so a second try is on fresh state; more fail only under a race on the same bucket).
const TRIES: usize = 3;
/// After the store refused a tenant, how long this instance refuses it without asking, at least
/// (up to twice that, with jitter).
const HOLD_OFF: Duration = Duration::from_millis(100);
/// Tenants remembered before the idle ones are forgotten.
const FORGET_ABOVE: usize = 1_024;

/// A request's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    Limited { retry_after: Duration },
}

/// What this instance knows of a tenant's bucket: a TAT it saw (the real one is never earlier),
/// and until when it refuses the tenant without asking the store.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    tat: i128,
    hold_off_until: i128,
}

/// The limit every tenant gets, and the buckets this instance has seen. Clones share what was seen.
#[derive(Clone, Debug)]
pub struct TenantLimits {
    store: DynamoStore,
    limit: RateLimit,
    seen: Arc<Mutex<HashMap<TenantId, Seen>>>,
}

impl TenantLimits {
    pub fn new(store: DynamoStore, limit: RateLimit) -> Self {
        Self { store, limit, seen: Arc::default() }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    fn seen(&self, tenant: &TenantId) -> Option<Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).get(tenant).copied()
    }

    /// Records a TAT seen at `now` and, after a refusal, holds the tenant off.
    fn remember(&self, tenant: &TenantId, tat: i128, now: i128, refused: bool) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= FORGET_ABOVE {
            // Tenants whose buckets are full again tell nothing: keep the busy ones only.
            seen.retain(|_, known| known.tat > now || known.hold_off_until > now);
        }
        let known = seen.entry(tenant.clone()).or_default();
        known.tat = known.tat.max(tat);
        if refused {
            let base = HOLD_OFF.as_nanos() as i128;
            known.hold_off_until = now + base + rand::rng().random_range(0..base);
        }
    }

    /// Spends `operations` of `tenant`'s bucket at `now`, or says how long to wait.
    pub async fn admit(
        &self,
        tenant: &TenantId,
        operations: u32,
        now: OffsetDateTime,
    ) -> Result<Admission, StoreError> {
        let now = now.unix_timestamp_nanos();
        let seen = self.seen(tenant);
        let mut known = seen.map(|s| s.tat);
        if let Some(until) = seen.map(|s| s.hold_off_until).filter(|until| *until > now) {
            let held = Duration::from_nanos((until - now) as u64);
            let retry_after = match self.limit.decide(known, now, operations) {
                Verdict::Refuse { retry_after } => retry_after.max(held),
                Verdict::Admit { .. } => held,
            };
            return Ok(Admission::Limited { retry_after });
        }
        for attempt in 0..TRIES {
            let next = match self.limit.decide(known, now, operations) {
                Verdict::Refuse { retry_after } => {
                    // Held off only when the store said so: a refusal on what this instance
                    // already knew cost no write.
                    self.remember(tenant, known.unwrap_or(now), now, attempt > 0);
                    return Ok(Admission::Limited { retry_after });
                }
                Verdict::Admit { tat } => tat,
            };
            match self.write(tenant, known.filter(|tat| *tat > now), now, next).await? {
                Ok(tat) => {
                    self.remember(tenant, tat, now, false);
                    return Ok(Admission::Admitted);
                }
                Err(current) => known = current,
            }
        }
        // Raced by other instances on every try: as busy as refused.
        self.remember(tenant, known.unwrap_or(now), now, true);
        Ok(Admission::Limited { retry_after: HOLD_OFF })
    }

    /// One conditional write moving the bucket to `next`: from a full bucket if `busy_until` is
    /// `None`, else by the spend from a TAT still in the future with room for it. `Err` holds the
    /// TAT the bucket really has when the condition failed.
    async fn write(
        &self,
        tenant: &TenantId,
        busy_until: Option<i128>,
        now: i128,
        next: i128,
    ) -> Result<Result<i128, Option<i128>>, StoreError> {
        let update = self
            .store
            .client
            .update_item()
            .table_name(&self.store.table)
            .set_key(Some(key(keys::limit_pk(tenant), keys::LIMIT_SK)))
            .expression_attribute_names("#tat", TAT)
            .expression_attribute_values(":now", n(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let update = match busy_until {
            None => update
                .update_expression("SET #tat = :next")
                .condition_expression("attribute_not_exists(#tat) OR #tat <= :now")
                .expression_attribute_values(":next", n(next)),
            Some(tat) => {
                let spend = next - tat;
                update
                    .update_expression("SET #tat = #tat + :spend")
                    .condition_expression("#tat > :now AND #tat <= :latest")
                    .expression_attribute_values(":spend", n(spend))
                    .expression_attribute_values(":latest", n(now + self.limit.tolerance_nanos() - spend))
                    .return_values(ReturnValue::UpdatedNew)
            }
        };
        match update.send().await {
            Ok(out) => Ok(Ok(out.attributes().and_then(|a| number::<i128>(a.get(TAT))).unwrap_or(next))),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                    Ok(Err(failed.item().and_then(|item| number::<i128>(item.get(TAT)))))
                }
                _ => Err(StoreError::from(err)),
            },
        }
    }
}
