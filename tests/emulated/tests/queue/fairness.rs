//! Each tenant is held to its own request limit, a batch counting one operation per transfer, on
//! the API's clock moved by hand (so the answers are exact, whatever the machine's speed). The
//! flood itself, and the fair queue, are `noisy_neighbour.rs`.

use harness::client::transfer_body as t;
use harness::emulated::fresh_stack_with;
use harness::{Api, ManualClock, StackOptions};
use http::StatusCode;
use ledger::RateLimit;
use serde_json::json;

fn limited(per_second: u32, burst: u32, clock: &ManualClock) -> StackOptions {
    StackOptions {
        visibility_timeout: Some(2),
        tenant_limit: Some(RateLimit::new(per_second, burst).unwrap()),
        clock: Some(clock.clock()),
        ..StackOptions::default()
    }
}

/// Opens acme's `bank` and `alice` (two operations of its limit).
async fn open_bank_and_alice(api: &Api) {
    for id in ["bank", "alice"] {
        let opened = api
            .post("/v1/accounts", "acme", json!({"id": id, "currency": "EUR", "allow_overdraft": true}))
            .await;
        assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.body);
    }
}

/// The `Retry-After` of a `429`.
fn retry_after(reply: &harness::Reply) -> u64 {
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{}", reply.body);
    reply.headers["retry-after"].to_str().unwrap().parse().unwrap()
}

/// Over its limit a tenant gets `429` with `Retry-After` and nothing is done; a batch counts one
/// operation per transfer; another tenant is not affected.
#[tokio::test]
async fn a_tenant_over_its_limit_gets_429_with_retry_after_and_nothing_is_written() {
    let clock = ManualClock::new();
    let api = Api::on(fresh_stack_with(limited(1, 4, &clock)).await);
    open_bank_and_alice(&api).await;
    // 2 of the burst of 4 are spent; a batch of 4 transfers needs 4: 2 more, in 2 s.
    let transfers: Vec<_> = (0..4).map(|i| t(&format!("b{i}"), "bank", "alice", 1)).collect();
    let batch = api.post("/v1/transfer-batches", "acme", json!({"id": "b", "transfers": transfers})).await;
    assert_eq!(retry_after(&batch), 2);
    assert!(batch.is_problem());
    assert_eq!((batch.code(), batch.body["retry_after"].as_u64()), ("rate_limited", Some(2)));
    // The refused batch spent nothing: of four transfers sent at once, exactly the two left pass.
    let sent = futures::future::join_all(
        (0..4).map(|i| api.post("/v1/transfers", "acme", t(&format!("single{i}"), "bank", "alice", 1))),
    )
    .await;
    let refused: Vec<usize> = (0..4).filter(|i| sent[*i].status == StatusCode::TOO_MANY_REQUESTS).collect();
    let admitted = sent.iter().filter(|r| r.status == StatusCode::CREATED).count();
    assert_eq!((admitted, refused.len()), (2, 2), "{:?}", sent.iter().map(|r| r.status).collect::<Vec<_>>());
    // Another tenant has a bucket of its own.
    assert_eq!(api.get("/v1/accounts", "globex").await.status, StatusCode::OK);
    // Nothing of the refused requests was written (read once the bucket is full again).
    clock.advance(time::Duration::seconds(10));
    for path in
        refused.iter().map(|i| format!("/v1/transfers/single{i}")).chain(["/v1/transfer-batches/b".into()])
    {
        let read = api.get(&path, "acme").await;
        assert_eq!(read.status, StatusCode::NOT_FOUND, "{path}: {}", read.body);
    }
}

/// A batch larger than the whole burst is not refused forever: it passes on a full bucket, and is
/// paid for after, at the tenant's rate.
#[tokio::test]
async fn a_batch_larger_than_the_burst_passes_on_a_full_bucket_and_is_paid_for_after() {
    let clock = ManualClock::new();
    let api = Api::on(fresh_stack_with(limited(1, 4, &clock)).await);
    let batch = |id: &str| {
        let transfers: Vec<_> = (0..6).map(|i| t(&format!("{id}-{i}"), "bank", "alice", 1)).collect();
        json!({"id": id, "transfers": transfers})
    };
    let first = api.post("/v1/transfer-batches", "acme", batch("big")).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    // 6 operations charged on a bucket of 4: one more waits 3 s, another such batch until the
    // bucket is full again, 6 s.
    assert_eq!(retry_after(&api.get("/v1/transfer-batches/big", "acme").await), 3);
    assert_eq!(retry_after(&api.post("/v1/transfer-batches", "acme", batch("bigger")).await), 6);
    assert_eq!(api.get("/v1/accounts", "globex").await.status, StatusCode::OK);
    clock.advance(time::Duration::seconds(3));
    assert_eq!(api.get("/v1/transfer-batches/big", "acme").await.status, StatusCode::OK);
}

