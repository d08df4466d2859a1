//! The deployed functions as processes on this machine: built with the workspace's release profile
//! (the profile cargo-lambda deploys), given the environment template.yaml gives them, pointed at
//! the local emulators, and the sample events they are invoked with, made fresh for each run.

use std::path::PathBuf;

use harness::{EmulatedStack, Emulators, paths, template};

use crate::io_error;
use futures::stream::{self, StreamExt};
use ledger::fixtures::{account, transfer};
use ledger::{BatchId, TenantId, TransferBatch};
use serde_json::{Value, json};
use time::OffsetDateTime;

/// The sample events' tenant, and the accounts they move money between.
pub const TENANT: &str = "acme";

/// A Lambda function of the project, or the hello-world floor it is compared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    Floor,
    Api,
    Worker,
    Sweeper,
    Publisher,
    Deliverer,
    Auditor,
}

impl Binary {
    pub const ALL: [Binary; 7] = [
        Binary::Floor,
        Binary::Api,
        Binary::Worker,
        Binary::Sweeper,
        Binary::Publisher,
        Binary::Deliverer,
        Binary::Auditor,
    ];

    pub fn package(self) -> &'static str {
        match self {
            Binary::Floor => "cold-start-floor",
            Binary::Api => "api",
            Binary::Worker => "worker",
            Binary::Sweeper => "sweeper",
            Binary::Publisher => "publisher",
            Binary::Deliverer => "deliverer",
            Binary::Auditor => "auditor",
        }
    }

    /// The function's resource in template.yaml (the floor has none).
    fn logical_id(self) -> Option<&'static str> {
        match self {
            Binary::Floor => None,
            Binary::Api => Some("ApiFunction"),
            Binary::Worker => Some("WorkerFunction"),
            Binary::Sweeper => Some("SweeperFunction"),
            Binary::Publisher => Some("PublisherFunction"),
            Binary::Deliverer => Some("DelivererFunction"),
            Binary::Auditor => Some("AuditorFunction"),
        }
    }

    /// The memory size template.yaml gives the function (its own, else the Globals'), in MB; the
    /// floor runs at the api's.
    pub fn memory_mb(self) -> std::io::Result<u32> {
        template::memory_mb(&paths::template(), self.logical_id().unwrap_or("ApiFunction"))
    }
}

/// Where `build_release` puts the binaries.
fn release_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| paths::workspace_root().join("target"))
        .join("release")
}

/// The directory of the binaries to measure: `prebuilt` (another build's, e.g. another commit's)
/// as given, else this tree's, built now with the release profile.
pub fn binaries(prebuilt: Option<PathBuf>) -> std::io::Result<PathBuf> {
    match prebuilt {
        Some(dir) => Ok(dir),
        None => {
            build_release()?;
            Ok(release_dir())
        }
    }
}

/// Builds every binary with the release profile, for this machine, in one cargo invocation.
fn build_release() -> std::io::Result<()> {
    eprintln!("==> cargo build --release of the functions and the hello-world floor");
    let status = crate::cargo()
        .args(["build", "--quiet", "--release"])
        .args(Binary::ALL.iter().flat_map(|b| ["--package", b.package()]))
        .status()?;
    if status.success() { Ok(()) } else { Err(std::io::Error::other("cargo build --release failed")) }
}

