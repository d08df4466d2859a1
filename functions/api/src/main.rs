//! The API function: build the store client once at init, then serve the router for every event.

use ledger_dynamodb::DynamoStore;
use ledger_http::{AppState, DEFAULT_TENANT_CLAIM};
use ledger_sqs::TransferQueue;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    let table = std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME is not set")?;
    let claim = std::env::var("TENANT_CLAIM").unwrap_or_else(|_| DEFAULT_TENANT_CLAIM.into());
    let queue_url = std::env::var("QUEUE_URL").map_err(|_| "QUEUE_URL is not set")?;
    let config = ledger_dynamodb::client::config_loader().load().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), table);
    let queue = TransferQueue::new(aws_sdk_sqs::Client::new(&config), queue_url);
    lambda_http::run(ledger_http::router(AppState::new(store, queue).with_tenant_claim(claim))).await
}
