//! The sweeper function: read the configuration and build the store client once at init, then
//! sweep on each scheduled event (its content is not needed: the clock is).

use lambda_runtime::{LambdaEvent, service_fn};
use ledger::port::Store;
use ledger_config::SweeperConfig;
use ledger_dynamodb::DynamoStore;
use ledger_dynamodb::client::{config_loader, dynamodb_client};
use ledger_telemetry::Function;
use time::OffsetDateTime;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = SweeperConfig::from_env()?;
    let metrics = ledger_telemetry::init(Function::Sweeper, &config.telemetry)?;
    let sdk = config_loader().load().await;
    let store: &dyn Store = &DynamoStore::new(dynamodb_client(&sdk), config.table_name);
    ledger_telemetry::lambda::run(
        metrics,
        service_fn(move |_: LambdaEvent<serde_json::Value>| async move {
            let sweep = sweeper::handle(store, OffsetDateTime::now_utc()).await?;
            Ok::<_, lambda_runtime::Error>(
                serde_json::json!({"expired": sweep.expired, "unlisted": sweep.resolved}),
            )
        }),
    )
    .await
}
