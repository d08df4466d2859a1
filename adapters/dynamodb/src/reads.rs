//! Reads of items: one strongly consistent GetItem, a BatchGetItem where each item only needs to
//! be current, and a TransactGetItems where the items must be read at one instant together (a
//! snapshot).

use aws_sdk_dynamodb::types::{Get, KeysAndAttributes, TransactGetItem};
use ledger::engine::Contention;
use ledger::port::StoreError;

use crate::cancel::read_cancellation;
use crate::error::{sdk, unbuilt};
use crate::items::Item;
use crate::store::DynamoStore;

/// DynamoDB's limit of keys in one BatchGetItem, and of items in one TransactGetItems.
pub(crate) const MAX_READ_KEYS: usize = 100;

impl DynamoStore {
    /// The item at `key`, strongly consistent (one GetItem), if it exists.
    pub(crate) async fn get(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk)?;
        Ok(out.item)
    }

    /// The items at `keys` that exist, strongly consistent: BatchGetItems of 100 keys, retrying
    /// what DynamoDB left unprocessed within the contention budget.
    pub(crate) async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found: Vec<Item> = Vec::new();
        for chunk in keys.chunks(MAX_READ_KEYS) {
            let mut pending = KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .consistent_read(true)
                .build()
                .map_err(unbuilt)?;
            let mut contention = Contention::start();
            loop {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(sdk)?;
                found.extend(out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default());
                match out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                    Some(rest) if !rest.keys.is_empty() => pending = rest,
                    _ => break,
                }
                let pause = contention
                    .next_pause()
                    .ok_or_else(|| StoreError::Unavailable("batch reads stayed unprocessed".into()))?;
                tokio::time::sleep(pause).await;
            }
        }
        Ok(found)
    }

    /// The items at `keys` (at most 100) as they all stood at one instant: one TransactGetItems,
    /// redone if a write transaction on one of them cancels it. Missing items are left out.
    pub(crate) async fn snapshot(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let gets: Vec<TransactGetItem> = keys
            .into_iter()
            .map(|key| {
                let get = Get::builder().table_name(&self.table).set_key(Some(key)).build();
                get.map(|get| TransactGetItem::builder().get(get).build())
            })
            .collect::<Result<_, _>>()
            .map_err(unbuilt)?;
        let mut contention = Contention::start();
        loop {
            match self.client.transact_get_items().set_transact_items(Some(gets.clone())).send().await {
                Ok(out) => {
                    return Ok(out
                        .responses
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|r| r.item)
                        .collect());
                }
                // A write transaction held one of the items: read again.
                Err(err) => {
                    read_cancellation(err)?;
                }
            }
            let pause = contention
                .next_pause()
                .ok_or_else(|| StoreError::Unavailable("snapshot reads stayed contended".into()))?;
            tokio::time::sleep(pause).await;
        }
    }
}
