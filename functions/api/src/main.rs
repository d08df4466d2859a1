//! The API function: build the clients once at init, then serve the router for every event.

use ledger_dynamodb::DynamoStore;
use ledger_dynamodb::client::{config_loader, dynamodb_client};
use ledger_http::{AppState, DEFAULT_TENANT_CLAIM};
use ledger_sqs::TransferQueue;
use ledger_telemetry::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let metrics = ledger_telemetry::init(Function::Api)?;
    let table = std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME is not set")?;
    let claim = std::env::var("TENANT_CLAIM").unwrap_or_else(|_| DEFAULT_TENANT_CLAIM.into());
    let queue_url = std::env::var("QUEUE_URL").map_err(|_| "QUEUE_URL is not set")?;
    let config = config_loader().load().await;
    let store = DynamoStore::new(dynamodb_client(&config), table);
    let queue = TransferQueue::new(aws_sdk_sqs::Client::new(&config), queue_url);
    let state = AppState::new(store, queue).with_tenant_claim(claim);
    ledger_telemetry::lambda::run_http(metrics, ledger_http::router(state)).await
}
