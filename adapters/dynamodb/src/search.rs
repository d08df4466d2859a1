//! Transfer search on DynamoDB, without a Scan. Every decided transfer is listed in the indexes
//! `ledger::SearchIndex` names: its tenant's, each account it moved, each metadata pair. A listing
//! is one small item, `pk` = the index's partition (`keys::search_pk`, 8 shards by transfer id),
//! `sk` = `{created, ns:020}#{transfer}`, written BEFORE the transaction that records the transfer
//! (BatchWriteItem, idempotent: a retry writes the same keys). So a transfer whose answer was sent
//! is always listed; a listing whose transaction never landed (cancelled, refused, crashed) names
//! a transfer that is absent or was recorded at another instant, and a read skips it.
//!
//! A page reads the index's 8 shards below its cursor with consistent Queries (at most a page
//! each), merges them newest first, keeps a page of candidates (the true newest: no shard can hold
//! one the others' pages hide), reads their records (one consistent BatchGetItem) and returns
//! those the query matches. A batch's transfers come from its ids item, queued ones included.

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use ledger::engine::{Book, Contention, Step, chain_members};
use ledger::port::{Page, StoreError, TransferSearch};
use ledger::{
    Account, AccountId, Decision, SearchIndex, SearchPosition, TenantId, Transfer, TransferId, TransferQuery,
    TransferStatus,
};
use time::OffsetDateTime;

use crate::error::{sdk, unbuilt};
use crate::items::{Item, s};
use crate::keys;
use crate::store::DynamoStore;

/// DynamoDB's limit of one BatchWriteItem.
const MAX_BATCH_WRITE: usize = 25;

/// The listings of a decided transfer (a member of the chain `chain`, if any): one per index that
/// lists it, each key once.
pub fn listings(tenant: &TenantId, transfer: &Transfer, chain: Option<&TransferId>) -> Vec<Item> {
    let id = &transfer.request.id;
    let shard = keys::search_shard(id);
    let sk = keys::search_sk(transfer.created_at.unix_timestamp_nanos(), id);
    let mut indexes = vec![SearchIndex::Tenant];
    if let Some(moved) = &transfer.movement {
        indexes.push(SearchIndex::Account(&moved.debit_account_id));
        if moved.credit_account_id != moved.debit_account_id {
            indexes.push(SearchIndex::Account(&moved.credit_account_id));
        }
    }
    indexes.extend(transfer.request.metadata.as_map().iter().map(|(k, v)| SearchIndex::Metadata(k, v)));
    indexes.extend(chain.map(SearchIndex::Chain));
    indexes
        .iter()
        .map(|index| {
            HashMap::from([
                (keys::PK.to_owned(), s(keys::search_pk(tenant, index, shard))),
                (keys::SK.to_owned(), s(sk.as_str())),
                (TRANSFER_ID.to_owned(), s(id.as_str())),
            ])
        })
        .collect()
}

const TRANSFER_ID: &str = "transfer_id";

/// The listings of an account, one per metadata pair: `sk` = its id, so a page reads in id order.
pub fn account_listings(tenant: &TenantId, account: &Account) -> Vec<Item> {
    let shard = keys::account_search_shard(&account.id);
    account
        .metadata
        .as_map()
        .iter()
        .map(|(k, v)| {
            HashMap::from([
                (keys::PK.to_owned(), s(keys::account_search_pk(tenant, k, v, shard))),
                (keys::SK.to_owned(), s(account.id.as_str())),
                (ACCOUNT_ID.to_owned(), s(account.id.as_str())),
            ])
        })
        .collect()
}

const ACCOUNT_ID: &str = "account_id";

impl DynamoStore {
    /// Writes the listings of the transfers `steps` record, before they are written.
    pub(crate) async fn list_for_search(&self, tenant: &TenantId, steps: &[Step]) -> Result<(), StoreError> {
        let chains: HashMap<&TransferId, &TransferId> =
            chain_members(steps).into_iter().map(|(t, chain)| (&t.request.id, chain)).collect();
        let decided = steps.iter().filter_map(|step| match &step.decision {
            Decision::Commit { transfer, .. } | Decision::Reject(transfer) => Some(transfer),
            _ => None,
        });
        let items = decided.flat_map(|t| listings(tenant, t, chains.get(&t.request.id).copied())).collect();
        self.put_listings(items).await
    }

    /// Writes the listings of an account, before its creation is written.
    pub(crate) async fn list_account(&self, tenant: &TenantId, account: &Account) -> Result<(), StoreError> {
        self.put_listings(account_listings(tenant, account)).await
    }

