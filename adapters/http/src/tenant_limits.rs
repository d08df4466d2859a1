//! Each tenant's request bucket, as this instance sees it: the limit every tenant gets, the store
//! that keeps the buckets (`ledger::port::Limits`), and what this instance has seen of them. A
//! bucket is one stored instant (GCRA, `ledger::rate`), moved by one atomic conditional write per
//! admission, so API instances running at once never admit more than the limit between them. A
//! refusal's failed condition returns the bucket, so this instance learns where it stands and
//! refuses that tenant locally (no call) until its bucket can have room again, and at least
//! `HOLD_OFF` (plus jitter, so that instances do not all come back at once): a flood costs the
//! store at most about 7 writes a second per instance, not one per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ledger::port::{BucketWrite, BucketWritten, Limits, StoreError};
use ledger::{RateLimit, TenantId, Verdict};
use rand::Rng;
use time::OffsetDateTime;

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

#[cfg(test)]
mod tests {
    use super::*;
    use ledger_memory::MemoryStore;

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).unwrap()
    }

    /// Instances at one instant never admit more than the burst between them; a second later the
    /// bucket is full again, and one instance gets exactly the burst; another tenant's is its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn instances_at_once_never_admit_more_than_the_limit() {
        let store: Arc<dyn Limits> = Arc::new(MemoryStore::new());
        let limit = RateLimit::new(40, 20).unwrap();
        let start = OffsetDateTime::now_utc();
        let instances = (0..8).map(|_| {
            let limits = TenantLimits::new(store.clone(), limit);
            tokio::spawn(async move {
                let mut admitted = 0;
                while limits.admit(&tenant("noisy"), 1, start).await.unwrap() == Admission::Admitted {
                    admitted += 1;
                }
                admitted
            })
        });
        let mut admitted = 0;
        for instance in instances {
            admitted += instance.await.unwrap();
        }
        assert!((1..=20).contains(&admitted), "{admitted} at one instant, the burst is 20");
        let alone = TenantLimits::new(store.clone(), limit);
        let later = start + time::Duration::seconds(1);
        let mut full = 0;
        while alone.admit(&tenant("noisy"), 1, later).await.unwrap() == Admission::Admitted {
            full += 1;
        }
        assert_eq!(full, 20);
        // The next fits one interval (1/40 s) on.
        let next = alone.admit(&tenant("noisy"), 1, later).await.unwrap();
        assert_eq!(next, Admission::Limited { retry_after: Duration::from_millis(25) });
        let quiet = TenantLimits::new(store, limit);
        for _ in 0..20 {
            assert_eq!(quiet.admit(&tenant("quiet"), 1, start).await.unwrap(), Admission::Admitted);
        }
    }

    /// A batch over the burst passes on a full bucket and is paid for after, whichever instance
    /// asks next.
    #[tokio::test]
    async fn a_batch_over_the_burst_passes_on_a_full_bucket_and_is_paid_for_after() {
        let store: Arc<dyn Limits> = Arc::new(MemoryStore::new());
        let limit = RateLimit::new(1, 4).unwrap();
        let (t, start) = (tenant("acme"), OffsetDateTime::now_utc());
        let at = |s| start + time::Duration::seconds(s);
        let first = TenantLimits::new(store.clone(), limit);
        assert_eq!(first.admit(&t, 6, start).await.unwrap(), Admission::Admitted);
        // Six charged on a bucket of four: one more fits in 3 s.
        assert_eq!(
            first.admit(&t, 1, at(2)).await.unwrap(),
            Admission::Limited { retry_after: Duration::from_secs(1) }
        );
        let other = TenantLimits::new(store, limit);
        assert_eq!(other.admit(&t, 1, at(3)).await.unwrap(), Admission::Admitted);
        // Another six wait for a full bucket: 7 s from the start.
        assert_eq!(
            other.admit(&t, 6, at(6)).await.unwrap(),
            Admission::Limited { retry_after: Duration::from_secs(1) }
        );
        assert_eq!(other.admit(&t, 6, at(7)).await.unwrap(), Admission::Admitted);
    }
}
