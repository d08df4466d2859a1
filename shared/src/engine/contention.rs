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

/// The longest pause between two tries: enough tries fit in the budget for a writer that lost
/// several times to still get its turn.
pub const MAX_PAUSE: Duration = Duration::from_millis(2000);

/// The unit of a pause until a try was timed: about one uncontended transaction.
const FIRST_SLOT: Duration = Duration::from_millis(5);
/// A slot is never taken as shorter or longer than these, whatever one try measured.
const SLOT_RANGE: (Duration, Duration) = (Duration::from_millis(1), Duration::from_millis(250));
/// The window of pauses doubles with each loss in a row, up to 2^MAX_DOUBLINGS slots.
const MAX_DOUBLINGS: u32 = 8;

/// The budget of one path, measured on the monotonic clock (the one clock the engine reads: for
/// its budget and its pauses, never for a decision).
#[derive(Debug)]
pub struct Contention {
    since: Instant,
    /// Losses in a row since the last progress.
    tries: u32,
    /// How long one try takes (read, plan, write), as last measured: the time another writer
    /// holds the accounts, so the unit that pauses are counted in. Measured, not guessed: on a
    /// loaded store a try takes ten times longer, and pauses in fixed milliseconds then send every
    /// loser back while the winner is still writing.
    slot: Duration,
}

/// How contended accounts are: the doublings of the pause window that balance the tries that
/// land on them and those that lose. A store keeps it per account across requests (a warm
/// container's memory), raised by each loss and lowered by each landing, so that every writer of
/// a hot account waits as long as the crowd requires from its first loss on: with pauses that
/// grow only with a request's own losses, each request starts again from short pauses, and a
/// crowd of writers of one account spends its tries colliding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Level(u32);

/// A level moves in thirds of a doubling: up a whole doubling by a loss, down a third of one by a
/// landing, so it settles where about a quarter of the tries lose (measured against halves and
/// quarters with `cargo stack bench`: see docs/figures.md).
const LEVEL_STEPS: u32 = 3;

impl Level {
    /// The level after one more try on the accounts: up by a loss, down by a landing.
    pub fn after(self, landed: bool) -> Level {
        if landed {
            Level(self.0.saturating_sub(1))
        } else {
            Level((self.0 + LEVEL_STEPS).min(MAX_DOUBLINGS * LEVEL_STEPS))
        }
    }

    /// The accounts are not contended: nothing to keep.
    pub fn is_lowest(self) -> bool {
        self.0 == 0
    }

    fn doublings(self) -> u32 {
        self.0 / LEVEL_STEPS
    }
}

impl Default for Contention {
    fn default() -> Self {
        Self::start()
    }
}

impl Contention {
    pub fn start() -> Self {
        Self { since: Instant::now(), tries: 0, slot: FIRST_SLOT }
    }

    /// One try took `took`: the slot pauses are counted in from now on.
    pub fn timed(&mut self, took: Duration) {
        self.slot = took.clamp(SLOT_RANGE.0, SLOT_RANGE.1);
    }

    /// The pause before the next try on accounts at `level`, or `None` once the budget is spent.
    /// Exponential backoff in slots: a pause drawn evenly from a window of 2^d slots (capped at
    /// `MAX_PAUSE`), d the accounts' level or this path's losses in a row, whichever is more, so
    /// n writers of one account spread out over about n tries' time and about one writes at once,
    /// however many wait.
    pub fn pause_at(&mut self, level: Level) -> Option<Duration> {
        let left = CONTENTION_BUDGET.checked_sub(self.since.elapsed()).filter(|left| !left.is_zero())?;
        self.tries += 1;
        let window = window(self.slot, level.doublings().max(self.tries), left);
        Some(window.mul_f64(rand::rng().random_range(0.0..=1.0)))
    }

    /// The pause before the next try where no level is kept (`pause_at` the lowest).
    pub fn next_pause(&mut self) -> Option<Duration> {
        self.pause_at(Level::default())
    }

    /// The path made progress: its budget starts again (the slot stays as measured).
    pub fn progressed(&mut self) {
        *self = Self { slot: self.slot, ..Self::start() };
    }

    /// Losses in a row so far.
    pub fn tries(&self) -> u32 {
        self.tries
    }
}

/// The window a pause is drawn from: 2^doublings slots, at most `MAX_PAUSE`, and at most a quarter
/// of what is `left` of the budget: a writer that has waited long tries more often than the
/// newcomers, so none runs out of budget while they take its turns; and the last try starts within
/// the budget, so within the API's timeout.
fn window(slot: Duration, doublings: u32, left: Duration) -> Duration {
    (slot * (1 << doublings.min(MAX_DOUBLINGS))).min(MAX_PAUSE).min(left / 4)
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
    fn a_loss_raises_the_level_a_doubling_and_three_landings_bring_it_back() {
        let hot = Level::default().after(false);
        assert_eq!(hot.doublings(), 1);
        let cooled = (0..LEVEL_STEPS).fold(hot, |level, _| level.after(true));
        assert!(cooled.is_lowest());
        assert_eq!(Level::default().after(true), Level::default());
        let hottest = (0..100).fold(Level::default(), |level, _| level.after(false));
        assert_eq!(hottest.doublings(), MAX_DOUBLINGS);
    }

    #[test]
    fn pauses_are_counted_in_measured_slots_from_the_accounts_level() {
        let slot = Duration::from_millis(3);
        let five = (0..5).fold(Level::default(), |level, _| level.after(false));
        assert_eq!(five.doublings(), 5);
        // A path alone doubles its window with each loss in a row; on accounts at five doublings
        // it starts from 2^5 slots.
        assert_eq!(window(slot, Level::default().doublings().max(1), CONTENTION_BUDGET), slot * 2);
        assert_eq!(window(slot, five.doublings().max(1), CONTENTION_BUDGET), slot * 32);
        assert_eq!(window(slot, 100, CONTENTION_BUDGET), slot * (1 << MAX_DOUBLINGS));
        let mut hot = Contention::start();
        hot.timed(slot);
        assert!(hot.pause_at(five).is_some_and(|pause| pause <= slot * 32));
    }

    #[test]
    fn no_pause_outlasts_a_quarter_of_the_budget_left() {
        let longest = Duration::from_millis(250);
        assert_eq!(window(longest, MAX_DOUBLINGS, Duration::from_millis(400)), Duration::from_millis(100));
        assert_eq!(window(longest, MAX_DOUBLINGS, CONTENTION_BUDGET), MAX_PAUSE);
    }

    #[test]
    fn a_spent_budget_gives_no_more_pauses() {
        let mut contention =
            Contention { since: Instant::now() - CONTENTION_BUDGET, tries: 3, slot: FIRST_SLOT };
        assert_eq!(contention.next_pause(), None);
    }
}
