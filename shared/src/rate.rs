//! A tenant's request limit: a token bucket of `burst` operations refilled at `per_second`,
//! written as GCRA (the generic cell rate algorithm) so that its whole state is one instant, the
//! bucket's "theoretical arrival time" (TAT). Each operation admitted pushes the TAT one interval
//! (1 s / `per_second`) later; the bucket is full when the TAT is not after now, and an operation
//! is admitted when the TAT it leads to is at most `burst` intervals ahead of now. One instant, only
//! ever moved forward, is what lets a store hold the bucket with one conditional write and lets a
//! reader that saw an older TAT refuse safely (see `Verdict::Refuse`).

use std::num::NonZeroU32;
use std::time::Duration;

const NANOS_PER_SECOND: i128 = 1_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    per_second: NonZeroU32,
    burst: NonZeroU32,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "a rate limit needs at least 1 operation a second and a burst of at least 1, not {per_second}/s, burst {burst}"
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
            (Some(per_second), Some(burst)) => Ok(Self { per_second, burst }),
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

    /// What `operations` cost: at most a full bucket, so that a request larger than the burst (a
    /// batch of 1,000 under a burst of 500) is admitted once the bucket is full, and empties it,
    /// rather than never.
    pub fn cost(&self, operations: u32) -> u32 {
        operations.clamp(1, self.burst.get())
    }

    /// How far ahead of now the TAT may be after an admission.
    pub fn tolerance_nanos(&self) -> i128 {
        i128::from(self.burst.get()) * self.interval_nanos()
    }

    /// The verdict for `operations` at `now_nanos` on a bucket whose TAT is `tat` (`None`: never
    /// used, a full bucket). A refusal decided on an older TAT than the bucket's real one is still
    /// right, as TATs only move forward: its `retry_after` is then a lower bound.
    pub fn decide(&self, tat: Option<i128>, now_nanos: i128, operations: u32) -> Verdict {
        let start = tat.map_or(now_nanos, |tat| tat.max(now_nanos));
        let next = start + i128::from(self.cost(operations)) * self.interval_nanos();
        let ahead = next - now_nanos;
        if ahead <= self.tolerance_nanos() {
            Verdict::Admit { tat: next }
        } else {
            let wait = u64::try_from(ahead - self.tolerance_nanos()).unwrap_or(u64::MAX);
            Verdict::Refuse { retry_after: Duration::from_nanos(wait) }
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
    fn a_request_larger_than_the_burst_waits_for_a_full_bucket_and_empties_it() {
        let limit = RateLimit::new(100, 500).unwrap();
        assert_eq!(limit.cost(1_000), 500);
        assert_eq!(limit.cost(0), 1);
        let half_full = Some(2 * S + S / 2);
        assert_eq!(
            limit.decide(half_full, 0, 1_000),
            Verdict::Refuse { retry_after: Duration::from_millis(2_500) }
        );
        assert_eq!(limit.decide(None, 0, 1_000), Verdict::Admit { tat: 5 * S });
    }

    proptest! {
        /// Over any window, however requests arrive, no more is admitted than the burst plus the
        /// rate times the window.
        #[test]
        fn admissions_never_exceed_burst_plus_rate_times_time(
            per_second in 1u32..200,
            burst in 1u32..50,
            arrivals in proptest::collection::vec((0i128..3 * S, 1u32..5), 1..300),
        ) {
            let limit = RateLimit::new(per_second, burst).unwrap();
            let mut arrivals = arrivals;
            arrivals.sort();
            let mut tat = None;
            let mut admitted: Vec<(i128, u32)> = Vec::new();
            for (at, operations) in arrivals {
                if let Verdict::Admit { tat: next } = limit.decide(tat, at, operations) {
                    tat = Some(next);
                    admitted.push((at, limit.cost(operations)));
                }
            }
            for (i, (from, _)) in admitted.iter().enumerate() {
                let mut spent = 0u64;
                for (at, cost) in &admitted[i..] {
                    spent += u64::from(*cost);
                    let allowed = i128::from(burst) + (at - from) * i128::from(per_second) / S;
                    prop_assert!(i128::from(spent) <= allowed + 1, "{spent} > {allowed} over {}ns", at - from);
                }
            }
        }
    }
}
