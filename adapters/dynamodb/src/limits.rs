//! Per-tenant request limits on DynamoDB: a tenant's bucket is one item holding its TAT
//! (`ledger::rate`), moved by one conditional UpdateItem per admission, so API instances running at
//! once never admit more than the limit between them, with no read before the write. A failed
//! condition returns the item (ReturnValuesOnConditionCheckFailure), so the writer learns the TAT.
//! One item takes at most 1,000 writes a second: `ledger::rate::MAX_PER_SECOND`.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use ledger::TenantId;
use ledger::port::{BucketWrite, BucketWritten, Limits, StoreError};

use crate::error::sdk;
use crate::items::{n, number};
use crate::keys::{self, key};
use crate::store::DynamoStore;

const TAT: &str = "tat";

#[async_trait]
impl Limits for DynamoStore {
    async fn write_bucket(&self, tenant: &TenantId, write: BucketWrite) -> Result<BucketWritten, StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::limit_pk(tenant), keys::LIMIT_SK)))
            .expression_attribute_names("#tat", TAT)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let update = match write {
            BucketWrite::FromFull { now, tat } => update
                .update_expression("SET #tat = :next")
                .condition_expression("attribute_not_exists(#tat) OR #tat <= :now")
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":next", n(tat)),
            BucketWrite::Spend { now, spend, latest } => update
                .update_expression("SET #tat = #tat + :spend")
                .condition_expression("#tat > :now AND #tat <= :latest")
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":spend", n(spend))
                .expression_attribute_values(":latest", n(latest))
                .return_values(ReturnValue::UpdatedNew),
        };
        match update.send().await {
            Ok(out) => Ok(BucketWritten::Moved { tat: out.attributes().and_then(|a| number(a.get(TAT))) }),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                    Ok(BucketWritten::Refused { held: failed.item().and_then(|item| number(item.get(TAT))) })
                }
                _ => Err(sdk(err)),
            },
        }
    }
}
