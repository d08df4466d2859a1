//! Telemetry end to end, through the router and the worker as the local stack runs them:
//! - one correlation id collects every log line of an asynchronous transfer, in the API and the worker;
//! - every metric of the catalogue comes out as EMF with exactly its dimensions.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use axum::body::Body;
use harness::client::transfer_body as transfer;
use harness::{Api, FaultPlan, StackOptions, fresh_stack_with};
use http::{Request, StatusCode};
use ledger_config::{DEFAULT_METRICS_NAMESPACE, DEFAULT_SERVICE_NAME};
use ledger_telemetry::metrics::{CATALOG, SERVICE_DIMENSION};
use ledger_telemetry::{Function, metrics};
use serde_json::{Value, json};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Every log line the process writes, captured by the production JSON layer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn captured_logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let writer = logs.clone();
        tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::new("info"))
            .with(ledger_telemetry::logs::json_layer(move || writer.clone()))
            .init();
        logs
    })
}

fn log_lines() -> Vec<Value> {
    let bytes = captured_logs().0.lock().unwrap().clone();
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"))
        })
        .collect()
}

async fn accounts(api: &Api, tenant: &str) {
    for (id, overdraft) in [("bank", true), ("alice", false), ("bob", false)] {
        let body = json!({"id": id, "currency": "EUR", "allow_overdraft": overdraft});
        assert_eq!(api.post("/v1/accounts", tenant, body).await.status, StatusCode::CREATED);
    }
}

#[tokio::test]
async fn one_correlation_id_collects_every_line_of_an_async_transfer() {
    captured_logs();
    let api = Api::with_events().await;
    accounts(&api, "acme").await;
    api.post("/v1/transfers", "acme", transfer("fund", "bank", "alice", 500)).await;
    let token = api.token("acme");
    let correlation = format!("complaint-{}", uuid_like());
    let request = Request::post("/v1/transfers")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("prefer", "respond-async")
        .header("x-correlation-id", &correlation)
        .header("x-amzn-trace-id", TRACE)
        .body(Body::from(transfer("async-1", "alice", "bob", 70).to_string()))
        .unwrap();
    let reply = api.send_request(request).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(reply.headers["x-correlation-id"], correlation.as_str(), "the id is returned");
    api.stack.drain().await.unwrap();
    api.stack.publish().await.unwrap();
    let lines = log_lines();
    assert_eq!(api.get("/v1/transfers/async-1", "acme").await.body["status"], "committed");

    // The publisher's lines about the transfer's event carry the request's correlation id.
    let published: Vec<&Value> =
        lines.iter().filter(|l| l["eventId"] == "transfer.committed:async-1").collect();
    assert!(published.iter().any(|l| l["message"] == "event published"), "{published:?}");
    assert!(
        published.iter().all(|l| l["correlationId"] == correlation.as_str() && l["function"] == "publisher")
    );

    let mine: Vec<&Value> = lines
        .iter()
        .filter(|l| l["correlationId"] == correlation.as_str() && l["function"] != "publisher")
        .collect();
    let messages = |function: &str| -> Vec<&str> {
        mine.iter().filter(|l| l["function"] == function).filter_map(|l| l["message"].as_str()).collect()
    };
    let (api_lines, worker_lines) = (messages("api"), messages("worker"));
    for expected in ["transfer enqueued", "request completed"] {
        assert!(api_lines.contains(&expected), "API line {expected:?} missing: {api_lines:?}");
    }
    for expected in ["submission received", "transfer committed"] {
        assert!(worker_lines.contains(&expected), "worker line {expected:?} missing: {worker_lines:?}");
    }
    // The X-Ray trace header travelled with the message (SQS's AWSTraceHeader attribute).
    assert!(mine.iter().filter(|l| l["function"] == "worker").all(|l| l["xrayTraceHeader"] == TRACE));
    for line in &mine {
        for field in ["timestamp", "level", "function", "requestId", "tenant", "message"] {
            assert!(line.get(field).is_some(), "{field} missing from {line}");
        }
        assert_eq!(line["tenant"], "acme");
        assert_eq!(line["transferId"], "async-1", "{line}");
    }
    // Every line about the transfer carries the correlation id: nothing escapes the search.
    let about: Vec<&Value> = lines.iter().filter(|l| l["transferId"] == "async-1").collect();
    assert!(about.iter().all(|l| l["correlationId"] == correlation.as_str()), "{about:?}");
    assert_eq!(about.len(), mine.len());
    // No token or secret in any line.
    let all = String::from_utf8(captured_logs().0.lock().unwrap().clone()).unwrap();
    assert!(!all.contains(&token) && !all.to_ascii_lowercase().contains("bearer"));
}

