//! Reconciling an account with a bank statement through the store (`crate::reconcile` decides):
//! the account's entries around the statement's dates read, the transfers' references looked up,
//! the lines matched, adjusting transfers made if asked (through the one transfer path, each under
//! an id derived from the statement and line, so a retry makes none twice), and the result kept
//! once per statement.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use time::OffsetDateTime;

use crate::ids::{AccountId, TenantId, TransferId};
use crate::metadata::Metadata;
use crate::port::{Created, Store, StoreError};
use crate::posting::{Direction, Entry};
use crate::reconcile::{self, Reconciliation, Statement, StatementLine, adjustment_id};
use crate::transfer::{Movement, NewTransfer, TransferKind};

/// Entries read per page, newest first, back to the statement's window.
const PAGE: u16 = 100;
/// Transfers read at once for their references.
const READS_AT_ONCE: usize = 16;

/// What to reconcile: a statement of `account`, matched within `window_days`, its unmatched lines
/// booked against `adjust_with` if given.
#[derive(Debug, Clone)]
pub struct Request {
    pub account: AccountId,
    pub statement: Statement,
    pub window_days: u8,
    pub adjust_with: Option<AccountId>,
}

pub async fn reconcile_account(
    store: &dyn Store,
    tenant: &TenantId,
    request: Request,
    now: OffsetDateTime,
) -> Result<Created<Reconciliation>, StoreError> {
    let id = request.statement.digest();
    match store.get_reconciliation(tenant, &request.account, &id).await {
        Ok(kept) => return Ok(Created::Replayed(kept)),
        Err(err) if err.is_not_found() => {}
        Err(err) => return Err(err),
    }
    let (from, _) = reconcile::window(&request.statement, request.window_days);
    let entries = entries_since(store, tenant, &request.account, from).await?;
    let references = references(store, tenant, &entries, now).await?;
    let (matched, unmatched_lines, unmatched_entries) =
        reconcile::reconcile(&request.statement, &entries, &references, request.window_days);
    let mut adjustments = Vec::new();
    if let Some(counter) = &request.adjust_with {
        for line in &unmatched_lines {
            let adjustment = adjusting(&id.to_string(), line, &request, counter)?;
            adjustments.push(adjustment.id.clone());
            store.create_transfer(tenant, adjustment, now).await?;
        }
    }
    let (from, to) = request.statement.period();
    let reconciliation = Reconciliation {
        id,
        account_id: request.account,
        statement_id: request.statement.bank_id,
        from,
        to,
        window_days: request.window_days,
        matched,
        unmatched_lines,
        unmatched_entries,
        adjustments,
        created_at: now,
    };
    store.record_reconciliation(tenant, &reconciliation).await
}

/// The account's entries that took effect at or after `from`, newest first.
async fn entries_since(
    store: &dyn Store,
    tenant: &TenantId,
    account: &AccountId,
    from: OffsetDateTime,
) -> Result<Vec<Entry>, StoreError> {
    let (mut entries, mut before) = (Vec::new(), None);
    loop {
        let page = store.list_entries(tenant, account, PAGE, before).await?;
        let reached = page.items.last().is_some_and(|e| e.created_at < from);
        entries.extend(page.items.into_iter().filter(|e| e.created_at >= from));
        match page.next {
            Some(next) if !reached => before = Some(next),
            _ => return Ok(entries),
        }
    }
}

/// Each entry's transfer's `reference` metadata, where it has one.
async fn references(
    store: &dyn Store,
    tenant: &TenantId,
    entries: &[Entry],
    now: OffsetDateTime,
) -> Result<BTreeMap<TransferId, String>, StoreError> {
    let mut ids: Vec<TransferId> = entries.iter().map(|e| e.transfer_id.clone()).collect();
    ids.sort();
    ids.dedup();
    let reads = ids.into_iter().map(|id| async move { store.get_transfer(tenant, &id, now).await });
    let transfers: Vec<_> =
        futures::stream::iter(reads).buffer_unordered(READS_AT_ONCE).try_collect().await?;
    Ok(transfers
        .into_iter()
        .filter_map(|t| {
            let reference = t.request.metadata.as_map().get("reference")?.clone();
            Some((t.request.id, reference))
        })
        .collect())
}

/// The transfer that books unmatched `line` on the account, against `counter`: money in is a
/// credit to the account, money out a debit.
fn adjusting(
    statement: &str,
    line: &StatementLine,
    request: &Request,
    counter: &AccountId,
) -> Result<NewTransfer, StoreError> {
    let (debit, credit) = match line.direction {
        Direction::Credit => (counter.clone(), request.account.clone()),
        Direction::Debit => (request.account.clone(), counter.clone()),
    };
    let mut metadata = BTreeMap::from([
        ("reconciliation".to_owned(), statement.to_owned()),
        ("statement_line".to_owned(), line.line.to_string()),
    ]);
    if let Some(reference) = &line.reference {
        metadata.insert("reference".to_owned(), reference.clone());
    }
    let metadata = Metadata::parse(metadata).map_err(|e| StoreError::Unexpected(e.reason().to_owned()))?;
    Ok(NewTransfer {
        id: adjustment_id(&request.statement.digest(), line.line)
            .map_err(|e| StoreError::Unexpected(e.reason().to_owned()))?,
        kind: TransferKind::Immediate(Movement {
            debit_account_id: debit,
            credit_account_id: credit,
            amount: line.amount,
            currency: request.statement.currency,
        }),
        metadata,
        linked: false,
        effective_at: None,
    })
}
