//! Tenants cannot reach each other: tenant acme fills every kind of resource, and tenant
//! globex, with its own ledger of the same shape, tries every route on acme's ids, cursors and
//! ETags. Globex sees `404` (or its own data, or a rule naming the id as not found), never a byte of
//! acme's; and acme's ledger is unchanged by all of it. The test covers the route table whole, so
//! a route added without an isolation check fails it.

use std::collections::BTreeSet;

use crate::client::transfer_body as t;
use crate::{Api, Backend};
use http::StatusCode;
use serde_json::{Value, json};

fn fixture(body: ledger::NewTransfer) -> Value {
    serde_json::to_value(body).unwrap()
}

async fn ledger_of<B: Backend>(api: &Api<B>, tenant: &str) {
    api.open_account(tenant, "bank", true).await;
    api.open_account(tenant, "alice", false).await;
    api.open_account(tenant, "bob", false).await;
    for body in [
        t("fund", "bank", "alice", 1_000),
        {
            let mut pay = t("pay", "alice", "bob", 100);
            pay["metadata"] = json!({"order": "1"});
            pay
        },
        fixture(ledger::fixtures::hold("hold", "alice", "bob", 50, None)),
    ] {
        let reply = api.post("/v1/transfers", tenant, body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{tenant}: {}", reply.body);
    }
}

/// Everything acme can read, as acme reads it, as of `at` (RFC 3339).
async fn acme_view<B: Backend>(api: &Api<B>, at: &str) -> Vec<Value> {
    let mut view = Vec::new();
    for path in [
        "/v1/accounts?limit=100".to_owned(),
        "/v1/accounts/alice".to_owned(),
        "/v1/accounts/alice/entries?limit=100".to_owned(),
        format!("/v1/accounts/alice/statement?limit=100&to={at}"),
        format!("/v1/accounts/alice/balance?at={at}"),
        "/v1/transfers/pay".to_owned(),
        "/v1/transfers/hold".to_owned(),
        "/v1/transfers/chain-1".to_owned(),
        "/v1/transfer-batches/batch".to_owned(),
        "/v1/events?limit=100".to_owned(),
        "/v1/events/transfer.committed:pay".to_owned(),
        "/v1/webhook-endpoints".to_owned(),
        "/v1/transfers?limit=100".to_owned(),
        "/v1/transfers?account=alice&limit=100".to_owned(),
        "/v1/transfers?batch=batch&limit=100".to_owned(),
        "/v1/transfers?metadata[order]=1".to_owned(),
        "/v1/transfers?chain=chain-1".to_owned(),
    ] {
        let reply = api.get(&path, "acme").await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        view.push(reply.body);
    }
    view
}

fn get_with_tag<B: Backend>(
    api: &Api<B>,
    path: &str,
    tenant: &str,
    tag: &str,
) -> http::Request<axum::body::Body> {
    http::Request::get(path)
        .header("authorization", format!("Bearer {}", api.token(tenant)))
        .header("if-none-match", tag)
        .body(axum::body::Body::empty())
        .unwrap()
}

pub async fn another_tenant_sees_404_never_data_on_every_route<B: Backend>(api: Api<B>) {
    ledger_of(&api, "acme").await;
    for id in ["carol", "dave"] {
        api.open_account("acme", id, false).await;
    }
    let chain = json!({"transfers": [
        {"linked": true, "id": "chain-1", "debit_account_id": "alice", "credit_account_id": "bob", "amount": 10, "currency": "EUR"},
        t("chain-2", "bob", "alice", 5),
    ]});
    assert_eq!(api.post("/v1/linked-transfers", "acme", chain).await.status, StatusCode::CREATED);
    let batch =
        json!({"id": "batch", "transfers": [t("b-1", "alice", "bob", 1), t("b-2", "alice", "bob", 1)]});
    assert_eq!(api.post("/v1/transfer-batches", "acme", batch).await.status, StatusCode::ACCEPTED);
    api.stack.settle_queued().await.unwrap();
    let at = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap();
    let acme_endpoint = {
        let body = json!({"url": "http://127.0.0.1:9/acme", "event_types": ["*"]});
        let reply = api.post("/v1/webhook-endpoints", "acme", body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body["id"].as_str().unwrap().to_owned()
    };
    let before = acme_view(&api, &at).await;
    // Globex has accounts of its own, one named as one of acme's is ("alice", in USD), none of
    // acme's money; acme's "bob" has no namesake in globex.
    api.open_account("globex", "zed", true).await;
    let alice = api.post("/v1/accounts", "globex", json!({"id": "alice", "currency": "USD"})).await;
    assert_eq!(alice.status, StatusCode::CREATED);
    let no_acme_data = |what: &str, body: &Value| {
        let text = body.to_string();
        assert!(!text.contains("EUR"), "{what}: acme's data: {text}");
        for id in ["fund", "pay", "hold", "chain-1", "chain-2", "b-1", "b-2"] {
            assert!(!text.contains(&format!("\"{id}\"")), "{what}: acme's {id}: {text}");
        }
    };

    let mut covered: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut not_found = |method: &'static str, route: &'static str, reply: crate::Reply| {
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method} {route}: {}", reply.body);
        assert_eq!(reply.code(), "not_found", "{method} {route}: {}", reply.body);
        covered.insert((method, route));
    };
    not_found("GET", "/v1/accounts/{id}", api.get("/v1/accounts/bob", "globex").await);
    not_found("GET", "/v1/accounts/{id}/entries", api.get("/v1/accounts/bob/entries", "globex").await);
    not_found(
        "GET",
        "/v1/accounts/{id}/balance",
        api.get(&format!("/v1/accounts/bob/balance?at={at}"), "globex").await,
    );
    not_found("GET", "/v1/accounts/{id}/statement", api.get("/v1/accounts/bob/statement", "globex").await);
    let statement = json!({"format": "csv", "statement": super::scopes::STATEMENT});
    let reconciled = api.post("/v1/accounts/bob/reconciliations", "acme", statement.clone()).await;
    assert_eq!(reconciled.status, StatusCode::CREATED, "{}", reconciled.body);
    not_found(
        "POST",
        "/v1/accounts/{id}/reconciliations",
        api.post("/v1/accounts/bob/reconciliations", "globex", statement).await,
    );
    not_found(
        "GET",
        "/v1/accounts/{id}/reconciliations/{reconciliation_id}",
        api.get(&format!("/v1/accounts/bob/reconciliations/{}", super::scopes::statement_id()), "globex")
            .await,
    );
    // Acme's account is not globex's to change, whatever version it names.
    let patch = http::Request::patch("/v1/accounts/bob")
        .header("authorization", format!("Bearer {}", api.token("globex")))
        .header("if-match", "*")
        .body(axum::body::Body::from(json!({"metadata": {"k": "v"}}).to_string()))
        .unwrap();
    not_found("PATCH", "/v1/accounts/{id}", api.send_request(patch).await);
    let frozen = api.post("/v1/accounts/bob/freeze", "globex", json!({"mode": "all"})).await;
    not_found("POST", "/v1/accounts/{id}/freeze", frozen);
    not_found(
        "POST",
        "/v1/accounts/{id}/unfreeze",
        api.post("/v1/accounts/bob/unfreeze", "globex", json!({})).await,
    );
    not_found(
        "POST",
        "/v1/accounts/{id}/close",
        api.post("/v1/accounts/bob/close", "globex", json!({})).await,
    );
    not_found("GET", "/v1/transfers/{id}", api.get("/v1/transfers/pay", "globex").await);
    let patch = http::Request::patch("/v1/transfers/pay")
        .header("authorization", format!("Bearer {}", api.token("globex")))
        .header("if-match", "*")
        .body(axum::body::Body::from(json!({"metadata": {"order": "2"}}).to_string()))
        .unwrap();
    not_found("PATCH", "/v1/transfers/{id}", api.send_request(patch).await);
    not_found("GET", "/v1/transfer-batches/{id}", api.get("/v1/transfer-batches/batch", "globex").await);
    not_found("GET", "/v1/events/{id}", api.get("/v1/events/transfer.committed:pay", "globex").await);
    // Webhook endpoints: acme's endpoint is not globex's to read, change, rotate, delete, list the
    // deliveries of, redeliver to or replay on; globex lists only its own.
    let endpoint = format!("/v1/webhook-endpoints/{acme_endpoint}");
    not_found("GET", "/v1/webhook-endpoints/{id}", api.get(&endpoint, "globex").await);
    let patched = api.raw("PATCH", &endpoint, Some("globex"), json!({"enabled": false}).to_string()).await;
    not_found("PATCH", "/v1/webhook-endpoints/{id}", patched);
    not_found("DELETE", "/v1/webhook-endpoints/{id}", api.raw("DELETE", &endpoint, Some("globex"), "").await);
    let rotated = api.post(&format!("{endpoint}/rotate-secret"), "globex", json!({})).await;
    not_found("POST", "/v1/webhook-endpoints/{id}/rotate-secret", rotated);
    not_found(
        "GET",
        "/v1/webhook-endpoints/{id}/deliveries",
        api.get(&format!("{endpoint}/deliveries"), "globex").await,
    );
    let again = api
        .post(&format!("{endpoint}/deliveries"), "globex", json!({"event_id": "account.opened:zed"}))
        .await;
    not_found("POST", "/v1/webhook-endpoints/{id}/deliveries", again);
    let replayed =
        api.post(&format!("{endpoint}/replay"), "globex", json!({"from": "2026-01-01T00:00:00Z"})).await;
    not_found("POST", "/v1/webhook-endpoints/{id}/replay", replayed);
    // The namesake is globex's own alice, with nothing of acme's.
    let own = api.get("/v1/accounts/alice", "globex").await;
    assert_eq!((own.status, own.body["balance"].as_i64()), (StatusCode::OK, Some(0)));
    no_acme_data("globex's alice", &own.body);
    let own = api.get("/v1/accounts/alice/entries", "globex").await;
    assert_eq!((own.status, own.body["data"].as_array().map(Vec::len)), (StatusCode::OK, Some(0)));

    // Lists: globex's own accounts only, and acme's cursors replayed by globex reach globex's own
    // list (a cursor is a position, the tenant comes from the token) or are refused.
    let page = api.get("/v1/accounts?limit=2", "acme").await;
    let acme_cursor = page.body["next_cursor"].as_str().unwrap().to_owned();
    let ids_of = |reply: &crate::Reply| -> Vec<String> {
        let data = reply.body["data"].as_array().unwrap();
        data.iter().filter_map(|a| a["id"].as_str().map(str::to_owned)).collect()
    };
    let mine = api.get("/v1/accounts", "globex").await;
    assert_eq!((mine.status, ids_of(&mine)), (StatusCode::OK, vec!["alice".to_owned(), "zed".to_owned()]));
    let replayed = api.get(&format!("/v1/accounts?cursor={acme_cursor}"), "globex").await;
    assert_eq!(replayed.status, StatusCode::OK, "{}", replayed.body);
    assert_eq!(ids_of(&replayed), ["zed"], "acme's cursor (after its 2nd account) walked globex's own list");
    covered.insert(("GET", "/v1/accounts"));
    let entries = api.get("/v1/accounts/alice/entries?limit=1", "acme").await;
    let entry_cursor = entries.body["next_cursor"].as_str().unwrap().to_owned();
    let statement = api.get("/v1/accounts/alice/statement?limit=1", "acme").await;
    let statement_cursor = statement.body["next_cursor"].as_str().unwrap().to_owned();
    for path in [
        format!("/v1/accounts/alice/entries?cursor={entry_cursor}"),
        format!("/v1/accounts/alice/statement?cursor={statement_cursor}"),
        format!("/v1/accounts/bob/entries?cursor={entry_cursor}"),
    ] {
        // Globex's own history from that position (nothing), a refusal, or not found: never acme's.
        let reply = api.get(&path, "globex").await;
        let answered = [StatusCode::OK, StatusCode::BAD_REQUEST, StatusCode::NOT_FOUND];
        assert!(answered.contains(&reply.status), "{path}: {} {}", reply.status, reply.body);
        no_acme_data(&path, &reply.body);
    }

    // Globex lists only its own endpoints.
    let theirs = api
        .post(
            "/v1/webhook-endpoints",
            "globex",
            json!({"url": "http://127.0.0.1:9/globex", "event_types": ["*"]}),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::CREATED);
    covered.insert(("POST", "/v1/webhook-endpoints"));
    let listed = api.get("/v1/webhook-endpoints", "globex").await;
    let urls: Vec<&str> =
        listed.body["data"].as_array().unwrap().iter().filter_map(|e| e["url"].as_str()).collect();
    assert_eq!(urls, ["http://127.0.0.1:9/globex"]);
    covered.insert(("GET", "/v1/webhook-endpoints"));
    // An acme event redelivered to globex's own endpoint: not found for globex.
    let own = format!("/v1/webhook-endpoints/{}/deliveries", theirs.body["id"].as_str().unwrap());
    let reply = api.post(&own, "globex", json!({"event_id": "transfer.committed:pay"})).await;
    assert_eq!((reply.status, reply.code()), (StatusCode::NOT_FOUND, "not_found"), "{}", reply.body);

    // Events: globex lists its own (its two accounts opened), and acme's events cursor walks
    // globex's own list.
    let events = api.get("/v1/events?limit=1", "acme").await;
    let events_cursor = events.body["next_cursor"].as_str().unwrap().to_owned();
    let kinds = |reply: &crate::Reply| -> BTreeSet<String> {
        let data = reply.body["data"].as_array().unwrap();
        data.iter().filter_map(|e| e["id"].as_str().map(str::to_owned)).collect()
    };
    let mine = api.get("/v1/events", "globex").await;
    let own: BTreeSet<String> = ["account.opened:alice", "account.opened:zed"].map(str::to_owned).into();
    assert_eq!((mine.status, kinds(&mine)), (StatusCode::OK, own.clone()));
    let replayed = api.get(&format!("/v1/events?cursor={events_cursor}"), "globex").await;
    assert_eq!(replayed.status, StatusCode::OK, "{}", replayed.body);
    assert!(kinds(&replayed).is_subset(&own), "{}", replayed.body);
    for reply in [&mine, &replayed] {
        let data = reply.body["data"].as_array().unwrap();
        assert!(data.iter().all(|e| e["tenant"] == "globex"), "{}", reply.body);
    }
    covered.insert(("GET", "/v1/events"));

    // An ETag acme holds does not make globex's read of its namesake a 304.
    let tagged = api.get("/v1/accounts/alice", "acme").await;
    let tag = tagged.headers["etag"].to_str().unwrap().to_owned();
    let reply = api.send_request(get_with_tag(&api, "/v1/accounts/alice", "globex", &tag)).await;
    assert_eq!(
        (reply.status, reply.body["currency"].as_str()),
        (StatusCode::OK, Some("USD")),
        "{}",
        reply.body
    );

    // Search: globex finds none of acme's transfers, whatever account, batch or metadata it names,
    // and acme's search cursors walk globex's own transfers (none) or are refused.
    let acme_page = api.get("/v1/transfers?limit=1", "acme").await;
    let search_cursor = acme_page.body["next_cursor"].as_str().unwrap().to_owned();
    let acme_batch = api.get("/v1/transfers?batch=batch&limit=1", "acme").await;
    let batch_cursor = acme_batch.body["next_cursor"].as_str().unwrap().to_owned();
    for path in [
        "/v1/transfers".to_owned(),
        "/v1/transfers?account=bob".to_owned(),
        "/v1/transfers?account=alice&status=committed".to_owned(),
        "/v1/transfers?batch=batch".to_owned(),
        "/v1/transfers?kind=hold".to_owned(),
        "/v1/transfers?metadata[order]=1".to_owned(),
        "/v1/transfers?chain=chain-1".to_owned(),
        format!("/v1/transfers?cursor={search_cursor}"),
        format!("/v1/transfers?batch=batch&cursor={batch_cursor}"),
    ] {
        let reply = api.get(&path, "globex").await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        assert_eq!(reply.body["data"].as_array().map(Vec::len), Some(0), "{path}: {}", reply.body);
        no_acme_data(&path, &reply.body);
    }
    covered.insert(("GET", "/v1/transfers"));

    // Writes naming acme's accounts and transfers: refused as not found, nothing moved.
    let reply = api.post("/v1/transfers", "globex", t("steal", "bob", "zed", 1)).await;
    assert_eq!((reply.status, reply.code()), (StatusCode::UNPROCESSABLE_ENTITY, "account_not_found"));
    for (body, code) in [
        (fixture(ledger::fixtures::post("take", "hold", None)), "pending_not_found"),
        (fixture(ledger::fixtures::void("drop", "hold")), "pending_not_found"),
        (fixture(ledger::fixtures::reversal("undo", "pay", None)), "reversed_transfer_not_found"),
    ] {
        let reply = api.post("/v1/transfers", "globex", body).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::UNPROCESSABLE_ENTITY, code), "{}", reply.body);
    }
    covered.insert(("POST", "/v1/transfers"));
    let chain = json!({"transfers": [
        {"linked": true, "id": "l1", "debit_account_id": "zed", "credit_account_id": "bob", "amount": 1, "currency": "EUR"},
        t("l2", "bob", "zed", 1),
    ]});
    let reply = api.post("/v1/linked-transfers", "globex", chain).await;
    assert_eq!((reply.status, reply.code()), (StatusCode::UNPROCESSABLE_ENTITY, "account_not_found"));
    covered.insert(("POST", "/v1/linked-transfers"));

    // Ids are per tenant: globex reusing acme's ids made, and makes, resources of its own, never a
    // replay of acme's (no `409`, no acme fields echoed back).
    assert!(!alice.replayed());
    let reply = api.post("/v1/accounts", "globex", json!({"id": "bob", "currency": "USD"})).await;
    assert_eq!((reply.status, reply.body["currency"].as_str()), (StatusCode::CREATED, Some("USD")));
    assert!(!reply.replayed());
    covered.insert(("POST", "/v1/accounts"));
    let batch = json!({"id": "batch", "transfers": [
        {"id": "b-1", "debit_account_id": "zed", "credit_account_id": "alice", "amount": 7, "currency": "USD"}
    ]});
    let reply = api.post("/v1/transfer-batches", "globex", batch).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert!(!reply.replayed());
    assert_eq!(reply.body["total"].as_u64(), Some(1));
    covered.insert(("POST", "/v1/transfer-batches"));
    api.stack.settle_queued().await.unwrap();
    let theirs = api.get("/v1/transfers/b-1", "globex").await;
    assert_eq!((theirs.body["amount"].as_i64(), theirs.body["currency"].as_str()), (Some(7), Some("USD")));

    let routes: BTreeSet<(&str, &str)> = ledger_http::routes().into_iter().collect();
    assert_eq!(covered, routes, "every route has its isolation check");
    // And acme's ledger reads exactly as before.
    assert_eq!(acme_view(&api, &at).await, before);
}