#[tokio::test]
async fn a_missing_correlation_id_is_generated_and_returned() {
    captured_logs();
    let api = Api::with_events().await;
    let reply = api.get("/v1/accounts/nobody", "acme").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let id = reply.headers["x-correlation-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let lines = log_lines();
    let refused =
        lines.iter().find(|l| l["correlationId"] == id.as_str() && l["message"] == "request refused");
    assert_eq!(refused.map(|l| l["code"].clone()), Some(json!("not_found")));
}

const TRACE: &str = "Root=1-67a0b1c2-1234567890abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1";

fn uuid_like() -> String {
    format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos())
}

/// Drives every path that records a metric, then reads the EMF the collector wrote.
#[tokio::test]
async fn every_metric_comes_out_as_emf_with_its_dimensions() {
    captured_logs();
    let local = harness::metrics::local_metrics();
    let api = Api::with_events().await;
    accounts(&api, "acme").await;
    metrics::cold_start(Function::Api); // what `ledger_telemetry::init` records at a cold start
    metrics::cold_start(Function::Worker);
    assert_eq!(
        api.post("/v1/transfers", "acme", transfer("m1", "bank", "alice", 100)).await.status,
        StatusCode::CREATED
    );
    assert!(api.post("/v1/transfers", "acme", transfer("m1", "bank", "alice", 100)).await.replayed());
    let rejected = api.post("/v1/transfers", "acme", transfer("m2", "alice", "bob", 1_000)).await;
    assert_eq!(rejected.code(), "insufficient_funds");
    let batch = json!({"id": "mb", "transfers": [transfer("m3", "alice", "bob", 10), transfer("m4", "alice", "bob", 10)]});
    assert_eq!(api.post("/v1/transfer-batches", "acme", batch).await.status, StatusCode::ACCEPTED);
    api.stack.drain().await.unwrap();
    // A hold that expires, released by the sweeper.
    let hold = json!({"id": "mh", "debit_account_id": "bank", "credit_account_id": "alice", "amount": 5,
        "currency": "EUR", "pending": true, "timeout_seconds": 1});
    assert_eq!(api.post("/v1/transfers", "acme", hold).await.status, StatusCode::CREATED);
    let later = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    assert_eq!(api.stack.sweep(later).await.unwrap().expired, 1);
    // The auditor checks the books (entries checked, no fault).
    let audit = api.stack.audit(time::OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!((audit.checked, audit.faults), (1, 0));
    // Every event so far, published; those of an endpoint's type delivered to it.
    // Its first attempt fails (an undelivered event's age); that one's retry is not waited for.
    let replies = vec![harness::receiver::Reply::status(500)];
    let receiver =
        harness::receiver::Receiver::start(replies, harness::receiver::Reply::status(200)).await.unwrap();
    let endpoint = json!({"url": receiver.url, "event_types": ["transfer.committed"]});
    assert_eq!(api.post("/v1/webhook-endpoints", "acme", endpoint).await.status, StatusCode::CREATED);
    assert!(api.stack.publish().await.unwrap().invocations > 0);
    assert!(api.stack.deliver().await.unwrap() > 0);
    assert!(!receiver.received().is_empty());
    // A malformed record: the worker hands it back (a partial batch failure).
    let mut record = SqsMessage::default();
    record.message_id = Some("bad-1".into());
    record.body = Some("not json".into());
    let mut event = SqsEvent::default();
    event.records = vec![record];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    assert_eq!(
        worker::handle(api.stack.store.as_ref(), &api.stack.queue, event, deadline)
            .await
            .batch_item_failures
            .len(),
        1
    );
    // A throttled store: the SDK retries, then the API answers 503.
    let plan = FaultPlan { throttle: 1.0, ..FaultPlan::none() };
    let throttled = Api::on(fresh_stack_with(StackOptions { faults: plan, ..StackOptions::default() }).await);
    assert_eq!(throttled.get("/v1/accounts/alice", "acme").await.status, StatusCode::SERVICE_UNAVAILABLE);
    // A tenant over its limit.
    let limit = Some(ledger::RateLimit::new(1, 1).unwrap());
    let limited =
        Api::on(fresh_stack_with(StackOptions { tenant_limit: limit, ..StackOptions::default() }).await);
    let statuses =
        [limited.get("/v1/accounts", "acme").await.status, limited.get("/v1/accounts", "acme").await.status];
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");

    let samples = harness::emf::read(&local.recent_emf());
    for spec in CATALOG {
        let found: Vec<_> = samples.iter().filter(|s| s.name == spec.name).collect();
        assert!(!found.is_empty(), "{} was not emitted", spec.name);
        for sample in found {
            assert_eq!(sample.namespace, DEFAULT_METRICS_NAMESPACE);
            let mut expected: Vec<&str> = spec.dimensions.to_vec();
            expected.push(SERVICE_DIMENSION);
            expected.sort();
            let names: Vec<&str> = sample.dimensions.keys().map(String::as_str).collect();
            assert_eq!(names, expected, "dimensions of {}", spec.name);
            assert_eq!(sample.dimensions[SERVICE_DIMENSION], DEFAULT_SERVICE_NAME);
            let unit = format!("{:?}", spec.unit);
            assert_eq!(sample.unit.as_deref(), Some(unit.as_str()), "unit of {}", spec.name);
            assert!(sample.values.iter().all(|v| *v >= 0.0) && !sample.values.is_empty());
        }
    }
    let values = |name: &str, key: &str, value: &str| -> f64 {
        samples
            .iter()
            .filter(|s| s.name == name && s.dimensions.get(key).map(String::as_str) == Some(value))
            .flat_map(|s| s.values.iter())
            .sum()
    };
    assert!(values(metrics::TRANSFERS_REJECTED, "reason", "insufficient_funds") >= 1.0);
    assert!(values(metrics::COLD_START, "function", "worker") >= 1.0);
    assert!(
        values(metrics::DYNAMODB_THROTTLES, SERVICE_DIMENSION, DEFAULT_SERVICE_NAME) >= 4.0,
        "4 attempts throttled"
    );
    assert!(values(metrics::DYNAMODB_RETRIES, SERVICE_DIMENSION, DEFAULT_SERVICE_NAME) >= 3.0, "3 retries");
    assert!(values(metrics::PARTIAL_BATCH_FAILURES, SERVICE_DIMENSION, DEFAULT_SERVICE_NAME) >= 1.0);
    assert!(values(metrics::HOLDS_EXPIRED, SERVICE_DIMENSION, DEFAULT_SERVICE_NAME) >= 1.0);
    assert!(values(metrics::BOOKS_ENTRIES_CHECKED, SERVICE_DIMENSION, DEFAULT_SERVICE_NAME) >= 8.0);
    assert!(values(metrics::WEBHOOK_DELIVERIES, "outcome", "delivered") >= 1.0);
    assert!(values(metrics::WEBHOOK_DELIVERIES, "outcome", "retried") >= 1.0);
}