    /// The ids of the accounts listed under one metadata pair, after `after`, merged over its
    /// shards: at most `size`, and whether there are more.
    pub(crate) async fn accounts_listed(
        &self,
        tenant: &TenantId,
        (key, value): (&str, &str),
        size: usize,
        after: Option<&AccountId>,
    ) -> Result<(Vec<AccountId>, bool), StoreError> {
        let shards = (0..keys::SEARCH_SHARDS).map(|shard| {
            let query = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", s(keys::account_search_pk(tenant, key, value, shard)))
                .consistent_read(true)
                .limit(i32::try_from(size + 1).unwrap_or(i32::MAX));
            match after {
                Some(after) => query
                    .key_condition_expression("pk = :pk AND sk > :after")
                    .expression_attribute_values(":after", s(after.as_str())),
                None => query.key_condition_expression("pk = :pk"),
            }
        });
        let (listed, more) = merged(shards, size, Order::Ascending, None).await?;
        let ids = listed.into_iter().map(|(_, item)| {
            let id = item.get(ACCOUNT_ID).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            AccountId::parse(id).map_err(|e| StoreError::Corrupt(e.to_string()))
        });
        Ok((ids.collect::<Result<_, _>>()?, more))
    }

    /// Puts listings (each key once), 25 a BatchWriteItem, the calls at once.
    pub(crate) async fn put_listings(&self, items: Vec<Item>) -> Result<(), StoreError> {
        let mut seen = BTreeSet::new();
        let requests: Vec<WriteRequest> = items
            .into_iter()
            .filter(|item| {
                seen.insert((
                    item.get(keys::PK).and_then(|v| v.as_s().ok()).cloned(),
                    item.get(keys::SK).and_then(|v| v.as_s().ok()).cloned(),
                ))
            })
            .map(|item| {
                let put = PutRequest::builder().set_item(Some(item)).build().map_err(unbuilt)?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<_, StoreError>>()?;
        let calls = requests.chunks(MAX_BATCH_WRITE).map(|chunk| self.batch_write(chunk.to_vec()));
        futures::future::try_join_all(calls).await?;
        Ok(())
    }

    /// One BatchWriteItem, redoing what DynamoDB leaves unprocessed within the contention budget.
    async fn batch_write(&self, mut pending: Vec<WriteRequest>) -> Result<(), StoreError> {
        let mut contention = Contention::start();
        while !pending.is_empty() {
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, pending)
                .send()
                .await
                .map_err(sdk)?;
            pending = out.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default();
            if pending.is_empty() {
                break;
            }
            let pause = contention
                .next_pause()
                .ok_or_else(|| StoreError::Unavailable("search listings stayed unprocessed".into()))?;
            tokio::time::sleep(pause).await;
        }
        Ok(())
    }

    /// The newest `size` listings of `index` below `below` (and within the query's range), merged
    /// over its shards: each (sort key, transfer id), and whether the index holds more.
    async fn search_listed(
        &self,
        tenant: &TenantId,
        index: &SearchIndex<'_>,
        query: &TransferQuery,
        size: usize,
        below: Option<String>,
    ) -> Result<(Vec<(String, TransferId)>, bool), StoreError> {
        let low = query
            .created_from
            .map_or_else(|| keys::search_sk_bound(0), |f| keys::search_sk_bound(f.unix_timestamp_nanos()));
        // No key equals a bound (keys are `{nanos}#{id}`), so the inclusive bounds exclude them.
        let mut high = query.created_to.map_or_else(
            || keys::search_sk_bound(i128::from(i64::MAX) * 1_000_000_000),
            |t| keys::search_sk_bound(t.unix_timestamp_nanos()),
        );
        if let Some(below) = &below {
            high = high.min(below.clone());
        }
        if low >= high {
            return Ok((Vec::new(), false));
        }
        let shards = (0..keys::SEARCH_SHARDS).map(|shard| {
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :high")
                .expression_attribute_values(":pk", s(keys::search_pk(tenant, index, shard)))
                .expression_attribute_values(":low", s(low.as_str()))
                .expression_attribute_values(":high", s(high.as_str()))
                .scan_index_forward(false)
                .consistent_read(true)
                // One more than a page: the cursor's own key, which the bound includes, is dropped.
                .limit(i32::try_from(size + 1).unwrap_or(i32::MAX))
        });
        let (listed, more) = merged(shards, size, Order::Descending, below.as_deref()).await?;
        let found = listed.into_iter().map(|(sk, item)| {
            let id = item.get(TRANSFER_ID).and_then(|v| v.as_s().ok()).cloned();
            let id = id.ok_or_else(|| StoreError::Corrupt("a search listing without its transfer".into()))?;
            Ok((sk, TransferId::parse(id).map_err(|e| StoreError::Corrupt(e.to_string()))?))
        });
        Ok((found.collect::<Result<_, StoreError>>()?, more))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    Ascending,
    Descending,
}

/// The first `size` listings of an index's shards (one Query each, sent at once), merged in
/// sort-key `order` (`skip`, the cursor's own key, left out), and whether the index holds more. No
/// shard can hold one of the first that the others' pages hide: each read a page and one.
async fn merged(
    shards: impl Iterator<Item = QueryFluentBuilder>,
    size: usize,
    order: Order,
    skip: Option<&str>,
) -> Result<(Vec<(String, Item)>, bool), StoreError> {
    let mut found = Vec::new();
    let mut more = false;
    for out in futures::future::try_join_all(shards.map(QueryFluentBuilder::send)).await.map_err(sdk)? {
        more |= out.last_evaluated_key.is_some();
        for item in out.items.unwrap_or_default() {
            let sk = item.get(keys::SK).and_then(|v| v.as_s().ok()).cloned();
            let sk = sk.ok_or_else(|| StoreError::Corrupt("a search listing without its key".into()))?;
            if Some(sk.as_str()) != skip {
                found.push((sk, item));
            }
        }
    }
    found.sort_by(|a, b| if order == Order::Ascending { a.0.cmp(&b.0) } else { b.0.cmp(&a.0) });
    more |= found.len() > size;
    found.truncate(size);
    Ok((found, more))
}

#[async_trait]
impl TransferSearch for DynamoStore {
    async fn search_transfers(
        &self,
        tenant: &TenantId,
        query: &TransferQuery,
        page_size: u16,
        after: Option<&SearchPosition>,
        now: OffsetDateTime,
    ) -> Result<Page<Transfer, SearchPosition>, StoreError> {
        let size = usize::from(page_size);
        let index = query.index();
        // The candidates, newest first: each id with its position and, for a listing, the
        // instant it was listed at (a listing at another instant than the record's is stale).
        let mut candidates: Vec<(TransferId, SearchPosition, Option<i128>)> = Vec::new();
        let more = if let SearchIndex::Batch(batch) = index {
            let below = match after {
                Some(SearchPosition::BatchBefore(i)) => Some(*i as usize),
                Some(SearchPosition::Before { .. }) => return Err(bad_cursor()),
                None => None,
            };
            let ids = self.batch_ids(tenant, batch).await?.unwrap_or_default();
            let below = below.unwrap_or(ids.len()).min(ids.len());
            let first = below.saturating_sub(size);
            for i in (first..below).rev() {
                candidates.push((ids[i].clone(), SearchPosition::BatchBefore(i as u32), None));
            }
            first > 0
        } else {
            let below = match after {
                Some(SearchPosition::Before { at_nanos, id }) => Some(keys::search_sk(*at_nanos, id)),
                Some(SearchPosition::BatchBefore(_)) => return Err(bad_cursor()),
                None => None,
            };
            let (listed, more) = self.search_listed(tenant, &index, query, size, below).await?;
            for (sk, id) in listed {
                let at_nanos: i128 = sk
                    .split_once('#')
                    .and_then(|(at, _)| at.parse().ok())
                    .ok_or_else(|| StoreError::Corrupt(format!("search key {sk}")))?;
                candidates.push((id.clone(), SearchPosition::Before { at_nanos, id }, Some(at_nanos)));
            }
            more
        };
        let next = if more { candidates.last().map(|(_, position, _)| position.clone()) } else { None };
        let ids: Vec<TransferId> = candidates.iter().map(|(id, _, _)| id.clone()).collect();
        let state = self.read(tenant, &ids, &[]).await?;
        let mut items = Vec::new();
        for (id, _, listed_at) in candidates {
            let Some(stored) = state.transfers.get(&id) else { continue };
            let transfer = stored.transfer.clone();
            let current = listed_at.is_none_or(|at| {
                at == transfer.created_at.unix_timestamp_nanos()
                    && transfer.status != TransferStatus::Queued
                    && index.lists(&transfer)
            });
            if current && query.matches(&transfer, now) {
                items.push(transfer.observed(now));
            }
        }
        Ok(Page { items, next })
    }
}

fn bad_cursor() -> StoreError {
    ledger::port::invalid("cursor", "is not a cursor this search returned".into())
}
