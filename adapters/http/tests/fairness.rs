//! Tenants cannot hurt each other: the transfer queue delivers a quiet tenant's messages before a
//! noisy tenant's backlog (SQS fair queues, emulated in moto), and each tenant is held to its own
//! request limit, a batch counting one operation per transfer (the flood itself is
//! `noisy_neighbour.rs`).

use aws_sdk_sqs::types::MessageSystemAttributeName;
use harness::client::transfer_body as t;
use harness::stack::{fresh_stack, fresh_stack_with};
use harness::{Api, StackOptions};
use http::StatusCode;
use ledger::port::{TransferQueue, Work};
use ledger::{RateLimit, Submission, TenantId, TransferId};
use serde_json::json;

fn work(tenant: &str, transfer: &str) -> Work {
    Work {
        tenant: TenantId::parse(tenant).unwrap(),
        submission: Submission::Transfer(TransferId::parse(transfer).unwrap()),
    }
}

#[tokio::test]
async fn a_quiet_tenants_messages_pass_a_noisy_tenants_backlog() {
    let stack = fresh_stack().await;
    for i in 0..60 {
        stack.queue.send(&work("noisy", &format!("n{i}"))).await.unwrap();
    }
    let receive = |n: i32| {
        stack
            .sqs
            .receive_message()
            .queue_url(stack.queue.url())
            .max_number_of_messages(n)
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .send()
    };
    // The noisy tenant's first 20 are being worked on, 40 wait; then the quiet tenant sends 5.
    let first = receive(10).await.unwrap().messages.unwrap_or_default().len()
        + receive(10).await.unwrap().messages.unwrap_or_default().len();
    assert_eq!(first, 20);
    for i in 0..5 {
        stack.queue.send(&work("quiet", &format!("q{i}"))).await.unwrap();
    }
    let next = receive(10).await.unwrap().messages.unwrap_or_default();
    let tenants: Vec<Work> = next.iter().map(|m| Work::parse(m.body().unwrap()).unwrap()).collect();
    let groups: Vec<&str> = next
        .iter()
        .map(|m| m.attributes().unwrap()[&MessageSystemAttributeName::MessageGroupId].as_str())
        .collect();
    // Every message is grouped by its tenant, and the quiet tenant's 5 come first, ahead of 40
    // older messages of the noisy one.
    assert!(tenants.iter().zip(&groups).all(|(w, g)| w.tenant.as_str() == *g), "{groups:?}");
    assert_eq!(groups.len(), 10);
    assert_eq!(groups[..5], ["quiet"; 5], "{groups:?}");
    assert_eq!(groups[5..], ["noisy"; 5], "{groups:?}");
}

fn limited(per_second: u32, burst: u32) -> StackOptions {
    StackOptions {
        visibility_timeout: Some(2),
        tenant_limit: Some(RateLimit::new(per_second, burst).unwrap()),
        ..StackOptions::default()
    }
}

/// Over its limit a tenant gets `429` with `Retry-After` and nothing is done; a batch counts one
/// operation per transfer; another tenant is not affected.
#[tokio::test]
async fn a_tenant_over_its_limit_gets_429_with_retry_after_and_nothing_is_written() {
    let api = Api::on(fresh_stack_with(limited(1, 4)).await);
    for id in ["bank", "alice"] {
        let opened = api
            .post("/v1/accounts", "acme", json!({"id": id, "currency": "EUR", "allow_overdraft": true}))
            .await;
        assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.body);
    }
    // 2 of the burst of 4 are spent; a batch of 4 transfers needs 4.
    let transfers: Vec<_> = (0..4).map(|i| t(&format!("b{i}"), "bank", "alice", 1)).collect();
    let batch = api.post("/v1/transfer-batches", "acme", json!({"id": "b", "transfers": transfers})).await;
    assert_eq!(batch.status, StatusCode::TOO_MANY_REQUESTS, "{}", batch.body);
    assert!(batch.is_problem());
    assert_eq!(batch.code(), "rate_limited");
    let wait = batch.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap();
    assert_eq!(batch.body["retry_after"].as_u64(), Some(wait));
    assert!((1..=2).contains(&wait), "{wait}");
    // The refused batch spent nothing (2 left): of four transfers sent at once, at most three (the
    // two left, and one refilled) are admitted; the others are refused before anything is read.
    let sent = futures::future::join_all(
        (0..4).map(|i| api.post("/v1/transfers", "acme", t(&format!("single{i}"), "bank", "alice", 1))),
    )
    .await;
    let refused: Vec<usize> = (0..4).filter(|i| sent[*i].status == StatusCode::TOO_MANY_REQUESTS).collect();
    let admitted = sent.iter().filter(|r| r.status == StatusCode::CREATED).count();
    assert!(
        !refused.is_empty() && admitted >= 2 && refused.len() + admitted == 4,
        "{:?}",
        sent.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    // Another tenant has a bucket of its own.
    assert_eq!(api.get("/v1/accounts", "globex").await.status, StatusCode::OK);
    // Nothing of the refused requests was written (each read waits for its operation).
    for path in
        refused.iter().map(|i| format!("/v1/transfers/single{i}")).chain(["/v1/transfer-batches/b".into()])
    {
        tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
        let read = api.get(&path, "acme").await;
        assert_eq!(read.status, StatusCode::NOT_FOUND, "{path}: {}", read.body);
    }
}

/// A batch larger than the whole burst is not refused forever: it passes on a full bucket, and is
/// paid for after, at the tenant's rate.
#[tokio::test]
async fn a_batch_larger_than_the_burst_passes_on_a_full_bucket_and_is_paid_for_after() {
    let api = Api::on(fresh_stack_with(limited(1, 4)).await);
    let batch = |id: &str| {
        let transfers: Vec<_> = (0..6).map(|i| t(&format!("{id}-{i}"), "bank", "alice", 1)).collect();
        json!({"id": id, "transfers": transfers})
    };
    let first = api.post("/v1/transfer-batches", "acme", batch("big")).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    // 6 operations charged on a bucket of 4: one more waits until 3 s from now, another such
    // batch until the bucket is full again, 6 s from now.
    let seconds = |reply: &harness::Reply| {
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{}", reply.body);
        reply.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap()
    };
    let one_more = api.get("/v1/transfer-batches/big", "acme").await;
    assert!((2..=3).contains(&seconds(&one_more)));
    let another = api.post("/v1/transfer-batches", "acme", batch("bigger")).await;
    assert!((5..=6).contains(&seconds(&another)));
    assert_eq!(api.get("/v1/accounts", "globex").await.status, StatusCode::OK);
}

/// With the store throttled through every retry (an injected fault), the limit cannot be checked:
/// the request fails closed with `503` and `Retry-After`, it is never let through unchecked, and a
/// batch writes nothing.
#[tokio::test]
async fn a_limit_the_store_cannot_check_fails_closed() {
    let faults = harness::FaultPlan { throttle: 1.0, ..harness::FaultPlan::none() };
    let api = Api::on(fresh_stack_with(StackOptions { faults, ..limited(100, 100) }).await);
    let read = api.get("/v1/accounts", "acme").await;
    assert_eq!((read.status, read.code()), (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable"));
    assert_eq!(read.headers["retry-after"], "1");
    let batch = json!({"id": "b", "transfers": [t("b-1", "bank", "alice", 1)]});
    let refused = api.post("/v1/transfer-batches", "acme", batch).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{}", refused.body);
    let claimed = api.stack.dynamodb.scan().table_name(&api.stack.table).send().await.unwrap();
    assert_eq!(claimed.count(), 0, "{:?}", claimed.items());
}
