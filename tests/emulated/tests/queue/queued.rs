//! The asynchronous path end to end: the API claims and enqueues, the worker (fed as Lambda's event
//! source mapping would feed it, up to its `MaximumConcurrency` of invocations at once) applies,
//! against moto's queue and DynamoDB Local: batch order under concurrent invocations, one id one
//! outcome on every route, exact counters through re-posts and duplicate deliveries.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::AttributeValue;
use harness::Api;
use harness::client::transfer_body as t;
use http::StatusCode;
use ledger::port::{TransferQueue, Work};
use ledger::{BatchId, Submission, TenantId};
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
    // 12 spends of 10 from 100: in order, the first 10 commit and the last 2 are refused.
    let transfers: Vec<Value> = (0..12).map(|i| t(&format!("s{i}"), "alice", "bob", 10)).collect();
    let accepted =
        api.post("/v1/transfer-batches", "acme", json!({"id": "b1", "transfers": transfers})).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.body);
    assert_eq!(accepted.headers["location"], "/v1/transfer-batches/b1");
    assert_eq!((accepted.body["total"].as_u64(), accepted.body["queued"].as_u64()), (Some(12), Some(12)));
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
        match (i, transfer["status"].as_str()) {
            (0..10, Some("committed")) => assert!(committed.insert(format!("s{i}"))),
            (10.., Some("rejected")) => assert_eq!(transfer["reason"]["code"], "insufficient_funds"),
            other => panic!("s{i} is {other:?}"),
        }
    }
    assert_eq!(with_entries, committed);
}

fn work(batch: &str) -> Work {
    Work {
        tenant: TenantId::parse("acme").unwrap(),
        submission: Submission::Batch(BatchId::parse(batch).unwrap()),
    }
}

async fn send_copies(api: &Api, work: &Work, copies: usize) {
    for _ in 0..copies {
        api.stack.queue.send(work).await.unwrap();
    }
}

/// "Fund alice, then 200 × alice→bob" commits the funding and exactly the first 100 spends, in
/// order, while 10 invocations at once receive copies of the batch's message.
#[tokio::test]
async fn a_batch_settles_in_submitted_order_whatever_the_delivery() {
    let api = Api::new().await;
    accounts(&api, &[("alice", 0), ("bob", 0)]).await;
    let mut transfers = vec![t("fund", "bank", "alice", 1_000)];
    transfers.extend((0..200).map(|i| t(&format!("s{i:03}"), "alice", "bob", 10)));
    let accepted =
        api.post("/v1/transfer-batches", "acme", json!({"id": "ordered", "transfers": transfers})).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.body);
    // Duplicated 12 times over: concurrent invocations race on the same batch.
    send_copies(&api, &work("ordered"), 12).await;
    let drained = api.stack.drain().await.unwrap();
    println!("ordered batch: {drained:?}");
    let status = api.get("/v1/transfer-batches/ordered", "acme").await.body;
    assert_eq!((status["committed"].as_u64(), status["queued"].as_u64()), (Some(101), Some(0)), "{status}");
    assert_eq!(status["rejected_by_reason"], json!({"insufficient_funds": 100}));
    let entries = api.all_entries("acme", "bob").await;
    let ids: Vec<&str> = entries.iter().rev().map(|e| e["transfer_id"].as_str().unwrap()).collect();
    let first_hundred: Vec<String> = (0..100).map(|i| format!("s{i:03}")).collect();
    assert_eq!(ids, first_hundred);
    assert_eq!((balance(&api, "alice").await, balance(&api, "bob").await), (0, 1_000));
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
    assert_eq!(again.body["total"], 2);
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

/// A settled batch re-posted, then delivered again and again, counts each transfer once (a
/// re-post must not erase the settled outcomes for the next delivery to count again).
#[tokio::test]
async fn counters_stay_exact_through_reposts_and_duplicate_deliveries() {
    let api = Api::new().await;
    accounts(&api, &[("alice", 100), ("bob", 0)]).await;
    let transfers: Vec<Value> = (0..5).map(|i| t(&format!("d{i}"), "alice", "bob", 10)).collect();
    let body = json!({"id": "b1", "transfers": transfers});
    api.post("/v1/transfer-batches", "acme", body.clone()).await;
    send_copies(&api, &work("b1"), 2).await;
    drain(&api).await;
    // Re-posted after settling (the documented recovery), concurrently, then delivered again.
    let reposts = (0..4).map(|_| api.post("/v1/transfer-batches", "acme", body.clone()));
    for reply in futures::future::join_all(reposts).await {
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
        assert!(reply.replayed());
        assert_eq!((reply.body["committed"].as_u64(), reply.body["queued"].as_u64()), (Some(5), Some(0)));
    }
    send_copies(&api, &work("b1"), 3).await;
    drain(&api).await;
    assert_eq!((balance(&api, "alice").await, balance(&api, "bob").await), (50, 50));
    let status = api.get("/v1/transfer-batches/b1", "acme").await;
    assert_eq!(
        (status.body["total"].as_u64(), status.body["committed"].as_u64(), status.body["queued"].as_u64()),
        (Some(5), Some(5), Some(0))
    );
    assert_eq!(status.body["rejected"], 0);
    assert_eq!(api.all_entries("acme", "bob").await.len(), 5);
}

