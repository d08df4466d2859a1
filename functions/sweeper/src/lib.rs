//! The sweeper's handler: one scheduled tick in, the holds it released out.
//!
//! Reads never wait for it (a hold past its time reads `expired` at once); it releases the pending
//! amounts of holds that fell due. Every release is conditioned on the hold still being pending, so
//! overlapping ticks, retries and races with posts and voids release each hold at most once.

use ledger::port::{Store, StoreError, Sweep};
use ledger_telemetry::{Function, metrics};
use time::OffsetDateTime;
use tracing::Instrument;

/// Holds one sweep takes: what bounds a tick's memory, whatever is due.
pub const SWEEP_LIMIT: usize = 1_000;
/// Sweeps one tick runs while more is due (a tick runs within a minute).
const SWEEPS_PER_TICK: usize = 5;

/// Releases the holds due at `now`, `SWEEP_LIMIT` at a time, up to `SWEEPS_PER_TICK` times. An
/// error fails the invocation; the next tick starts again from the same cursor, so nothing is
/// skipped.
pub async fn handle(store: &dyn Store, now: OffsetDateTime) -> Result<Sweep, StoreError> {
    let span = tracing::info_span!("sweep", function = Function::Sweeper.as_str());
    async {
        let mut total = Sweep::default();
        for _ in 0..SWEEPS_PER_TICK {
            let sweep = store.expire_due_holds(now, SWEEP_LIMIT).await?;
            metrics::holds_expired(sweep.expired);
            total = Sweep {
                expired: total.expired + sweep.expired,
                resolved: total.resolved + sweep.resolved,
                more: sweep.more,
            };
            if !sweep.more {
                break;
            }
        }
        tracing::info!(expired = total.expired, unlisted = total.resolved, more = total.more, "sweep done");
        Ok(total)
    }
    .instrument(span)
    .await
}
