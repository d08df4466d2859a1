//! The auditor's handler: one scheduled tick in; each tenant's books checked from its last
//! checkpoint (`ledger::books`), the new checkpoint (a digest of the checked heads, signed)
//! archived, then the tenant's checkpoint moved to it with its `books.checked` event.
//!
//! Overlapping ticks are safe: a run moves its tenant's checkpoint only from the one it started
//! from, so of two runs from one checkpoint one moves it and the other's archived copy is never
//! named. A tenant whose run fails is taken up again from the same checkpoint at the next tick;
//! the others go on.

use ledger::books::BooksChecked;
use ledger::notarize::{PAGE, check_books};
use ledger::port::{Archive, CheckpointRef, Notary, Store, StoreError, TenantBooks};
use ledger::{Event, LedgerError};
use ledger_telemetry::{Function, metrics};
use time::OffsetDateTime;
use tracing::Instrument;

/// What one tick did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tick {
    /// Tenants whose checkpoint this tick moved.
    pub checked: usize,
    /// Faults found, over every tenant.
    pub faults: usize,
    /// Entries read, over every tenant.
    pub entries: usize,
    /// Tenants another run moved first.
    pub raced: usize,
    /// Tenants whose run failed (the store or KMS or S3 unavailable).
    pub failed: usize,
}

/// Checks every tenant's books at `now`. Fails the invocation if any tenant's run failed, once
/// every tenant was tried.
pub async fn handle(
    store: &dyn Store,
    notary: &dyn Notary,
    archive: &dyn Archive,
    now: OffsetDateTime,
) -> Result<Tick, StoreError> {
    let span = tracing::info_span!("audit", function = Function::Auditor.as_str());
    async {
        let mut tick = Tick::default();
        let mut last_error = None;
        for books in store.tenants().await? {
            match check_tenant(store, notary, archive, &books, now).await {
                Ok(Some((faults, entries))) => {
                    tick.checked += 1;
                    tick.faults += faults;
                    tick.entries += entries;
                }
                Ok(None) => tick.raced += 1,
                Err(err) => {
                    tracing::error!(tenant = %books.tenant, error = %err, "the books run failed");
                    tick.failed += 1;
                    last_error = Some(err);
                }
            }
        }
        tracing::info!(
            checked = tick.checked,
            faults = tick.faults,
            entries = tick.entries,
            raced = tick.raced,
            failed = tick.failed,
            "audit done"
        );
        match last_error {
            Some(err) => Err(err),
            None => Ok(tick),
        }
    }
    .instrument(span)
    .await
}

/// One tenant's run: `Some((faults, entries))`, or `None` if another run moved its checkpoint
/// first.
async fn check_tenant(
    store: &dyn Store,
    notary: &dyn Notary,
    archive: &dyn Archive,
    books: &TenantBooks,
    now: OffsetDateTime,
) -> Result<Option<(usize, usize)>, StoreError> {
    let tenant = &books.tenant;
    let previous = match &books.latest {
        Some(latest) => Some(archive.get(&latest.key).await?),
        None => None,
    };
    let (checkpoint, report) = check_books(store, notary, tenant, previous.as_ref(), PAGE, now).await?;
    let key = archive.put(&checkpoint).await?;
    let next = CheckpointRef { run: checkpoint.run, key: key.clone() };
    let event = Event::books_checked(tenant, BooksChecked::new(&checkpoint, &report, key));
    match store.advance(tenant, books.latest.as_ref(), &next, &event).await {
        Ok(()) => {}
        Err(StoreError::Ledger(LedgerError::PreconditionFailed { .. })) => {
            tracing::info!(tenant = %tenant, run = checkpoint.run, "another run checked these books first");
            return Ok(None);
        }
        Err(err) => return Err(err),
    }
    for fault in &report.faults {
        tracing::error!(tenant = %tenant, run = report.run, fault = %fault, "the books are wrong");
    }
    metrics::books_checked(report.entries, report.faults.len());
    tracing::info!(
        tenant = %tenant,
        run = report.run,
        shards = report.shards,
        entries = report.entries,
        open_sides = report.open,
        faults = report.faults.len(),
        root = %checkpoint.signed.digest.root,
        "books checked"
    );
    Ok(Some((report.faults.len(), report.entries)))
}
