//! Backoff between the store's own retries (contended transactions, unprocessed batch items): the
//! SDK retries throttling and transient errors itself (see `client`).

use std::time::Duration;

use rand::Rng;

/// Attempts of each of the store's own retry loops: a transaction whose accounts moved or met
/// another one, a snapshot read cancelled by a write, batch items left unprocessed.
pub(crate) const MAX_ATTEMPTS: u32 = 8;

/// Full jitter on an exponential base: contended writers spread out instead of colliding again.
/// Capped at 80 ms: a writer that lost several times must not wait ever longer while newcomers
/// take the item (the tail of a contended account is what a client sees as a timeout).
pub(crate) async fn backoff(attempt: u32) {
    let cap_ms = 5u64 << attempt.min(4);
    let ms = rand::rng().random_range(0..=cap_ms);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}