/// With the store throttled through every retry (an injected fault), the limit cannot be checked:
/// the request fails closed with `503` and `Retry-After`, it is never let through unchecked, and a
/// batch writes nothing.
#[tokio::test]
async fn a_limit_the_store_cannot_check_fails_closed() {
    let faults = harness::FaultPlan { throttle: 1.0, ..harness::FaultPlan::none() };
    let api =
        Api::on(fresh_stack_with(StackOptions { faults, ..limited(100, 100, &ManualClock::new()) }).await);
    let read = api.get("/v1/accounts", "acme").await;
    assert_eq!((read.status, read.code()), (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable"));
    assert_eq!(read.headers["retry-after"], "1");
    let batch = json!({"id": "b", "transfers": [t("b-1", "bank", "alice", 1)]});
    let refused = api.post("/v1/transfer-batches", "acme", batch).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{}", refused.body);
    let claimed = api.stack.dynamodb.scan().table_name(&api.stack.table).send().await.unwrap();
    assert_eq!(claimed.count(), 0, "{:?}", claimed.items());
}

/// A replay is paid for: one operation of the tenant's limit per event it takes, and at most what
/// a full bucket holds once the request is paid (the cursor carries on); a bucket that cannot pay
/// gets `429` and nothing is queued.
#[tokio::test]
async fn a_replay_pays_one_operation_an_event_and_takes_at_most_a_bucket() {
    let clock = ManualClock::new();
    let api = Api::on(fresh_stack_with(limited(1, 4, &clock)).await);
    let endpoint = api
        .post(
            "/v1/webhook-endpoints",
            "acme",
            json!({"url": "http://127.0.0.1:9/hook", "event_types": ["account.opened"]}),
        )
        .await;
    assert_eq!(endpoint.status, StatusCode::CREATED, "{}", endpoint.body);
    let replay_path = format!("/v1/webhook-endpoints/{}/replay", endpoint.body["id"].as_str().unwrap());
    for wave in [["a1", "a2", "a3"], ["a4", "a5", "a6"]] {
        clock.advance(time::Duration::seconds(10));
        for id in wave {
            let opened = api.post("/v1/accounts", "acme", json!({"id": id, "currency": "EUR"})).await;
            assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.body);
        }
    }
    let queued_before = api.stack.delivery_source.depth().await.unwrap();
    clock.advance(time::Duration::seconds(10));
    // A full bucket of 4: the request pays 1, its 3 newest events 3.
    let first = api.post(&replay_path, "acme", json!({"from": "2026-01-01T00:00:00Z"})).await;
    assert_eq!(
        (first.status, first.body["queued"].as_u64()),
        (StatusCode::ACCEPTED, Some(3)),
        "{}",
        first.body
    );
    let cursor = first.body["next_cursor"].as_str().expect("more to replay").to_owned();
    let next = json!({"from": "2026-01-01T00:00:00Z", "cursor": cursor});
    assert_eq!(retry_after(&api.post(&replay_path, "acme", next.clone()).await), 1);
    assert_eq!(
        api.stack.delivery_source.depth().await.unwrap(),
        queued_before + 3,
        "the refused replay queued nothing"
    );
    clock.advance(time::Duration::seconds(10));
    let second = api.post(&replay_path, "acme", next).await;
    assert_eq!(
        (second.status, second.body["queued"].as_u64()),
        (StatusCode::ACCEPTED, Some(3)),
        "{}",
        second.body
    );
    assert_eq!(api.stack.delivery_source.depth().await.unwrap(), queued_before + 6);
}

/// A `respond-async` wait costs the tenant one operation per second asked, paid from its bucket;
/// one the bucket cannot pay is not waited (nor charged): either way the transfer is queued.
#[tokio::test]
async fn a_respond_async_wait_is_paid_for_or_not_waited() {
    let clock = ManualClock::new();
    let api = Api::on(fresh_stack_with(limited(1, 4, &clock)).await);
    open_bank_and_alice(&api).await;
    clock.advance(time::Duration::seconds(10));
    let send = |id: &'static str, wait: u64| {
        let request = http::Request::post("/v1/transfers")
            .header("authorization", format!("Bearer {}", api.token("acme")))
            .header("content-type", "application/json")
            .header("prefer", format!("respond-async; wait={wait}"))
            .body(axum::body::Body::from(t(id, "bank", "alice", 1).to_string()))
            .unwrap();
        api.send_request(request)
    };
    // The request pays 1 of 4; a wait of 5 cannot be paid: not waited, and nothing more charged.
    let unpaid = send("w1", 5).await;
    assert_eq!((unpaid.status, unpaid.body["status"].as_str()), (StatusCode::ACCEPTED, Some("queued")));
    // 3 left, as the refused wait charged nothing: the request pays 1, a wait of 2 the other 2.
    let paid = send("w2", 2).await;
    assert_eq!((paid.status, paid.body["status"].as_str()), (StatusCode::ACCEPTED, Some("queued")));
    // The bucket is empty: the next request is refused.
    assert_eq!(retry_after(&api.get("/v1/accounts", "acme").await), 1);
}
