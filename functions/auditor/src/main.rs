//! The auditor function: read the configuration and build the store, KMS and S3 clients once at
//! init, then check the books on each scheduled event (its content is not needed: the clock is).

use lambda_runtime::{LambdaEvent, service_fn};
use ledger::port::{Archive, Notary, Store};
use ledger_config::AuditorConfig;
use ledger_dynamodb::DynamoStore;
use ledger_dynamodb::client::{config_loader, dynamodb_client};
use ledger_kms::KmsNotary;
use ledger_s3::{S3Archive, s3_client};
use ledger_telemetry::Function;
use time::OffsetDateTime;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = AuditorConfig::from_env()?;
    let metrics = ledger_telemetry::init(Function::Auditor, &config.telemetry)?;
    let sdk = config_loader().load().await;
    let store: &dyn Store = &DynamoStore::new(dynamodb_client(&sdk), config.table_name);
    let notary: &dyn Notary = &KmsNotary::new(aws_sdk_kms::Client::new(&sdk), config.digest_key);
    let archive: &dyn Archive = &S3Archive::new(s3_client(&sdk, config.s3_path_style), config.archive_bucket);
    ledger_telemetry::lambda::run(
        metrics,
        service_fn(move |_: LambdaEvent<serde_json::Value>| async move {
            let tick = auditor::handle(store, notary, archive, OffsetDateTime::now_utc()).await?;
            Ok::<_, lambda_runtime::Error>(serde_json::json!({
                "checked": tick.checked, "faults": tick.faults, "entries": tick.entries,
                "raced": tick.raced,
            }))
        }),
    )
    .await
}