/// A tenant has at most `MAX_ENDPOINTS` webhook endpoints, however many adds race: the rest are
/// `409 limit_reached` and write nothing; another tenant's cap is its own; a deletion frees a
/// place for one more.
pub async fn webhook_endpoints_are_capped_per_tenant_under_concurrent_adds<B: Backend>(api: Api<B>) {
    use ledger::webhook::MAX_ENDPOINTS;
    let api = &api;
    let add = |tenant: &'static str, n: usize| {
        let body = json!({"url": format!("http://127.0.0.1:9/{tenant}/{n}"), "event_types": ["*"]});
        api.post("/v1/webhook-endpoints", tenant, body)
    };
    let replies = futures::future::join_all((0..MAX_ENDPOINTS + 6).map(|n| add("acme", n))).await;
    let created: Vec<String> = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .map(|r| r.body["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(created.len(), MAX_ENDPOINTS);
    for refused in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert_eq!(
            (refused.status, refused.code()),
            (StatusCode::CONFLICT, "limit_reached"),
            "{}",
            refused.body
        );
    }
    let listed = |tenant: &'static str| async move {
        api.get("/v1/webhook-endpoints?limit=100", tenant).await.body["data"].as_array().unwrap().len()
    };
    // The index is a moment behind the writes.
    for _ in 0..50 {
        if listed("acme").await == MAX_ENDPOINTS {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(listed("acme").await, MAX_ENDPOINTS);
    assert_eq!(add("globex", 0).await.status, StatusCode::CREATED, "globex's cap is its own");
    let deleted = api.raw("DELETE", &format!("/v1/webhook-endpoints/{}", created[0]), Some("acme"), "").await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = api.raw("DELETE", &format!("/v1/webhook-endpoints/{}", created[0]), Some("acme"), "").await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "a second delete frees nothing more");
    assert_eq!(add("acme", 100).await.status, StatusCode::CREATED);
    assert_eq!(add("acme", 101).await.code(), "limit_reached");
}
