//! The sweeper's handler: one scheduled tick in, the holds it released out.
//!
//! Reads never wait for it (a hold past its time reads `expired` at once); it releases the pending
//! amounts of holds that fell due. Every release is conditioned on the hold still being pending, so
//! overlapping ticks, retries and races with posts and voids release each hold at most once.

use ledger::port::{Store, StoreError, Sweep};
use ledger_telemetry::{Function, metrics};
use time::OffsetDateTime;
use tracing::Instrument;

/// Releases the holds due at `now`. An error fails the invocation; the next tick starts again
/// from the same cursor, so nothing is skipped.
pub async fn handle(store: &dyn Store, now: OffsetDateTime) -> Result<Sweep, StoreError> {
    let span = tracing::info_span!("sweep", function = Function::Sweeper.as_str());
    async {
        let sweep = store.expire_due_holds(now).await?;
        metrics::holds_expired(sweep.expired);
        tracing::info!(expired = sweep.expired, unlisted = sweep.resolved, "sweep done");
        Ok(sweep)
    }
    .instrument(span)
    .await
}
