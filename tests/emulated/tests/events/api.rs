//! Events end to end through the router, the worker and the sweeper: each change of the ledger is
//! exactly one event, written with it; the events API lists them newest first across its shards,
//! by type and time, and serves each by id; a request's correlation id is on the events it caused.

use std::collections::BTreeMap;

use harness::Api;
use harness::client::transfer_body as t;
use http::StatusCode;
use ledger::fixtures;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn body(transfer: ledger::NewTransfer) -> Value {
    serde_json::to_value(transfer).unwrap()
}

/// Every event the list returns, following its cursor, `limit` a page.
async fn all_events(api: &Api, tenant: &str, query: &str, limit: u16) -> Vec<Value> {
    let mut events = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/events?limit={limit}{query}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = api.get(&path, tenant).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let data = page.body["data"].as_array().unwrap().clone();
        assert!(data.len() <= usize::from(limit));
        events.extend(data);
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return events,
        }
    }
}

fn ids(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn every_change_is_one_event_and_nothing_else_is() {
    let api = Api::new().await;
    for (id, overdraft) in [("bank", true), ("alice", false), ("bob", false)] {
        api.open_account("acme", id, overdraft).await;
    }
    // Replays, conflicts and refusals of shape change nothing, and tell nothing.
    api.open_account("acme", "bob", false).await;
    let sync = [
        body(fixtures::transfer("fund", "bank", "alice", 1000)),
        body(fixtures::transfer("fund", "bank", "alice", 1000)),
        body(fixtures::transfer("fund", "bank", "alice", 999)),
        body(fixtures::transfer("over", "alice", "bob", 5000)),
        body(fixtures::hold("h1", "alice", "bob", 100, None)),
        body(fixtures::post("p1", "h1", Some(60))),
        body(fixtures::hold("h2", "alice", "bob", 50, None)),
        body(fixtures::void("v1", "h2")),
        body(fixtures::reversal("r1", "fund", Some(10))),
        body(fixtures::hold("h3", "alice", "bob", 20, Some(1))),
    ];
    for transfer in sync {
        let reply = api.post("/v1/transfers", "acme", transfer).await;
        assert!(
            reply.status.is_success()
                || reply.status == StatusCode::UNPROCESSABLE_ENTITY
                || reply.status == StatusCode::CONFLICT,
            "{}",
            reply.body
        );
    }
    assert_eq!(api.post("/v1/transfers", "acme", json!({"id": "bad"})).await.status, StatusCode::BAD_REQUEST);
    // Through the queue: one transfer, a linked chain, a batch.
    assert_eq!(
        api.post_async("/v1/transfers", "acme", &t("q1", "alice", "bob", 1)).await.status,
        StatusCode::ACCEPTED
    );
    let chain = json!({"transfers": [t("l1", "alice", "bob", 1), t("l2", "bob", "bank", 1)]});
    assert_eq!(api.post_async("/v1/linked-transfers", "acme", &chain).await.status, StatusCode::ACCEPTED);
    let batch =
        json!({"id": "b1", "transfers": [t("b1-1", "alice", "bob", 1), t("b1-2", "bob", "alice", 10_000)]});
    assert_eq!(api.post("/v1/transfer-batches", "acme", batch).await.status, StatusCode::ACCEPTED);
    api.stack.drain().await.unwrap();
    // The sweeper expires h3.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    api.stack.sweep(OffsetDateTime::now_utc()).await.unwrap();

    let events = all_events(&api, "acme", "", 3).await;
    let kinds: BTreeMap<String, String> = events
        .iter()
        .map(|e| (e["id"].as_str().unwrap().to_owned(), e["type"].as_str().unwrap().to_owned()))
        .collect();
    let expected: BTreeMap<String, String> = [
        ("account.opened", ["bank", "alice", "bob"].as_slice()),
        ("transfer.committed", &["fund", "q1", "l1", "l2", "b1-1"]),
        ("transfer.rejected", &["over", "b1-2"]),
        ("hold.created", &["h1", "h2", "h3"]),
        ("hold.posted", &["p1"]),
        ("hold.voided", &["v1"]),
        ("transfer.reversed", &["r1"]),
        ("hold.expired", &["h3"]),
        ("batch.settled", &["b1"]),
    ]
    .into_iter()
    .flat_map(|(kind, ids)| ids.iter().map(move |id| (format!("{kind}:{id}"), kind.to_owned())))
    .collect();
    assert_eq!(kinds, expected);
    assert_eq!(events.len(), expected.len(), "no event listed twice: {:?}", ids(&events));
    // Newest first.
    let created: Vec<OffsetDateTime> = events
        .iter()
        .map(|e| OffsetDateTime::parse(e["created"].as_str().unwrap(), &Rfc3339).unwrap())
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "{created:?}");

    // Each event carries its resource as the API returns it, and is served by id as listed.
    for event in &events {
        assert_eq!((event["tenant"].as_str(), event["api_version"].as_str()), (Some("acme"), Some("v1")));
        let id = event["id"].as_str().unwrap();
        let one = api.get(&format!("/v1/events/{id}"), "acme").await;
        assert_eq!((one.status, &one.body), (StatusCode::OK, event));
    }
    let fund = &events.iter().find(|e| e["id"] == "transfer.committed:fund").unwrap()["data"]["object"];
    assert_eq!(
        (fund["id"].as_str(), fund["amount"].as_u64(), fund["status"].as_str()),
        (Some("fund"), Some(1000), Some("committed"))
    );
    let expired = &events.iter().find(|e| e["id"] == "hold.expired:h3").unwrap()["data"]["object"];
    assert_eq!(expired["status"], "expired");
    let settled = &events.iter().find(|e| e["id"] == "batch.settled:b1").unwrap()["data"]["object"];
    let batch = api.get("/v1/transfer-batches/b1", "acme").await.body;
    assert_eq!(
        (settled, settled["queued"].as_u64(), settled["rejected"].as_u64()),
        (&batch, Some(0), Some(1))
    );
    let posted = &events.iter().find(|e| e["id"] == "hold.posted:p1").unwrap()["data"]["object"];
    assert_eq!((posted["post_pending_id"].as_str(), posted["amount"].as_u64()), (Some("h1"), Some(60)));

    // By type, and by time.
    let holds = all_events(&api, "acme", "&type=hold.created", 2).await;
    assert_eq!(ids(&holds), ["hold.created:h3", "hold.created:h2", "hold.created:h1"]);
    let middle = &created[events.len() / 2];
    let format = |at: &OffsetDateTime| at.format(&Rfc3339).unwrap();
    let before = all_events(&api, "acme", &format!("&to={}", format(middle)), 100).await;
    let after = all_events(&api, "acme", &format!("&from={}", format(middle)), 100).await;
    assert_eq!(before.len() + after.len(), events.len());
    let at = |e: &Value| OffsetDateTime::parse(e["created"].as_str().unwrap(), &Rfc3339).unwrap();
    assert!(after.iter().all(|e| at(e) >= *middle));
    assert!(before.iter().all(|e| at(e) < *middle));

    // Another tenant sees none of them.
    assert!(all_events(&api, "globex", "", 100).await.is_empty());
    assert_eq!(api.get("/v1/events/transfer.committed:fund", "globex").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn misuse_of_the_events_api_is_a_typed_400_or_404() {
    let api = Api::new().await;
    for (path, field) in [
        ("/v1/events?type=transfer.exploded", "type"),
        ("/v1/events?from=yesterday", "from"),
        ("/v1/events?from=2026-11-29T10:00:00Z&to=2026-11-29T10:00:00Z", "to"),
        ("/v1/events?cursor=bm9wZQ", "cursor"),
        ("/v1/events?limit=0", "limit"),
        ("/v1/events/not-an-event", "id"),
        ("/v1/events/transfer.exploded:t1", "id"),
    ] {
        api.get(path, "acme").await.assert_invalid_field(field, path);
    }
    let missing = api.get("/v1/events/transfer.committed:nothing", "acme").await;
    assert_eq!((missing.status, missing.code()), (StatusCode::NOT_FOUND, "not_found"));
}

#[tokio::test]
async fn an_event_records_the_request_that_caused_it_even_through_the_queue() {
    let api = Api::new().await;
    api.open_account("acme", "bank", true).await;
    api.open_account("acme", "alice", false).await;
    let send = |id: &str, correlation: &str, prefer: Option<&str>| {
        let mut request = http::Request::post("/v1/transfers")
            .header("authorization", format!("Bearer {}", api.token("acme")))
            .header("content-type", "application/json")
            .header("x-correlation-id", correlation);
        if let Some(prefer) = prefer {
            request = request.header("prefer", prefer);
        }
        request.body(axum::body::Body::from(t(id, "bank", "alice", 5).to_string())).unwrap()
    };
    assert_eq!(api.send_request(send("now", "order-1", None)).await.status, StatusCode::CREATED);
    assert_eq!(
        api.send_request(send("later", "order-2", Some("respond-async"))).await.status,
        StatusCode::ACCEPTED
    );
    api.stack.drain().await.unwrap();
    let tenant = ledger::TenantId::parse("acme").unwrap();
    for (id, correlation) in [("transfer.committed:now", "order-1"), ("transfer.committed:later", "order-2")]
    {
        let stored = api
            .stack
            .store
            .get_event(&tenant, &ledger::EventId::parse(id).unwrap(), time::OffsetDateTime::now_utc())
            .await
            .unwrap();
        assert_eq!(stored.correlation_id.as_deref(), Some(correlation), "{id}");
    }
}
