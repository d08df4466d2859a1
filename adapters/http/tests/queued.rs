//! The asynchronous path end to end: the API enqueues, the worker (fed as Lambda's event source
//! mapping would feed it, up to its `MaximumConcurrency` of invocations at once) applies, against
//! moto's queue and DynamoDB Local.

use std::collections::BTreeSet;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::AttributeValue;
use harness::Api;
use harness::client::transfer_body as t;
use http::StatusCode;
use ledger::{BatchId, TenantId};
use ledger_sqs::QueuedTransfer;
use ledger_telemetry::{CorrelationId, TraceContext};
use serde_json::{Value, json};

async fn accounts(api: &Api, funded: &[(&str, u64)]) {
    api.post("/v1/accounts", "acme", json!({"id": "bank", "currency": "EUR", "allow_overdraft": true})).await;
    for (id, funds) in funded {
        assert_eq!(
            api.post("/v1/accounts", "acme", json!({"id": id, "currency": "EUR"})).await.status,
            StatusCode::CREATED
        );
        if *funds > 0 {
            let fund = api.post("/v1/transfers", "acme", t(&format!("fund-{id}"), "bank", id, *funds)).await;
            assert_eq!(fund.status, StatusCode::CREATED);
        }
    }
}

async fn drain(api: &Api) {
    api.stack.drain().await.unwrap();
}

async fn balance(api: &Api, id: &str) -> i64 {
    api.get(&format!("/v1/accounts/{id}"), "acme").await.body["balance"].as_i64().unwrap()
}

#[tokio::test]
async fn a_batch_is_accepted_at_once_then_applied_by_the_worker() {
    let api = Api::new().await;
    accounts(&api, &[("alice", 100), ("bob", 0)]).await;
    // 12 spends of 10 from 100: whatever the order, 10 commit and 2 are refused.
    let transfers: Vec<Value> = (0..12).map(|i| t(&format!("s{i}"), "alice", "bob", 10)).collect();
    let accepted =
        api.post("/v1/transfer-batches", "acme", json!({"id": "b1", "transfers": transfers})).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.body);
    assert_eq!(accepted.headers["location"], "/v1/transfer-batches/b1");
    assert_eq!((accepted.body["total"].as_u64(), accepted.body["enqueued"].as_u64()), (Some(12), Some(12)));
    assert_eq!(accepted.body["queued"], 12);
    assert_eq!(api.get("/v1/transfers/s0", "acme").await.body["status"], "queued");

    drain(&api).await;
    let status = api.get("/v1/transfer-batches/b1", "acme").await;
    assert_eq!(status.status, StatusCode::OK);
    assert_eq!((status.body["queued"].as_u64(), status.body["committed"].as_u64()), (Some(0), Some(10)));
    assert_eq!(status.body["rejected_by_reason"], json!({"insufficient_funds": 2}));
    assert_eq!((balance(&api, "alice").await, balance(&api, "bob").await), (0, 100));
    // The committed ones are exactly those with an entry on bob's side.
    let entries = api.get("/v1/accounts/bob/entries?limit=100", "acme").await;
    let with_entries: BTreeSet<String> = entries.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["transfer_id"].as_str().unwrap().to_owned())
        .collect();
    let mut committed = BTreeSet::new();
    for i in 0..12 {
        let transfer = api.get(&format!("/v1/transfers/s{i}"), "acme").await.body;
        match transfer["status"].as_str() {
            Some("committed") => assert!(committed.insert(format!("s{i}"))),
            Some("rejected") => assert_eq!(transfer["reason"]["code"], "insufficient_funds"),
            other => panic!("s{i} is {other:?}"),
        }
    }
    assert_eq!(with_entries, committed);
}

/// One invocation applies a tenant's records in batch order, however SQS ordered them. (Across the
/// concurrent invocations of the event source, a batch is not applied in submitted order: the
/// invocations race.)
#[tokio::test]
async fn one_invocation_applies_its_records_in_batch_order() {
    let api = Api::new().await;
    accounts(&api, &[("alice", 100), ("bob", 0)]).await;
    let mut records: Vec<SqsMessage> = (0..12u32)
        .map(|i| {
            let queued = QueuedTransfer {
                tenant: TenantId::parse("acme").unwrap(),
                batch_id: BatchId::parse("b1").unwrap(),
                index: i,
                transfer: serde_json::from_value(t(&format!("s{i}"), "alice", "bob", 10)).unwrap(),
            };
            let mut record = SqsMessage::default();
            record.message_id = Some(format!("m{i}"));
            record.body = Some(serde_json::to_string(&queued).unwrap());
            record
        })
        .collect();
    records.reverse();
    let mut event = SqsEvent::default();
    event.records = records;
    assert!(worker::handle(&api.stack.store, event).await.batch_item_failures.is_empty());
    let entries = api.get("/v1/accounts/bob/entries?limit=100", "acme").await;
    let ids: Vec<_> =
        entries.body["data"].as_array().unwrap().iter().rev().map(|e| e["transfer_id"].clone()).collect();
    assert_eq!(ids, (0..10).map(|i| json!(format!("s{i}"))).collect::<Vec<_>>());
    let s11 = api.get("/v1/transfers/s11", "acme").await;
    assert_eq!(s11.body["reason"]["code"], "insufficient_funds");
}

