//! The deliverer function: read the configuration and build the clients once at init, then deliver
//! each SQS batch of webhook jobs.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use ledger_config::DelivererConfig;
use std::sync::Arc;

use ledger_dynamodb::DynamoStore;
use ledger_dynamodb::client::{config_loader, dynamodb_client};
use ledger_kms::KmsSealer;
use ledger_sqs::deliveries::SqsWebhookQueue;
use ledger_telemetry::Function;
use ledger_webhooks::WebhookClient;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = DelivererConfig::from_env()?;
    let metrics = ledger_telemetry::init(Function::Deliverer, &config.telemetry)?;
    let sdk = config_loader().load().await;
    let kms = sdk.clone();
    let deliverer = deliverer::Deliverer {
        store: Arc::new(DynamoStore::new(dynamodb_client(&sdk), config.table_name)),
        sealer: Arc::new(KmsSealer::on_first_use(
            move || aws_sdk_kms::Client::new(&kms),
            config.webhook_secrets_key,
        )),
        queue: SqsWebhookQueue::new(aws_sdk_sqs::Client::new(&sdk), config.queue_url),
        http: WebhookClient::new(config.url_policy, config.timeout)?,
    };
    let deliverer = &deliverer;
    ledger_telemetry::lambda::run(
        metrics,
        service_fn(move |event: LambdaEvent<SqsEvent>| async move {
            Ok::<SqsBatchResponse, lambda_runtime::Error>(deliverer.handle(event.payload).await)
        }),
    )
    .await
}
