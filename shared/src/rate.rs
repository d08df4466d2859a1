//! A tenant's request limit: a token bucket of `burst` operations refilled at `per_second`,
//! written as GCRA (the generic cell rate algorithm) so that its whole state is one instant, the
//! bucket's "theoretical arrival time" (TAT). Each operation admitted pushes the TAT one interval
//! (1 s / `per_second`) later; the bucket is full when the TAT is not after now, and a request is
//! admitted when the TAT it leads to is at most `burst` intervals ahead of now. A request larger
//! than the burst (a batch of 1,000 under a burst of 250) is admitted only on a full bucket, and
//! charged in full: the tenant then waits until it is paid for, so over time no tenant gets more
//! than its rate, whatever the sizes of its requests. One instant, only ever moved forward, is what
//! lets a store hold the bucket with one conditional write and lets a reader that saw an older TAT
//! refuse safely (see `Verdict::Refuse`).

use std::num::NonZeroU32;
use std::time::Duration;

const NANOS_PER_SECOND: i128 = 1_000_000_000;
/// The highest rate a bucket takes: one item sustains 1,000 writes a second, and it is written once
/// per admitted request.
pub const MAX_PER_SECOND: u32 = 1_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    per_second: NonZeroU32,
    burst: NonZeroU32,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "a rate limit needs 1 to {MAX_PER_SECOND} operations a second and a burst of at least 1, not {per_second}/s, burst {burst}"
)]
pub struct RateLimitError {
    pub per_second: u32,
    pub burst: u32,
}

/// What the bucket says to `cost` operations now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Admitted; the bucket's TAT becomes `tat` (ns since the epoch).
    Admit { tat: i128 },
    /// Refused; the same cost would be admitted `retry_after` from now, if nothing else is spent.
    Refuse { retry_after: Duration },
}

impl RateLimit {
    pub fn new(per_second: u32, burst: u32) -> Result<Self, RateLimitError> {
        match (NonZeroU32::new(per_second), NonZeroU32::new(burst)) {
            (Some(rate), Some(burst)) if per_second <= MAX_PER_SECOND => Ok(Self { per_second: rate, burst }),
            _ => Err(RateLimitError { per_second, burst }),
        }
    }

    pub fn per_second(&self) -> u32 {
        self.per_second.get()
    }

    pub fn burst(&self) -> u32 {
        self.burst.get()
    }

    /// Nanoseconds one operation holds the bucket.
    pub fn interval_nanos(&self) -> i128 {
        NANOS_PER_SECOND / i128::from(self.per_second.get())
    }

    /// How far ahead of now the TAT may be after an admission.
    pub fn tolerance_nanos(&self) -> i128 {
        i128::from(self.burst.get()) * self.interval_nanos()
    }

    /// The verdict for `operations` at `now_nanos` on a bucket whose TAT is `tat` (`None`: never
    /// used, a full bucket). A refusal decided on an older TAT than the bucket's real one is still
    /// right, as TATs only move forward: its `retry_after` is then a lower bound.
    pub fn decide(&self, tat: Option<i128>, now_nanos: i128, operations: u32) -> Verdict {
        let operations = operations.max(1);
        let start = tat.map_or(now_nanos, |tat| tat.max(now_nanos));
        let next = start + i128::from(operations) * self.interval_nanos();
        // How long until the request fits: its TAT within the tolerance, or, for one larger than
        // the burst, a full bucket.
        let wait = if operations > self.burst.get() {
            start - now_nanos
        } else {
            next - now_nanos - self.tolerance_nanos()
        };
        if wait <= 0 {
            Verdict::Admit { tat: next }
        } else {
            Verdict::Refuse { retry_after: Duration::from_nanos(u64::try_from(wait).unwrap_or(u64::MAX)) }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const S: i128 = NANOS_PER_SECOND;

    #[test]
    fn a_limit_needs_a_rate_and_a_burst() {
        assert!(RateLimit::new(0, 10).is_err());
        assert!(RateLimit::new(10, 0).is_err());
        // Above one item's writes a second; and an interval that would round to nothing.
        assert!(RateLimit::new(MAX_PER_SECOND + 1, 10).is_err());
        assert!(RateLimit::new(2_000_000_000, 10).is_err());
        assert_eq!(RateLimit::new(10, 20).unwrap().interval_nanos(), S / 10);
    }

    #[test]
    fn a_full_bucket_admits_its_burst_then_one_operation_per_interval() {
        let limit = RateLimit::new(10, 3).unwrap();
        let mut tat = None;
        for _ in 0..3 {
            match limit.decide(tat, 0, 1) {
                Verdict::Admit { tat: next } => tat = Some(next),
                refused => panic!("{refused:?}"),
            }
        }
        assert_eq!(limit.decide(tat, 0, 1), Verdict::Refuse { retry_after: Duration::from_millis(100) });
        assert!(matches!(limit.decide(tat, S / 10, 1), Verdict::Admit { .. }));
    }

    #[test]
    fn a_request_larger_than_the_burst_waits_for_a_full_bucket_and_is_charged_in_full() {
        let limit = RateLimit::new(100, 250).unwrap();
        let half_full = Some(S + S / 4);
        assert_eq!(
            limit.decide(half_full, 0, 1_000),
            Verdict::Refuse { retry_after: Duration::from_millis(1_250) }
        );
        // On a full bucket, 10 s of the rate at once; then nothing until they are paid for.
        assert_eq!(limit.decide(None, 0, 1_000), Verdict::Admit { tat: 10 * S });
        assert_eq!(limit.decide(Some(7 * S), 7 * S, 1_000), Verdict::Admit { tat: 17 * S });
        assert_eq!(
            limit.decide(Some(10 * S), 0, 1),
            Verdict::Refuse { retry_after: Duration::from_millis(7_510) }
        );
        // Zero operations cost one.
        assert_eq!(limit.decide(None, 0, 0), Verdict::Admit { tat: S / 100 });
    }

    proptest! {
        /// Over any window, however requests arrive, no more is admitted than the burst plus the
        /// rate times the window.
        #[test]
        fn admissions_never_exceed_burst_plus_rate_times_time(
            per_second in 1u32..=MAX_PER_SECOND,
            burst in 1u32..50,
            arrivals in proptest::collection::vec((0i128..3 * S, 1u32..80), 1..300),
        ) {
            let limit = RateLimit::new(per_second, burst).unwrap();
            let mut arrivals = arrivals;
            arrivals.sort();
            let mut tat = None;
            let mut admitted: Vec<(i128, u32)> = Vec::new();
            for (at, operations) in arrivals {
                if let Verdict::Admit { tat: next } = limit.decide(tat, at, operations) {
                    tat = Some(next);
                    admitted.push((at, operations));
                }
            }
            // A request larger than the burst may pass on a full bucket: the bound's burst is the
            // larger of the two.
            let largest = admitted.iter().map(|(_, cost)| *cost).max().unwrap_or(0).max(burst);
            for (i, (from, _)) in admitted.iter().enumerate() {
                let mut spent = 0u64;
                for (at, cost) in &admitted[i..] {
                    spent += u64::from(*cost);
                    let allowed = i128::from(largest) + (at - from) * i128::from(per_second) / S;
                    prop_assert!(i128::from(spent) <= allowed + 1, "{spent} > {allowed} over {}ns", at - from);
                }
            }
        }
    }
}
