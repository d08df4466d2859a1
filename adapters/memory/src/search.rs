//! Transfer search in process: the query's index (`TransferQuery::index`) read from the tables,
//! in the order and pages DynamoDB's listings give.

use async_trait::async_trait;
use ledger::port::{Page, StoreError, TransferSearch};
use ledger::{SearchIndex, SearchPosition, TenantId, Transfer, TransferQuery, TransferStatus};
use time::OffsetDateTime;

use crate::store::MemoryStore;

#[async_trait]
impl TransferSearch for MemoryStore {
    async fn search_transfers(
        &self,
        tenant: &TenantId,
        query: &TransferQuery,
        page_size: u16,
        after: Option<&SearchPosition>,
        now: OffsetDateTime,
    ) -> Result<Page<Transfer, SearchPosition>, StoreError> {
        let size = usize::from(page_size);
        let tables = self.tables();
        // The index's candidates below `after`, newest first, with their positions.
        let candidates: Vec<(SearchPosition, Transfer)> = match query.index() {
            SearchIndex::Batch(batch) => {
                let ids = tables.batches.get(&(tenant.clone(), batch.clone())).and_then(|b| b.ids.clone());
                let below = match after {
                    Some(SearchPosition::BatchBefore(i)) => *i as usize,
                    Some(SearchPosition::Before { .. }) => return Err(bad_cursor()),
                    None => ids.as_ref().map_or(0, Vec::len),
                };
                let ids = ids.unwrap_or_default();
                (0..below.min(ids.len()))
                    .rev()
                    .filter_map(|i| {
                        let stored = tables.transfers.get(&(tenant.clone(), ids[i].clone()))?;
                        Some((SearchPosition::BatchBefore(i as u32), stored.transfer.clone()))
                    })
                    .collect()
            }
            index => {
                if matches!(after, Some(SearchPosition::BatchBefore(_))) {
                    return Err(bad_cursor());
                }
                let mut listed: Vec<(SearchPosition, Transfer)> = tables
                    .transfers
                    .iter()
                    .filter(|((t, id), stored)| {
                        let in_chain = match index {
                            SearchIndex::Chain(chain) => {
                                tables.chains.get(&(t.clone(), id.clone())) == Some(chain)
                            }
                            _ => true,
                        };
                        t == tenant
                            && stored.transfer.status != TransferStatus::Queued
                            && in_chain
                            && index.lists(&stored.transfer)
                    })
                    .map(|(_, stored)| (SearchPosition::of(&stored.transfer), stored.transfer.clone()))
                    .filter(|(position, _)| after.is_none_or(|after| position < after))
                    .collect();
                listed.sort_by(|a, b| b.0.cmp(&a.0));
                listed
            }
        };
        drop(tables);
        let more = candidates.len() > size;
        let read: Vec<_> = candidates.into_iter().take(size).collect();
        let next = if more { read.last().map(|(position, _)| position.clone()) } else { None };
        let items = read
            .into_iter()
            .map(|(_, transfer)| transfer)
            .filter(|t| query.matches(t, now))
            .map(|t| t.observed(now))
            .collect();
        Ok(Page { items, next })
    }
}

fn bad_cursor() -> StoreError {
    ledger::port::invalid("cursor", "is not a cursor this search returned".into())
}
