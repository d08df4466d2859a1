//! Every metric the ledger emits, and the one function that records each. The metrics go through the
//! `metrics` facade to `metrics_cloudwatch_embedded`, which writes them as CloudWatch Embedded Metric
//! Format documents to stdout after each invocation; CloudWatch turns those log lines into metrics.
//! The local stack reads the very same documents for its dashboard.

use std::time::Duration;

use ::metrics::{Unit, counter, describe_counter, describe_histogram, histogram};
use ledger_config::TelemetryConfig;
pub use metrics_cloudwatch_embedded::Collector;

/// The dimension every metric carries (its value is the service name).
pub const SERVICE_DIMENSION: &str = "service";

pub const TRANSFERS_COMMITTED: &str = "TransfersCommitted";
pub const TRANSFERS_REJECTED: &str = "TransfersRejected";
pub const IDEMPOTENT_REPLAYS: &str = "IdempotentReplays";
pub const API_REQUESTS: &str = "ApiRequests";
pub const API_ERRORS: &str = "ApiErrors";
pub const API_LATENCY: &str = "ApiLatency";
pub const DYNAMODB_RETRIES: &str = "DynamoDbRetries";
pub const DYNAMODB_THROTTLES: &str = "DynamoDbThrottles";
pub const ENQUEUE_TO_COMMIT: &str = "EnqueueToCommit";
pub const SUBMITTED_BATCH_SIZE: &str = "SubmittedBatchSize";
pub const WORKER_BATCH_SIZE: &str = "WorkerBatchSize";
pub const PARTIAL_BATCH_FAILURES: &str = "PartialBatchFailures";
pub const COLD_START: &str = "ColdStart";
pub const HOLDS_EXPIRED: &str = "HoldsExpired";
pub const REQUESTS_LIMITED: &str = "RequestsLimited";
pub const EVENTS_PUBLISHED: &str = "EventsPublished";
pub const PUBLISH_LAG: &str = "PublishLag";
pub const WEBHOOK_DELIVERIES: &str = "WebhookDeliveries";
pub const WEBHOOK_DELIVERY_LATENCY: &str = "WebhookDeliveryLatency";
pub const UNDELIVERED_AGE: &str = "UndeliveredWebhookAge";
pub const BOOKS_FAULTS: &str = "BooksFaults";
pub const BOOKS_ENTRIES_CHECKED: &str = "BooksEntriesChecked";

/// One metric: its name, unit and the dimensions it carries besides `service`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricSpec {
    pub name: &'static str,
    pub unit: Unit,
    pub dimensions: &'static [&'static str],
    pub meaning: &'static str,
}

const fn spec(
    name: &'static str,
    unit: Unit,
    dimensions: &'static [&'static str],
    meaning: &'static str,
) -> MetricSpec {
    MetricSpec { name, unit, dimensions, meaning }
}

/// The catalogue. Tests check that the EMF output holds each of these with exactly these dimensions,
/// and that the dashboard and alarms in template.yaml name only these.
pub const CATALOG: &[MetricSpec] = &[
    spec(TRANSFERS_COMMITTED, Unit::Count, &[], "transfers applied (API and worker)"),
    spec(TRANSFERS_REJECTED, Unit::Count, &["reason"], "transfers refused by a rule, by rule code"),
    spec(IDEMPOTENT_REPLAYS, Unit::Count, &[], "retries answered from the first outcome"),
    spec(API_REQUESTS, Unit::Count, &[], "API responses"),
    spec(API_ERRORS, Unit::Count, &[], "API responses with a 5xx status"),
    spec(API_LATENCY, Unit::Milliseconds, &[], "time to answer an API request"),
    spec(DYNAMODB_RETRIES, Unit::Count, &[], "DynamoDB attempts after the first"),
    spec(DYNAMODB_THROTTLES, Unit::Count, &[], "DynamoDB attempts refused by throttling"),
    spec(ENQUEUE_TO_COMMIT, Unit::Milliseconds, &[], "from SQS accepting a transfer to its commit"),
    spec(SUBMITTED_BATCH_SIZE, Unit::Count, &[], "transfers per submitted batch"),
    spec(WORKER_BATCH_SIZE, Unit::Count, &[], "SQS records per worker invocation"),
    spec(PARTIAL_BATCH_FAILURES, Unit::Count, &[], "records the worker handed back to SQS"),
    spec(COLD_START, Unit::Count, &["function"], "new execution environments"),
    spec(HOLDS_EXPIRED, Unit::Count, &[], "holds the sweeper released after their timeout"),
    spec(REQUESTS_LIMITED, Unit::Count, &[], "requests refused with 429: their tenant was over its limit"),
    spec(EVENTS_PUBLISHED, Unit::Count, &[], "events put on the EventBridge bus"),
    spec(PUBLISH_LAG, Unit::Milliseconds, &[], "from a change's commit to its event on the bus"),
    spec(
        WEBHOOK_DELIVERIES,
        Unit::Count,
        &["outcome"],
        "webhook attempts and ends: delivered, retried, failed, gone (410), dropped",
    ),
    spec(WEBHOOK_DELIVERY_LATENCY, Unit::Milliseconds, &[], "from a change's commit to its webhook's 2xx"),
    spec(
        UNDELIVERED_AGE,
        Unit::Milliseconds,
        &[],
        "age of an event whose webhook attempt failed (its maximum: the oldest undelivered)",
    ),
    spec(
        BOOKS_FAULTS,
        Unit::Count,
        &[],
        "what the auditor found wrong with the books: a history that does not follow its checkpoint, an entry without its other side, a currency whose balances do not sum to zero",
    ),
    spec(
        BOOKS_ENTRIES_CHECKED,
        Unit::Count,
        &[],
        "entries the auditor checked (those written since each checkpoint)",
    ),
];

