//! Changes to a recorded transfer: its metadata, merged in by one conditional update, only while
//! the item is as the client read it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use ledger::engine::Contention;
use ledger::port::{StoreError, TransferChanges};
use ledger::{Event, LedgerError, TenantId, Transfer};
use time::OffsetDateTime;

use crate::cancel::{Cancelled, cancellation};
use crate::error::unbuilt;
use crate::items::{self, n, put, s};
use crate::keys;
use crate::store::{DynamoStore, current_correlation};

#[async_trait]
impl TransferChanges for DynamoStore {
    /// Lists the new metadata for search first (a listing of a pair the record no longer holds is
    /// skipped by a read), then one transaction: the record's metadata and revision, conditioned
    /// on its status, reversed sum and revision as read, and the event.
    async fn change_transfer_metadata(
        &self,
        tenant: &TenantId,
        read: &Transfer,
        patch: &BTreeMap<String, Option<String>>,
        now: OffsetDateTime,
    ) -> Result<Transfer, StoreError> {
        let Some(changed) = ledger::transfer_change::with_metadata(read, patch)? else {
            return Ok(read.clone());
        };
        self.put_listings(crate::search::listings(tenant, &changed, None)).await?;
        let event = Event::transfer_updated(tenant, &changed, now);
        let item = crate::events::event_item(tenant, &event, current_correlation().as_deref())?;
        let event = put(&self.table, item)?;
        let mut contention = Contention::start();
        loop {
            let writes = vec![self.transfer_metadata_update(tenant, read, &changed)?, event.clone()];
            let sent = self.client.transact_write_items().set_transact_items(Some(writes)).send().await;
            let Err(err) = sent else { return Ok(changed) };
            if let Cancelled::Conditions(_) = cancellation(err)? {
                let id = read.request.id.to_string();
                return Err(LedgerError::PreconditionFailed { what: "transfer", id }.into());
            }
            let pause = contention.next_pause().ok_or_else(|| {
                StoreError::Unavailable(format!("transfer {} stayed contended", read.request.id))
            })?;
            tokio::time::sleep(pause).await;
        }
    }
}

impl DynamoStore {
    fn transfer_metadata_update(
        &self,
        tenant: &TenantId,
        read: &Transfer,
        changed: &Transfer,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut condition = vec!["#status = :status"];
        condition.push(if read.reversals.is_empty() {
            "attribute_not_exists(reversed_amount)"
        } else {
            "reversed_amount = :reversed"
        });
        condition.push(if read.revision == 0 { "attribute_not_exists(revision)" } else { "revision = :was" });
        let mut update = Update::builder()
            .table_name(&self.table)
            .key(keys::PK, s(keys::transfer_pk(tenant, &read.request.id)))
            .key(keys::SK, s(keys::TRANSFER_SK))
            .update_expression("SET metadata = :metadata, revision = :revision")
            .condition_expression(condition.join(" AND "))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(items::status_code(&read.status)))
            .expression_attribute_values(":metadata", items::metadata(&changed.request.metadata))
            .expression_attribute_values(":revision", n(changed.revision));
        if !read.reversals.is_empty() {
            update = update.expression_attribute_values(":reversed", n(read.reversed_amount()));
        }
        if read.revision > 0 {
            update = update.expression_attribute_values(":was", n(read.revision));
        }
        Ok(TransactWriteItem::builder().update(update.build().map_err(unbuilt)?).build())
    }
}