/// An id holds one outcome on every route, and a request that differs from it is refused at
/// once, naming the fields, on the respond-async route as on the others.
#[tokio::test]
async fn one_id_one_outcome_on_every_route() {
    let api = Api::new().await;
    accounts(&api, &[("alice", 1_000), ("bob", 0)]).await;
    let sync = api.post("/v1/transfers", "acme", t("x1", "alice", "bob", 100)).await;
    assert_eq!(sync.status, StatusCode::CREATED);
    let differing = async_post(&api, t("x1", "alice", "bob", 999)).await;
    assert_eq!((differing.status, differing.code()), (StatusCode::CONFLICT, "idempotency_conflict"));
    assert_eq!(differing.body["fields"], json!(["amount"]));
    let same = async_post(&api, t("x1", "alice", "bob", 100)).await;
    assert_eq!((same.status, same.body["status"].as_str()), (StatusCode::ACCEPTED, Some("committed")));
    assert!(same.replayed());
    let in_batch =
        json!({"id": "b-x1", "transfers": [t("y1", "alice", "bob", 1), t("x1", "bob", "alice", 100)]});
    let refused = api.post("/v1/transfer-batches", "acme", in_batch).await;
    assert_eq!((refused.status, refused.code()), (StatusCode::CONFLICT, "idempotency_conflict"));
    assert_eq!(
        refused.body["fields"],
        json!(["transfers[1].debit_account_id", "transfers[1].credit_account_id"])
    );
    // Refused whole: nothing of it was kept, so y1 and the batch id are free.
    assert_eq!(api.get("/v1/transfers/y1", "acme").await.status, StatusCode::NOT_FOUND);
    assert_eq!(api.get("/v1/transfer-batches/b-x1", "acme").await.status, StatusCode::NOT_FOUND);

    // A queued id: the sync route answers 202 with it while queued, 409 for other fields.
    let queued = json!({"id": "b2", "transfers": [t("q1", "alice", "bob", 5)]});
    assert_eq!(api.post("/v1/transfer-batches", "acme", queued).await.status, StatusCode::ACCEPTED);
    let same = api.post("/v1/transfers", "acme", t("q1", "alice", "bob", 5)).await;
    assert_eq!((same.status, same.body["status"].as_str()), (StatusCode::ACCEPTED, Some("queued")));
    let other = api.post("/v1/transfers", "acme", t("q1", "alice", "bob", 6)).await;
    assert_eq!((other.status, other.body["fields"].clone()), (StatusCode::CONFLICT, json!(["amount"])));
    let elsewhere = json!({"id": "b3", "transfers": [t("q1", "alice", "bob", 5)]});
    let in_flight = api.post("/v1/transfer-batches", "acme", elsewhere).await;
    assert_eq!((in_flight.status, in_flight.code()), (StatusCode::CONFLICT, "transfer_in_flight"));
    drain(&api).await;
    assert_eq!(api.get("/v1/transfers/q1", "acme").await.body["status"], "committed");
    // Settled, an identical id in a new batch replays its outcome and counts it once.
    let again = json!({"id": "b3", "transfers": [t("q1", "alice", "bob", 5), t("q2", "alice", "bob", 5)]});
    assert_eq!(api.post("/v1/transfer-batches", "acme", again).await.status, StatusCode::ACCEPTED);
    drain(&api).await;
    let status = api.get("/v1/transfer-batches/b3", "acme").await.body;
    assert_eq!((status["committed"].as_u64(), status["queued"].as_u64()), (Some(2), Some(0)), "{status}");
    assert_eq!((balance(&api, "alice").await, balance(&api, "bob").await), (890, 110));

    // Async transfer ids and batch ids are separate namespaces.
    let single = async_post(&api, t("n1", "alice", "bob", 1)).await;
    assert_eq!(single.status, StatusCode::ACCEPTED);
    // Found by the model test: respond-async transfers share one owner, so their fields decide.
    let again = async_post(&api, t("n1", "alice", "bob", 1)).await;
    assert_eq!((again.status, again.replayed()), (StatusCode::ACCEPTED, true));
    let other = async_post(&api, t("n1", "alice", "bob", 9)).await;
    assert_eq!((other.status, other.body["fields"].clone()), (StatusCode::CONFLICT, json!(["amount"])));
    let batch = json!({"id": "n1", "transfers": [t("n2", "alice", "bob", 2)]});
    assert_eq!(api.post("/v1/transfer-batches", "acme", batch).await.status, StatusCode::ACCEPTED);
    drain(&api).await;
    assert_eq!(balance(&api, "bob").await, 113);
}

