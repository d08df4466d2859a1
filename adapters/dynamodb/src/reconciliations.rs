//! Reconciliations: one item per account and statement, `T#{tenant}#R#{account}` / `{digest}`,
//! the reconciliation as JSON (`body`), put only if absent.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use ledger::chain::Hash256;
use ledger::port::{Created, Reconciliations, StoreError};
use ledger::reconcile::Reconciliation;
use ledger::{AccountId, TenantId};

use crate::error::sdk;
use crate::items::s;
use crate::keys::{self, key};
use crate::store::DynamoStore;

fn from_item(item: &crate::items::Item) -> Result<Reconciliation, StoreError> {
    let body = item
        .get("body")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| StoreError::Corrupt("a reconciliation without its body".into()))?;
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("a reconciliation: {e}")))
}

#[async_trait]
impl Reconciliations for DynamoStore {
    /// One PutItem if absent; on a failed condition, the kept item (returned with the failure).
    async fn record_reconciliation(
        &self,
        tenant: &TenantId,
        reconciliation: &Reconciliation,
    ) -> Result<Created<Reconciliation>, StoreError> {
        let body =
            serde_json::to_string(reconciliation).map_err(|e| StoreError::Unexpected(e.to_string()))?;
        let pk = keys::reconciliation_pk(tenant, &reconciliation.account_id);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(key(pk, &reconciliation.id.to_string())))
            .item("body", s(body))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            )
            .send()
            .await;
        match put {
            Ok(_) => Ok(Created::New(reconciliation.clone())),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => match failed.item() {
                    Some(item) => Ok(Created::Replayed(from_item(item)?)),
                    None => self
                        .get_reconciliation(tenant, &reconciliation.account_id, &reconciliation.id)
                        .await
                        .map(Created::Replayed),
                },
                _ => Err(sdk(err)),
            },
        }
    }

    /// One consistent GetItem.
    async fn get_reconciliation(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        id: &Hash256,
    ) -> Result<Reconciliation, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::reconciliation_pk(tenant, account), &id.to_string())))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk)?;
        match out.item {
            Some(item) => from_item(&item),
            None => Err(StoreError::not_found("reconciliation", id)),
        }
    }
}
