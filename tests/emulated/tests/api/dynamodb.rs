//! What only the DynamoDB store shows through the router: its throttling answered `503` with
//! `Retry-After`, and the calls each read costs it, counted at the fault proxy in front of
//! DynamoDB Local.

use harness::client::transfer_body as t;
use harness::scenarios::caching::{get_if_none_match, tag};
use harness::{Api, FaultPlan, StackOptions, fresh_stack_with};
use http::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// An API whose store is behind the fault proxy, which counts its calls.
async fn counted() -> Api {
    Api::on(fresh_stack_with(StackOptions { dynamodb_proxy: true, ..StackOptions::default() }).await)
}

#[tokio::test]
async fn a_throttled_store_answers_503_with_retry_after() {
    let plan = FaultPlan { throttle: 1.0, ..FaultPlan::none() };
    let api = Api::on(fresh_stack_with(StackOptions { faults: plan, ..StackOptions::default() }).await);
    let reply = api.post("/v1/transfers", "acme", t("t1", "alice", "bob", 1)).await;
    assert_eq!((reply.status, reply.code()), (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable"));
    assert_eq!(reply.headers.get("retry-after").map(|v| v.to_str().unwrap()), Some("1"));
}

#[tokio::test]
async fn an_account_revalidates_with_one_get_item_and_no_query() {
    let api = counted().await;
    api.open_account("acme", "bank", true).await;
    api.open_account("acme", "alice", false).await;
    let account = api.get("/v1/accounts/alice", "acme").await;
    let (queries, gets) = (api.stack.faults.calls("Query"), api.stack.faults.calls("GetItem"));
    let unchanged = get_if_none_match(&api, "/v1/accounts/alice", &tag(&account)).await;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);
    assert_eq!((api.stack.faults.calls("Query") - queries, api.stack.faults.calls("GetItem") - gets), (0, 1));
}

fn instant(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap()
}

/// Now, after a pause, so that what happens next takes effect strictly later.
async fn mark() -> OffsetDateTime {
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let at = OffsetDateTime::now_utc();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    at
}

#[tokio::test]
async fn an_instant_is_one_query_and_a_statement_page_two_whatever_the_history_length() {
    let api = counted().await;
    api.open_account("acme", "bank", true).await;
    api.open_account("acme", "alice", false).await;
    let opened = mark().await;
    let transfers: Vec<Value> = (0..300).map(|i| t(&format!("t{i}"), "bank", "alice", 1)).collect();
    for (n, chunk) in transfers.chunks(150).enumerate() {
        let batch = json!({"id": format!("b{n}"), "transfers": chunk});
        assert_eq!(api.post("/v1/transfer-batches", "acme", batch).await.status, StatusCode::ACCEPTED);
    }
    api.stack.drain().await.unwrap();
    let done = mark().await;
    let queries = || api.stack.faults.calls("Query");
    for (when, balance) in [(opened, 0), (done, 300)] {
        let before = queries();
        let path = format!("/v1/accounts/alice/balance?at={}", instant(when));
        assert_eq!(api.get(&path, "acme").await.body["balance"].as_i64(), Some(balance));
        assert_eq!(queries() - before, 1, "as of {when}");
    }
    let before = queries();
    let path =
        format!("/v1/accounts/alice/statement?from={}&to={}&limit=100", instant(opened), instant(done));
    let page = api.get(&path, "acme").await.body;
    assert_eq!(queries() - before, 2);
    assert_eq!(
        (page["entries"].as_array().unwrap().len(), page["entries"][0]["sequence"].as_u64()),
        (100, Some(1))
    );
    assert!(page["next_cursor"].is_string() && page["closing_balance"].is_null());
}
