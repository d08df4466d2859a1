//! The API function: read the configuration and build the clients once per execution environment
//! (the store's at init, the queues' at their first send), then serve the router for every event.

use std::sync::Arc;

use ledger_config::ApiConfig;
use ledger_dynamodb::DynamoStore;
use ledger_dynamodb::client::{config_loader, dynamodb_client};
use ledger_http::AppState;
use ledger_kms::KmsSealer;
use ledger_sqs::SqsTransferQueue;
use ledger_sqs::deliveries::SqsWebhookQueue;
use ledger_telemetry::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = ApiConfig::from_env()?;
    let metrics = ledger_telemetry::init(Function::Api, &config.telemetry)?;
    let sdk = config_loader().load().await;
    let store = DynamoStore::new(dynamodb_client(&sdk), config.table_name);
    let (for_webhooks, for_secrets) = (sdk.clone(), sdk.clone());
    let sealer =
        KmsSealer::on_first_use(move || aws_sdk_kms::Client::new(&for_secrets), config.webhook_secrets_key);
    let queue = SqsTransferQueue::on_first_send(move || aws_sdk_sqs::Client::new(&sdk), config.queue_url);
    let webhooks = SqsWebhookQueue::on_first_send(
        move || aws_sdk_sqs::Client::new(&for_webhooks),
        config.webhook_queue_url,
    );
    let state = AppState::new(Arc::new(store), Arc::new(queue), config.tenant_claim)
        .with_client_tenants(config.client_tenants)
        .with_rate_limit(config.tenant_limit)
        .with_webhooks(Arc::new(webhooks), config.webhook_urls, Arc::new(sealer));
    ledger_telemetry::lambda::run_http(metrics, ledger_http::router(state)).await
}
