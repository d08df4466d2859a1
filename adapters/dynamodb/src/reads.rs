//! Reads of several items at once: a BatchGetItem where each item only needs to be current, and a
//! TransactGetItems where the items must be read at one instant together (a snapshot).

use aws_sdk_dynamodb::types::{Get, KeysAndAttributes, TransactGetItem};

use crate::cancel::read_cancellation;
use crate::items::Item;
use crate::retry::{MAX_ATTEMPTS, backoff};
use crate::{DynamoStore, StoreError};

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
            .await?;
        Ok(out.item)
    }

    /// Strongly consistent BatchGetItem of at most 100 keys, retrying what DynamoDB left unprocessed.
    pub(crate) async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pending = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(|e| StoreError::Unexpected(e.to_string()))?;
        let mut found: Vec<Item> = Vec::new();
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let out = self.client.batch_get_item().request_items(&self.table, pending).send().await?;
            found.extend(out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default());
            match out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                Some(rest) if !rest.keys.is_empty() => pending = rest,
                _ => return Ok(found),
            }
        }
        Err(StoreError::Unavailable("batch reads stayed unprocessed".into()))
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
            .map_err(|e| StoreError::Unexpected(e.to_string()))?;
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
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
        }
        Err(StoreError::Unavailable("snapshot reads stayed contended".into()))
    }
}
