//! The publisher function: read the configuration and build the clients once at init, then
//! publish each batch of stream records.

use std::sync::Arc;

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::DynamoDbEventResponse;
use lambda_runtime::{LambdaEvent, service_fn};
use ledger_config::PublisherConfig;
use ledger_dynamodb::client::config_loader;
use ledger_eventbridge::EventBus;
use ledger_sqs::deliveries::SqsWebhookQueue;
use ledger_telemetry::Function;
use publisher::Publisher;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = PublisherConfig::from_env()?;
    let metrics = ledger_telemetry::init(Function::Publisher, &config.telemetry)?;
    let sdk = config_loader().load().await;
    let bus =
        EventBus::new(aws_sdk_eventbridge::Client::new(&sdk), config.event_bus_name, config.event_source);
    let publisher = Publisher {
        bus,
        deliveries: Arc::new(SqsWebhookQueue::new(aws_sdk_sqs::Client::new(&sdk), config.webhook_queue_url)),
        read_event: ledger_dynamodb::events::from_stream,
    };
    let publisher = &publisher;
    ledger_telemetry::lambda::run(
        metrics,
        service_fn(move |event: LambdaEvent<Event>| async move {
            Ok::<DynamoDbEventResponse, lambda_runtime::Error>(
                ::publisher::handle(publisher, event.payload).await,
            )
        }),
    )
    .await
}
