//! The publisher function: read the configuration and build the EventBridge client once at init,
//! then publish each batch of stream records.

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::DynamoDbEventResponse;
use lambda_runtime::{LambdaEvent, service_fn};
use ledger_config::PublisherConfig;
use ledger_dynamodb::client::config_loader;
use ledger_eventbridge::EventBus;
use ledger_telemetry::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = PublisherConfig::from_env()?;
    let metrics = ledger_telemetry::init(Function::Publisher, &config.telemetry)?;
    let sdk = config_loader().load().await;
    let bus =
        EventBus::new(aws_sdk_eventbridge::Client::new(&sdk), config.event_bus_name, config.event_source);
    let bus = &bus;
    ledger_telemetry::lambda::run(
        metrics,
        service_fn(move |event: LambdaEvent<Event>| async move {
            Ok::<DynamoDbEventResponse, lambda_runtime::Error>(publisher::handle(bus, event.payload).await)
        }),
    )
    .await
}