#[tokio::test]
async fn reposting_a_batch_is_idempotent_and_another_batch_under_its_id_conflicts() {
    let api = Api::new().await;
    accounts(&api, &[("alice", 100), ("bob", 0)]).await;
    let body = json!({"id": "b1", "transfers": [t("x1", "alice", "bob", 5), t("x2", "alice", "bob", 6)]});
    assert_eq!(api.post("/v1/transfer-batches", "acme", body.clone()).await.status, StatusCode::ACCEPTED);
    let again = api.post("/v1/transfer-batches", "acme", body).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert!(again.replayed());
    assert_eq!(again.body["enqueued"], 2);
    let other = api
        .post("/v1/transfer-batches", "acme", json!({"id": "b1", "transfers": [t("x1", "alice", "bob", 7)]}))
        .await;
    assert_eq!((other.status, other.code()), (StatusCode::CONFLICT, "idempotency_conflict"));
    drain(&api).await;
    assert_eq!(balance(&api, "bob").await, 11);
    let status = api.get("/v1/transfer-batches/b1", "acme").await;
    assert_eq!((status.body["committed"].as_u64(), status.body["queued"].as_u64()), (Some(2), Some(0)));
}

#[tokio::test]
async fn bad_batches_are_refused_before_anything_is_queued() {
    let api = Api::new().await;
    let cases = [
        (json!({"id": "b", "transfers": []}), "transfers"),
        (json!({"id": "b", "transfers": [t("a", "x", "y", 1), t("a", "x", "y", 1)]}), "transfers[1].id"),
        (
            json!({"id": "b", "transfers": [json!({"id": "a", "debit_account_id": "x", "credit_account_id": "y", "amount": 0, "currency": "EUR"})]}),
            "transfers[0].amount",
        ),
        (json!({"id": "b c", "transfers": [t("a", "x", "y", 1)]}), "id"),
    ];
    for (body, field) in cases {
        let reply = api.post("/v1/transfer-batches", "acme", body).await;
        assert_eq!(
            (reply.status, reply.body["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{}",
            reply.body
        );
    }
    let many: Vec<Value> = (0..1001).map(|i| t(&format!("t{i}"), "x", "y", 1)).collect();
    let reply = api.post("/v1/transfer-batches", "acme", json!({"id": "big", "transfers": many})).await;
    assert_eq!((reply.status, reply.body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("transfers")));
    assert_eq!(api.get("/v1/transfer-batches/b", "acme").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn duplicate_deliveries_never_apply_or_count_twice() {
    let api = Api::new().await;
    accounts(&api, &[("alice", 100), ("bob", 0)]).await;
    let transfers: Vec<Value> = (0..5).map(|i| t(&format!("d{i}"), "alice", "bob", 10)).collect();
    api.post("/v1/transfer-batches", "acme", json!({"id": "b1", "transfers": transfers.clone()})).await;
    // Each message delivered three times: twice before the worker runs, once after.
    let copies: Vec<QueuedTransfer> = transfers
        .iter()
        .enumerate()
        .map(|(i, body)| QueuedTransfer {
            tenant: TenantId::parse("acme").unwrap(),
            batch_id: BatchId::parse("b1").unwrap(),
            index: i as u32,
            transfer: serde_json::from_value(body.clone()).unwrap(),
        })
        .collect();
    assert_eq!(
        api.stack.queue.send(&copies, &TraceContext::new(CorrelationId::generate(), None)).await.len(),
        5
    );
    drain(&api).await;
    assert_eq!(
        api.stack.queue.send(&copies, &TraceContext::new(CorrelationId::generate(), None)).await.len(),
        5
    );
    drain(&api).await;
    assert_eq!((balance(&api, "alice").await, balance(&api, "bob").await), (50, 50));
    let status = api.get("/v1/transfer-batches/b1", "acme").await;
    assert_eq!((status.body["committed"].as_u64(), status.body["queued"].as_u64()), (Some(5), Some(0)));
    let entries = api.get("/v1/accounts/bob/entries?limit=100", "acme").await;
    assert_eq!(entries.body["data"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn respond_async_queues_a_single_transfer() {
    let api = Api::new().await;
    accounts(&api, &[("alice", 100), ("bob", 0)]).await;
    let request = http::Request::builder()
        .method("POST")
        .uri("/v1/transfers")
        .header("content-type", "application/json")
        .header("prefer", "respond-async")
        .header("authorization", format!("Bearer {}", api.token("acme")))
        .body(axum::body::Body::from(t("a1", "alice", "bob", 30).to_string()))
        .unwrap();
    let reply = api.send_request(request).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(reply.headers["location"], "/v1/transfers/a1");
    assert_eq!(reply.body["status"], "queued");
    drain(&api).await;
    assert_eq!(api.get("/v1/transfers/a1", "acme").await.body["status"], "committed");
    assert_eq!(balance(&api, "bob").await, 30);
}

#[tokio::test]
async fn a_hot_account_costs_far_fewer_writes_than_transfers() {
    let api = Api::new().await;
    accounts(&api, &[("merchant", 0)]).await;
    const N: usize = 200;
    let transfers: Vec<Value> = (0..N).map(|i| t(&format!("h{i}"), "bank", "merchant", 1)).collect();
    api.post("/v1/transfer-batches", "acme", json!({"id": "hot", "transfers": transfers})).await;
    drain(&api).await;
    assert_eq!(balance(&api, "merchant").await, N as i64);
    let item = api
        .stack
        .dynamodb
        .get_item()
        .table_name(api.stack.store.table())
        .key("pk", AttributeValue::S("T#acme#A#merchant".into()))
        .key("sk", AttributeValue::S("B".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let writes: usize = item["writes"].as_n().unwrap().parse().unwrap();
    // Netted: one balance write per transaction of up to ~24 transfers (4 items each, of 100).
    println!("hot account: {N} queued transfers, {writes} writes to its balance item");
    assert!(writes * 10 <= N, "{writes} writes for {N} transfers");
}

#[tokio::test]
async fn an_unparseable_record_never_fails_its_batch_and_ends_in_the_dead_letter_queue() {
    let api = Api::new().await;
    accounts(&api, &[("alice", 100), ("bob", 0)]).await;
    let sqs = &api.stack.sqs;
    sqs.send_message().queue_url(api.stack.queue.url()).message_body("{not json").send().await.unwrap();
    api.post(
        "/v1/transfer-batches",
        "acme",
        json!({"id": "b1", "transfers": [t("ok1", "alice", "bob", 10)]}),
    )
    .await;
    let (source, worker) = (&api.stack.event_source, api.stack.worker());
    let first = source.invoke_once(&worker).await.unwrap();
    assert_eq!((first.received, first.failed), (2, 1));
    assert_eq!(balance(&api, "bob").await, 10);
    // Redelivered after each 2 s visibility timeout, until maxReceiveCount moves it to the DLQ.
    let started = std::time::Instant::now();
    let mut dead = Vec::new();
    while dead.is_empty() && started.elapsed() < std::time::Duration::from_secs(60) {
        source.invoke_once(&worker).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let out = sqs.receive_message().queue_url(&api.stack.dead_letter_url).send().await.unwrap();
        dead = out.messages.unwrap_or_default();
    }
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body(), Some("{not json"));
}

#[tokio::test]
async fn redriven_dead_letters_apply_exactly_once() {
    let api = Api::new().await;
    accounts(&api, &[("alice", 100), ("bob", 0)]).await;
    let (sqs, queue, dlq) =
        (&api.stack.sqs, api.stack.queue.url().to_owned(), api.stack.dead_letter_url.clone());
    api.post("/v1/transfer-batches", "acme", json!({"id": "b1", "transfers": [t("r1", "alice", "bob", 25)]}))
        .await;
    // As if every delivery had failed: move the message to the dead-letter queue, twice over.
    let message = sqs.receive_message().queue_url(&queue).send().await.unwrap().messages.unwrap().remove(0);
    for _ in 0..2 {
        sqs.send_message().queue_url(&dlq).message_body(message.body().unwrap()).send().await.unwrap();
    }
    sqs.delete_message()
        .queue_url(&queue)
        .set_receipt_handle(message.receipt_handle.clone())
        .send()
        .await
        .unwrap();

    let listed = ledger_ops::dlq::list(sqs, &dlq).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed[0].reason.contains("transfer r1 of batch b1"), "{}", listed[0].reason);
    assert_eq!(ledger_ops::dlq::redrive(sqs, &dlq, &queue).await.unwrap(), 2);
    assert!(ledger_ops::dlq::list(sqs, &dlq).await.unwrap().is_empty());
    drain(&api).await;
    assert_eq!((balance(&api, "alice").await, balance(&api, "bob").await), (75, 25));
    let status = api.get("/v1/transfer-batches/b1", "acme").await;
    assert_eq!((status.body["committed"].as_u64(), status.body["queued"].as_u64()), (Some(1), Some(0)));
}