/// The variables template.yaml sets, with the SDK's endpoint variables aimed at the emulators.
pub fn environment(emulators: &Emulators, stack: &EmulatedStack) -> Vec<(&'static str, String)> {
    vec![
        ("TABLE_NAME", stack.table.clone()),
        ("QUEUE_URL", stack.queue.url().to_owned()),
        ("EVENT_BUS_NAME", stack.bus.name().to_owned()),
        ("WEBHOOK_QUEUE_URL", stack.deliveries.url().to_owned()),
        ("WEBHOOK_SECRETS_KEY", stack.secrets_key.clone()),
        ("TENANT_CLAIM", ledger_config::DEFAULT_TENANT_CLAIM.to_owned()),
        // A limit on, as deployed, so its write is in every measured request; a burst too large to
        // refuse any.
        ("TENANT_OPERATIONS_PER_SECOND", ledger::rate::MAX_PER_SECOND.to_string()),
        ("TENANT_BURST", "1000000".to_owned()),
        ("METRICS_NAMESPACE", ledger_config::DEFAULT_METRICS_NAMESPACE.to_owned()),
        ("SERVICE_NAME", ledger_config::DEFAULT_SERVICE_NAME.to_owned()),
        ("RUST_LOG", "info".to_owned()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
        ("AWS_LAMBDA_LOG_LEVEL", "INFO".to_owned()),
        ("AWS_ENDPOINT_URL_DYNAMODB", emulators.dynamodb_endpoint().to_owned()),
        ("AWS_ENDPOINT_URL_SQS", emulators.moto_endpoint().to_owned()),
        ("AWS_ENDPOINT_URL_EVENTBRIDGE", emulators.moto_endpoint().to_owned()),
        ("AWS_ENDPOINT_URL_KMS", emulators.moto_endpoint().to_owned()),
        ("AWS_ENDPOINT_URL_S3", emulators.moto_endpoint().to_owned()),
        ("DIGEST_KEY", stack.digest_key.clone()),
        ("ARCHIVE_BUCKET", stack.archive_bucket.clone()),
    ]
}

/// Accounts of the worker's transfers: transfer `i` of a submission moves money from `payer-i`
/// (may go negative) to `payee-i`, so no two transfers of an invocation share an account, as the
/// capacity rows of the queued path assume.
pub const PAIRS: usize = 100;

pub fn pair(i: usize) -> (String, String) {
    (format!("payer-{i}"), format!("payee-{i}"))
}

/// Opens the accounts the sample events name, `bank` (may go negative), `alice` and `bob`, and the
/// worker's pairs.
pub async fn open_sample_accounts(stack: &EmulatedStack) -> std::io::Result<()> {
    let tenant = tenant()?;
    let mut accounts =
        vec![("bank".to_owned(), true), ("alice".to_owned(), false), ("bob".to_owned(), false)];
    accounts.extend((0..PAIRS).flat_map(|i| {
        let (payer, payee) = pair(i);
        [(payer, true), (payee, false)]
    }));
    let opened: Vec<_> = stream::iter(accounts)
        .map(|(id, overdraft)| {
            stack.store.create_account(&tenant, account(&id, overdraft), OffsetDateTime::now_utc())
        })
        .buffer_unordered(16)
        .collect()
        .await;
    opened.into_iter().try_for_each(|o| o.map(|_| ()).map_err(io_error))
}

fn tenant() -> std::io::Result<TenantId> {
    TenantId::parse(TENANT).map_err(io_error)
}

/// A sample event of events/, as Lambda delivers it.
pub fn sample(file: &str) -> std::io::Result<Value> {
    let raw = std::fs::read_to_string(paths::workspace_root().join("events").join(file))?;
    serde_json::from_str(&raw).map_err(io_error)
}

/// The API sample `file` with its body's fields replaced, e.g. a fresh transfer id, so every
/// invocation does the work of a first request rather than a replay.
pub fn api_event(file: &str, fields: &[(&str, Value)]) -> std::io::Result<Value> {
    let mut event = sample(file)?;
    if !fields.is_empty() {
        let mut body: Value =
            serde_json::from_str(event["body"].as_str().unwrap_or("{}")).map_err(io_error)?;
        for (name, value) in fields {
            body[*name] = value.clone();
        }
        event["body"] = Value::String(body.to_string());
    }
    Ok(event)
}

/// An SQS event of one message naming a batch of `transfers` (at most `PAIRS`) transfers of 1
/// between the pairs, submitted first as the API would have (a queued message names a submission).
pub async fn worker_event(stack: &EmulatedStack, batch: &str, transfers: usize) -> std::io::Result<Value> {
    let members = (0..transfers)
        .map(|i| {
            let (payer, payee) = pair(i);
            transfer(&format!("{batch}-{i}"), &payer, &payee, 1)
        })
        .collect();
    let id = BatchId::parse(batch).map_err(io_error)?;
    let submitted = TransferBatch::new(id, members).map_err(io_error)?;
    stack.store.submit_batch(&tenant()?, &submitted, OffsetDateTime::now_utc()).await.map_err(io_error)?;
    let mut event = sample("sqs-transfers.json")?;
    let mut record = event["Records"][0].take();
    record["messageId"] = json!(uuid::Uuid::new_v4().to_string());
    record["body"] = json!(json!({"tenant": TENANT, "batch": batch}).to_string());
    event["Records"] = json!([record]);
    Ok(event)
}

/// An SQS event of one webhook message, as the deliverer's mapping delivers it: the fan-out of a
/// fresh `transfer.committed` event of the sample tenant, so each run finds the tenant's endpoints
/// and queues a delivery to each.
pub fn deliverer_event(run: &str) -> std::io::Result<Value> {
    let mut event = sample("sqs-transfers.json")?;
    let mut record = event["Records"][0].take();
    record["messageId"] = json!(uuid::Uuid::new_v4().to_string());
    let since =
        OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).map_err(io_error)?;
    let fan_out = json!({"tenant": TENANT, "fan_out": format!("transfer.committed:{run}"), "since": since});
    record["body"] = json!(fan_out.to_string());
    event["Records"] = json!([record]);
    Ok(event)
}

/// A DynamoDB stream event of one event item, as the publisher's mapping delivers it: the sample
/// `dynamodb-stream-event.json` with the event's id made fresh, so each run publishes a new event.
pub fn publisher_event(run: &str) -> std::io::Result<Value> {
    let mut event = sample("dynamodb-stream-event.json")?;
    let image = &mut event["Records"][0]["dynamodb"]["NewImage"];
    let id = format!("transfer.committed:{run}");
    let mut body: Value =
        serde_json::from_str(image["body"]["S"].as_str().unwrap_or("{}")).map_err(io_error)?;
    body["id"] = json!(id);
    body["data"]["object"]["id"] = json!(run);
    image["id"] = json!({"S": id});
    image["body"] = json!({"S": body.to_string()});
    Ok(event)
}

/// Whether an answer is a success: a 2xx for the API, no failed record for the worker.
pub fn succeeded(binary: Binary, response: &[u8]) -> bool {
    let Ok(answer) = serde_json::from_slice::<Value>(response) else { return false };
    match binary {
        Binary::Api => answer["statusCode"].as_u64().is_some_and(|s| (200..300).contains(&s)),
        Binary::Worker | Binary::Publisher | Binary::Deliverer => {
            answer["batchItemFailures"].as_array().is_some_and(Vec::is_empty)
        }
        Binary::Floor | Binary::Sweeper => answer.is_object(),
        Binary::Auditor => answer["checked"].as_u64().is_some(),
    }
}
