//! The tenant directory and each tenant's books checkpoint (`ledger::books`): one item per tenant,
//! `D#{shard}` / `{tenant}`, put when the tenant opens an account (an update that sets only the
//! tenant, so it never touches the checkpoint), and moved from checkpoint to checkpoint by the
//! check, each move conditioned on the run it starts from.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use ledger::engine::Contention;
use ledger::port::{CheckpointRef, Checkpoints, StoreError, TenantBooks};
use ledger::{Event, LedgerError, TenantId};

use crate::cancel::{Cancelled, cancellation};
use crate::error::{sdk, unbuilt};
use crate::items::{Item, n, number, put, s};
use crate::keys::{self, key};
use crate::store::DynamoStore;
use crate::store::current_correlation;

impl DynamoStore {
    /// Puts `tenant` in the directory (idempotent).
    pub(crate) async fn list_tenant(&self, tenant: &TenantId) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::tenants_pk(keys::tenant_shard(tenant)), tenant.as_str())))
            .update_expression("SET tenant = :tenant")
            .expression_attribute_values(":tenant", s(tenant.as_str()))
            .send()
            .await
            .map_err(sdk)?;
        Ok(())
    }
}

fn tenant_books(item: &Item) -> Result<TenantBooks, StoreError> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let tenant = text("tenant")
        .and_then(|t| TenantId::parse(t).ok())
        .ok_or_else(|| StoreError::Corrupt("a directory item without its tenant".into()))?;
    let latest = match (number::<u64>(item.get("books_run")), text("books_key")) {
        (Some(run), Some(key)) => Some(CheckpointRef { run, key }),
        _ => None,
    };
    Ok(TenantBooks { tenant, latest })
}

#[async_trait]
impl Checkpoints for DynamoStore {
    /// A consistent Query of each of the directory's partitions, merged by tenant id.
    async fn tenants(&self) -> Result<Vec<TenantBooks>, StoreError> {
        let mut tenants = Vec::new();
        for shard in 0..keys::TENANT_SHARDS {
            let mut start: Option<Item> = None;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(keys::tenants_pk(shard)))
                    .set_exclusive_start_key(start.take())
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(sdk)?;
                for item in out.items() {
                    tenants.push(tenant_books(item)?);
                }
                match out.last_evaluated_key {
                    Some(key) => start = Some(key),
                    None => break,
                }
            }
        }
        tenants.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        Ok(tenants)
    }

    /// One transaction: the directory item's update, conditioned on the checkpoint's run being
    /// `previous`'s (absent for none), and the event's put (redone if it only met another one).
    async fn advance(
        &self,
        tenant: &TenantId,
        previous: Option<&CheckpointRef>,
        next: &CheckpointRef,
        event: &Event,
    ) -> Result<(), StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::tenants_pk(keys::tenant_shard(tenant)), tenant.as_str())))
            .update_expression("SET tenant = :tenant, books_run = :run, books_key = :key")
            .expression_attribute_values(":tenant", s(tenant.as_str()))
            .expression_attribute_values(":run", n(next.run))
            .expression_attribute_values(":key", s(next.key.clone()));
        let update = match previous {
            Some(previous) => update
                .condition_expression("books_run = :previous")
                .expression_attribute_values(":previous", n(previous.run)),
            None => update.condition_expression("attribute_not_exists(books_run)"),
        }
        .build()
        .map_err(unbuilt)?;
        let event =
            put(&self.table, crate::events::event_item(tenant, event, current_correlation().as_deref())?)?;
        let mut contention = Contention::start();
        loop {
            let written = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().update(update.clone()).build())
                .transact_items(event.clone())
                .send()
                .await;
            match written {
                Ok(_) => return Ok(()),
                Err(err) => match cancellation(err)? {
                    Cancelled::Contended => {
                        let pause = contention.next_pause().ok_or_else(|| {
                            StoreError::Unavailable(format!(
                                "the books checkpoint of {tenant} stayed contended"
                            ))
                        })?;
                        tokio::time::sleep(pause).await;
                    }
                    Cancelled::Conditions(_) => {
                        return Err(LedgerError::PreconditionFailed {
                            what: "books checkpoint",
                            id: tenant.to_string(),
                        }
                        .into());
                    }
                },
            }
        }
    }
}
