//! Per-tenant request limits at the HTTP edge. Every request that names a tenant spends one
//! operation of that tenant's bucket before its body is read (the [`Admitted`] extractor), except a
//! batch or a linked chain, which spends one per transfer at once, as soon as its body parses and
//! before anything is written ([`spend`]): a tenant's limit bounds the work it causes, not only its
//! requests.
//!
//! A bucket is one stored instant (GCRA, `ledger::rate`), moved by one atomic conditional write per
//! admission (`ledger::port::Limits`), so API instances running at once never admit more than the
//! limit between them. A refusal's failed condition returns the bucket, so this instance learns
//! where it stands and refuses that tenant locally (no call) until its bucket can have room again,
//! and at least `HOLD_OFF` (plus jitter, so that instances do not all come back at once): a flood
//! costs the store at most about 7 writes a second per instance, not one per request. If the store
//! cannot be asked, the request fails as any store call does (`503`): a limit that let requests
//! through whenever its item is throttled would give way exactly under the flood it is for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use http::request::Parts;
use ledger::port::{BucketWrite, BucketWritten, Limits, StoreError};
use ledger::{RateLimit, TenantId, Verdict};
use rand::Rng;
use time::OffsetDateTime;

use crate::extract::Tenant;
use crate::problem::ApiError;
use crate::state::AppState;

/// Writes one admission may try before it counts as refused (each failure returns the bucket's
/// current instant, so a second try is on fresh state; more fail only under a race on the same
/// bucket).
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

/// The limit every tenant gets, the store that keeps the buckets, and the buckets this instance
/// has seen. Clones share what was seen.
#[derive(Clone)]
pub struct TenantLimits {
    buckets: Arc<dyn Limits>,
    limit: RateLimit,
    seen: Arc<Mutex<HashMap<TenantId, Seen>>>,
}

impl std::fmt::Debug for TenantLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantLimits").field("limit", &self.limit).finish_non_exhaustive()
    }
}

impl TenantLimits {
    pub fn new(buckets: Arc<dyn Limits>, limit: RateLimit) -> Self {
        Self { buckets, limit, seen: Arc::default() }
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
            // From a full bucket, or by the spend from a TAT still in the future with room for it.
            let write = match known.filter(|tat| *tat > now) {
                None => BucketWrite::FromFull { now, tat: next },
                Some(tat) => {
                    let spend = next - tat;
                    BucketWrite::Spend { now, spend, latest: now + self.limit.tolerance_nanos() - spend }
                }
            };
            match self.buckets.write_bucket(tenant, write).await? {
                BucketWritten::Moved { tat } => {
                    self.remember(tenant, tat.unwrap_or(next), now, false);
                    return Ok(Admission::Admitted);
                }
                BucketWritten::Refused { held } => known = held,
            }
        }
        // Raced by other instances on every try: as busy as refused.
        self.remember(tenant, known.unwrap_or(now), now, true);
        Ok(Admission::Limited { retry_after: HOLD_OFF })
    }
}

/// Spends `operations` of `tenant`'s bucket, or refuses with `429`. Without limits configured,
/// everything passes.
pub async fn spend(app: &AppState, tenant: &TenantId, operations: u32) -> Result<(), ApiError> {
    let Some(limits) = &app.rate_limit else { return Ok(()) };
    match limits.admit(tenant, operations, OffsetDateTime::now_utc()).await? {
        Admission::Admitted => Ok(()),
        Admission::Limited { retry_after } => {
            ledger_telemetry::metrics::request_limited();
            Err(ApiError::RateLimited { retry_after, limit: limits.limit() })
        }
    }
}

/// The operations a submission of `transfers` transfers is.
pub fn operations(transfers: usize) -> u32 {
    u32::try_from(transfers).unwrap_or(u32::MAX)
}

/// The request's tenant, admitted by its rate limit for one operation: over its limit, `429`.
pub struct Admitted(pub TenantId);

impl<S> FromRequestParts<S> for Admitted
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Tenant(tenant) = Tenant::from_request_parts(parts, state).await?;
        spend(&AppState::from_ref(state), &tenant, 1).await?;
        Ok(Admitted(tenant))
    }
}
