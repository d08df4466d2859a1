//! The one contention budget: how long any path keeps redoing writes (and snapshot reads) that met
//! another writer before the store is reported unavailable, and how long it pauses between tries.
//! The engine's paths use it, and so do the stores' own redo loops. Contention is waited out, not
//! answered with an error; only a path that made no progress for the whole budget gives up.

use std::time::{Duration, Instant};

use rand::Rng;

/// How long a path keeps redoing contended writes without progress. Under the API function's 10 s
/// timeout (template.yaml), with room for the last attempt: a synchronous client waits rather than
/// get a 503 for contention alone.
pub const CONTENTION_BUDGET: Duration = Duration::from_secs(8);

/// The longest pause between two tries: a writer that lost several times must not wait ever longer
/// while newcomers take the item (the tail of a contended account is what a client sees as a
/// timeout).
pub const MAX_PAUSE: Duration = Duration::from_millis(80);

/// The budget of one path, measured on the monotonic clock (the one clock the engine reads: for
/// its budget, never for a decision).
#[derive(Debug)]
pub struct Contention {
    since: Instant,
    tries: u32,
}

impl Default for Contention {
    fn default() -> Self {
        Self::start()
    }
}

impl Contention {
    pub fn start() -> Self {
        Self { since: Instant::now(), tries: 0 }
    }

    /// The pause before the next try (full jitter on an exponential base, capped at `MAX_PAUSE`,
    /// so contended writers spread out instead of colliding again), or `None` once the budget is
    /// spent.
    pub fn next_pause(&mut self) -> Option<Duration> {
        if self.since.elapsed() >= CONTENTION_BUDGET {
            return None;
        }
        self.tries += 1;
        let cap = (5u64 << self.tries.min(4)).min(MAX_PAUSE.as_millis() as u64);
        Some(Duration::from_millis(rand::rng().random_range(0..=cap)))
    }

    /// The path made progress: its budget starts again.
    pub fn progressed(&mut self) {
        *self = Self::start();
    }

    /// Tries so far since the last progress.
    pub fn tries(&self) -> u32 {
        self.tries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_to_the_cap_and_never_pass_it() {
        let mut contention = Contention::start();
        for _ in 0..50 {
            let pause = contention.next_pause().expect("within the budget");
            assert!(pause <= MAX_PAUSE, "{pause:?}");
        }
        assert_eq!(contention.tries(), 50);
        contention.progressed();
        assert_eq!(contention.tries(), 0);
    }

    #[test]
    fn a_spent_budget_gives_no_more_pauses() {
        let mut contention = Contention { since: Instant::now() - CONTENTION_BUDGET, tries: 3 };
        assert_eq!(contention.next_pause(), None);
    }
}
