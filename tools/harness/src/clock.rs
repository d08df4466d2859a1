//! A clock a test moves by hand: what it asserts of time-dependent rules (request limits) then
//! holds whatever the machine's speed.

use std::sync::{Arc, Mutex, PoisonError};

use ledger_http::Clock;
use time::{Duration, OffsetDateTime};

#[derive(Clone, Debug)]
pub struct ManualClock(Arc<Mutex<OffsetDateTime>>);

impl ManualClock {
    /// A clock standing at the system's now.
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new(OffsetDateTime::now_utc())))
    }

    pub fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) += by;
    }

    /// The API's clock, reading this one.
    pub fn clock(&self) -> Clock {
        let this = self.clone();
        Clock::from_fn(move || this.now())
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}