/// The outcomes `WebhookDeliveries` counts.
pub const WEBHOOK_OUTCOMES: [&str; 5] = ["delivered", "retried", "failed", "gone", "dropped"];

/// The function a line or metric comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    Api,
    Worker,
    Sweeper,
    Publisher,
    Deliverer,
    Auditor,
}

impl Function {
    pub const ALL: [Function; 6] = [
        Function::Api,
        Function::Worker,
        Function::Sweeper,
        Function::Publisher,
        Function::Deliverer,
        Function::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Worker => "worker",
            Self::Sweeper => "sweeper",
            Self::Publisher => "publisher",
            Self::Deliverer => "deliverer",
            Self::Auditor => "auditor",
        }
    }
}

/// Installs the process-wide EMF recorder. Call once; flush with `Collector::flush` (the Lambda run
/// loop does it after every invocation).
pub fn init(config: &TelemetryConfig) -> Result<&'static Collector, metrics_cloudwatch_embedded::Error> {
    let collector = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(config.metrics_namespace.clone())
        .with_dimension(SERVICE_DIMENSION, config.service_name.clone())
        .with_lambda_request_id("requestId")
        .init()?;
    // Units come from the descriptions, which go to the recorder just installed.
    for metric in CATALOG {
        if matches!(metric.unit, Unit::Milliseconds) || is_histogram(metric.name) {
            describe_histogram!(metric.name, metric.unit, metric.meaning);
        } else {
            describe_counter!(metric.name, metric.unit, metric.meaning);
        }
    }
    Ok(collector)
}

fn is_histogram(name: &str) -> bool {
    [SUBMITTED_BATCH_SIZE, WORKER_BATCH_SIZE, BOOKS_FAULTS].contains(&name)
}

fn millis(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1000.0
}

pub fn transfer_committed() {
    counter!(TRANSFERS_COMMITTED).increment(1);
}

/// `reason` is a rule code: a short, closed set, so the dimension stays cheap.
pub fn transfer_rejected(reason: &str) {
    counter!(TRANSFERS_REJECTED, "reason" => reason.to_owned()).increment(1);
}

pub fn idempotent_replay() {
    counter!(IDEMPOTENT_REPLAYS).increment(1);
}

pub fn api_response(status: u16, latency: Duration) {
    counter!(API_REQUESTS).increment(1);
    if status >= 500 {
        counter!(API_ERRORS).increment(1);
    }
    histogram!(API_LATENCY).record(millis(latency));
}

pub fn dynamodb_retry() {
    counter!(DYNAMODB_RETRIES).increment(1);
}

pub fn dynamodb_throttle() {
    counter!(DYNAMODB_THROTTLES).increment(1);
}

pub fn enqueue_to_commit(latency: Duration) {
    histogram!(ENQUEUE_TO_COMMIT).record(millis(latency));
}

pub fn submitted_batch(transfers: usize) {
    histogram!(SUBMITTED_BATCH_SIZE).record(transfers as f64);
}

/// One worker invocation: how many records it got and how many it handed back.
pub fn worker_batch(records: usize, failed: usize) {
    histogram!(WORKER_BATCH_SIZE).record(records as f64);
    counter!(PARTIAL_BATCH_FAILURES).increment(failed as u64);
}

/// One tenant's run of the books: entries checked, and the faults found as a value of its own (a
/// run that found none records 0, which a counter left at 0 would not emit: the alarm's metric has
/// data whenever the auditor runs).
pub fn books_checked(entries: usize, faults: usize) {
    counter!(BOOKS_ENTRIES_CHECKED).increment(entries as u64);
    histogram!(BOOKS_FAULTS).record(faults as f64);
}

pub fn holds_expired(count: usize) {
    counter!(HOLDS_EXPIRED).increment(count as u64);
}

/// No tenant dimension: tenants are unbounded; the refusal's log line names the tenant.
pub fn request_limited() {
    counter!(REQUESTS_LIMITED).increment(1);
}

/// One event on the bus, `lag` after the change it tells of committed.
pub fn event_published(lag: Duration) {
    counter!(EVENTS_PUBLISHED).increment(1);
    histogram!(PUBLISH_LAG).record(millis(lag));
}

/// One webhook attempt's outcome, or a delivery dropped (`WEBHOOK_OUTCOMES`).
pub fn webhook_delivery(outcome: &'static str) {
    counter!(WEBHOOK_DELIVERIES, "outcome" => outcome).increment(1);
}

/// A webhook attempt failed for an event `age` old (the maximum over a period is the oldest
/// undelivered event's age).
pub fn webhook_undelivered(age: Duration) {
    histogram!(UNDELIVERED_AGE).record(millis(age));
}

/// A webhook delivered, `latency` after its change committed.
pub fn webhook_delivered(latency: Duration) {
    histogram!(WEBHOOK_DELIVERY_LATENCY).record(millis(latency));
}

pub fn cold_start(function: Function) {
    counter!(COLD_START, "function" => function.as_str()).increment(1);
}