async fn async_post(api: &Api, body: Value) -> harness::client::Reply {
    post_preferring(api, body, "respond-async").await
}

async fn post_preferring(api: &Api, body: Value, prefer: &str) -> harness::client::Reply {
    let request = http::Request::builder()
        .method("POST")
        .uri("/v1/transfers")
        .header("content-type", "application/json")
        .header("prefer", prefer)
        .header("authorization", format!("Bearer {}", api.token("acme")))
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    api.send_request(request).await
}

#[tokio::test]
async fn respond_async_queues_a_single_transfer() {
    let api = Api::new().await;
    accounts(&api, &[("alice", 100), ("bob", 0)]).await;
    let reply = async_post(&api, t("a1", "alice", "bob", 30)).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(reply.headers["location"], "/v1/transfers/a1");
    assert_eq!(reply.headers["preference-applied"], "respond-async");
    assert_eq!((reply.body["status"].as_str(), reply.body["amount"].as_u64()), (Some("queued"), Some(30)));
    drain(&api).await;
    assert_eq!(api.get("/v1/transfers/a1", "acme").await.body["status"], "committed");
    assert_eq!(balance(&api, "bob").await, 30);
}

/// `Prefer: respond-async; wait=N` waits up to N seconds for the worker and answers with the
/// transfer as it then stands.
#[tokio::test]
async fn respond_async_with_wait_answers_the_outcome_when_it_comes_in_time() {
    let api = Api::new().await;
    accounts(&api, &[("alice", 100), ("bob", 0)]).await;
    let worker = api.stack.worker();
    let source = api.stack.event_source.clone();
    let background = tokio::spawn(async move {
        for _ in 0..40 {
            source.invoke_once(&worker).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    });
    let reply = post_preferring(&api, t("w1", "alice", "bob", 30), "respond-async; wait=5").await;
    background.abort();
    assert_eq!((reply.status, reply.body["status"].as_str()), (StatusCode::ACCEPTED, Some("committed")));
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
        .table_name(&api.stack.table)
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
        let resend = sqs.send_message().queue_url(&dlq).message_body(message.body().unwrap());
        resend.message_group_id("acme").send().await.unwrap();
    }
    sqs.delete_message()
        .queue_url(&queue)
        .set_receipt_handle(message.receipt_handle.clone())
        .send()
        .await
        .unwrap();

    let listed = ledger_ops::dlq::list(sqs, &dlq).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed[0].reason.contains("batch b1 of tenant acme"), "{}", listed[0].reason);
    assert_eq!(ledger_ops::dlq::redrive(sqs, &dlq, &queue).await.unwrap(), 2);
    assert!(ledger_ops::dlq::list(sqs, &dlq).await.unwrap().is_empty());
    // Redriven, each keeps its tenant's group, so the fair queue still tells tenants apart.
    let group = aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId;
    let back = sqs.receive_message().queue_url(&queue).max_number_of_messages(10).visibility_timeout(0);
    let back = back.message_system_attribute_names(group.clone()).send().await.unwrap().messages.unwrap();
    assert_eq!(back.len(), 2);
    assert!(back.iter().all(|m| m.attributes().unwrap()[&group] == "acme"));
    drain(&api).await;
    assert_eq!((balance(&api, "alice").await, balance(&api, "bob").await), (75, 25));
    let status = api.get("/v1/transfer-batches/b1", "acme").await;
    assert_eq!((status.body["committed"].as_u64(), status.body["queued"].as_u64()), (Some(1), Some(0)));
}
