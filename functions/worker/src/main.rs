//! The worker function: build the store client once at init, then apply each SQS batch.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use ledger_dynamodb::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    let table = std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME is not set")?;
    let config = ledger_dynamodb::client::config_loader().load().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), table);
    let store = &store;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, lambda_runtime::Error>(worker::handle(store, event.payload).await)
    }))
    .await
}
