//! The worker function: read the configuration and build the store client once at init (the
//! queue's at its first send: only a batch's continuation sends), then apply each SQS batch.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use ledger::port::{Store, TransferQueue};
use ledger_config::WorkerConfig;
use ledger_dynamodb::DynamoStore;
use ledger_dynamodb::client::{config_loader, dynamodb_client};
use ledger_sqs::SqsTransferQueue;
use ledger_telemetry::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = WorkerConfig::from_env()?;
    let metrics = ledger_telemetry::init(Function::Worker, &config.telemetry)?;
    let sdk = config_loader().load().await;
    let store: &dyn Store = &DynamoStore::new(dynamodb_client(&sdk), config.table_name);
    let queue: &dyn TransferQueue =
        &SqsTransferQueue::on_first_send(move || aws_sdk_sqs::Client::new(&sdk), config.queue_url);
    ledger_telemetry::lambda::run(
        metrics,
        service_fn(move |event: LambdaEvent<SqsEvent>| async move {
            let deadline = worker::run_deadline(event.context.deadline);
            Ok::<SqsBatchResponse, lambda_runtime::Error>(
                worker::handle(store, queue, event.payload, deadline).await,
            )
        }),
    )
    .await
}
