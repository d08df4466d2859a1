//! End-to-end through the router: every documented answer of the API.

use crate::client::transfer_body as t;
use crate::{Api, Backend};
use http::StatusCode;
use serde_json::json;

async fn funded<B: Backend>(api: Api<B>) -> Api<B> {
    for body in [
        json!({"id": "bank", "currency": "EUR", "allow_overdraft": true}),
        json!({"id": "alice", "currency": "EUR", "metadata": {"name": "Alice"}}),
        json!({"id": "bob", "currency": "EUR"}),
    ] {
        assert_eq!(api.post("/v1/accounts", "acme", body).await.status, StatusCode::CREATED);
    }
    let fund = t("fund-1", "bank", "alice", 1000);
    assert_eq!(api.post("/v1/transfers", "acme", fund).await.status, StatusCode::CREATED);
    api
}

pub async fn the_documented_walkthrough<B: Backend>(api: Api<B>) {
    let api = funded(api).await;
    let sent = api.post("/v1/transfers", "acme", t("t1", "alice", "bob", 250)).await;
    assert_eq!(sent.status, StatusCode::CREATED);
    assert_eq!(sent.body["status"], "committed");
    assert!(!sent.replayed());

    let replay = api.post("/v1/transfers", "acme", t("t1", "alice", "bob", 250)).await;
    assert_eq!(replay.status, StatusCode::OK);
    assert!(replay.replayed());
    assert_eq!(replay.body, sent.body);

    let alice = api.get("/v1/accounts/alice", "acme").await;
    assert_eq!(alice.status, StatusCode::OK);
    assert_eq!(
        (alice.body["balance"].as_i64(), alice.body["metadata"]["name"].as_str()),
        (Some(750), Some("Alice"))
    );
    let entries = api.get("/v1/accounts/alice/entries", "acme").await;
    let balances: Vec<_> =
        entries.body["data"].as_array().unwrap().iter().map(|e| e["balance_after"].as_i64()).collect();
    assert_eq!(balances, vec![Some(750), Some(1000)]);
    assert_eq!(entries.body["next_cursor"], serde_json::Value::Null);

    let fetched = api.get("/v1/transfers/t1", "acme").await;
    assert_eq!((fetched.status, &fetched.body), (StatusCode::OK, &sent.body));
}

pub async fn business_rules_answer_422_with_their_code_and_replay_the_same<B: Backend>(api: Api<B>) {
    let api = funded(api).await;
    let cases = [
        (t("r1", "alice", "bob", 5000), "insufficient_funds"),
        (t("r2", "alice", "alice", 1), "same_account"),
        (t("r3", "alice", "ghost", 1), "account_not_found"),
        (
            json!({"id": "r4", "debit_account_id": "bank", "credit_account_id": "bob", "amount": 1, "currency": "USD"}),
            "currency_mismatch",
        ),
    ];
    for (body, code) in cases {
        let first = api.post("/v1/transfers", "acme", body.clone()).await;
        assert_eq!((first.status, first.code()), (StatusCode::UNPROCESSABLE_ENTITY, code), "{}", first.body);
        assert!(first.is_problem());
        let again = api.post("/v1/transfers", "acme", body).await;
        assert_eq!((again.status, again.code()), (StatusCode::UNPROCESSABLE_ENTITY, code));
        assert!(again.replayed());
    }
    let r1 = api.get("/v1/transfers/r1", "acme").await;
    assert_eq!(
        (r1.body["status"].as_str(), r1.body["reason"]["code"].as_str()),
        (Some("rejected"), Some("insufficient_funds"))
    );
    assert_eq!(api.get("/v1/accounts/bob", "acme").await.body["balance"], 0);
}

pub async fn idempotency_conflicts_name_the_differing_fields<B: Backend>(api: Api<B>) {
    let api = funded(api).await;
    api.post("/v1/transfers", "acme", t("t1", "alice", "bob", 10)).await;
    let conflict = api.post("/v1/transfers", "acme", t("t1", "alice", "bank", 11)).await;
    assert_eq!((conflict.status, conflict.code()), (StatusCode::CONFLICT, "idempotency_conflict"));
    assert_eq!(conflict.body["fields"], json!(["credit_account_id", "amount"]));

    let account = api.post("/v1/accounts", "acme", json!({"id": "alice", "currency": "USD"})).await;
    assert_eq!((account.status, account.code()), (StatusCode::CONFLICT, "idempotency_conflict"));
    assert_eq!(account.body["fields"], json!(["currency", "metadata"]));
    let replay = api.post("/v1/accounts", "acme", json!({"id": "bob", "currency": "EUR"})).await;
    assert_eq!(replay.status, StatusCode::OK);
    assert!(replay.replayed());
}

pub async fn bad_input_is_a_typed_400_naming_the_field<B: Backend>(api: Api<B>) {
    let api = funded(api).await;
    let malformed = api.raw("POST", "/v1/transfers", Some("acme"), r#"{"id": "t-1","#).await;
    assert_eq!((malformed.status, malformed.code()), (StatusCode::BAD_REQUEST, "malformed_json"));
    assert!(malformed.is_problem());
    let trailing = api.raw("POST", "/v1/accounts", Some("acme"), r#"{"currency":"EUR"} x"#).await;
    assert_eq!(trailing.code(), "malformed_json");

    let cases = [
        (
            json!({"id": "x", "debit_account_id": "alice", "credit_account_id": "bob", "amount": 0, "currency": "EUR"}),
            "amount",
        ),
        (
            json!({"id": "x", "debit_account_id": "alice", "credit_account_id": "bob", "amount": 9_223_372_036_854_775_808u64, "currency": "EUR"}),
            "amount",
        ),
        (
            json!({"id": "x", "debit_account_id": "alice", "credit_account_id": "bob", "amount": 1.5, "currency": "EUR"}),
            "amount",
        ),
        (
            json!({"id": "x", "debit_account_id": "alice", "credit_account_id": "bob", "amount": "1", "currency": "EUR"}),
            "amount",
        ),
        (
            json!({"id": "x", "debit_account_id": "a b", "credit_account_id": "bob", "amount": 1, "currency": "EUR"}),
            "debit_account_id",
        ),
        (
            json!({"id": "x", "debit_account_id": "alice", "credit_account_id": "bob", "amount": 1, "currency": "eur"}),
            "currency",
        ),
        (
            json!({"debit_account_id": "alice", "credit_account_id": "bob", "amount": 1, "currency": "EUR"}),
            "id",
        ),
        (
            json!({"id": "x", "debit_account_id": "alice", "credit_account_id": "bob", "amount": 1, "currency": "EUR", "memo": 1}),
            "memo",
        ),
        (json!([1, 2]), "body"),
    ];
    for (body, field) in cases {
        api.post("/v1/transfers", "acme", body.clone()).await.assert_invalid_field(field, &body);
    }
    let metadata = json!({"currency": "EUR", "metadata": {"k": "v".repeat(501)}});
    assert_eq!(api.post("/v1/accounts", "acme", metadata).await.body["field"], "metadata");
    for query in ["limit=0", "limit=101", "limit=x", "cursor=%%%"] {
        let reply = api.get(&format!("/v1/accounts?{query}"), "acme").await;
        assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, "invalid_field"), "{query}");
    }
    let bad_id = api.get("/v1/accounts/not%20valid", "acme").await;
    assert_eq!((bad_id.status, bad_id.body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("id")));
    assert_eq!(api.get("/v1/accounts/bob", "acme").await.body["balance"], 0);
}

pub async fn an_amount_written_as_a_float_without_fraction_is_that_integer<B: Backend>(api: Api<B>) {
    // JSON Schema, and so the OpenAPI document, counts 25.0 as an integer.
    let api = funded(api).await;
    let body = json!({"id": "float-1", "debit_account_id": "alice", "credit_account_id": "bob", "amount": 25.0, "currency": "EUR"});
    let reply = api.post("/v1/transfers", "acme", body).await;
    assert_eq!((reply.status, reply.body["amount"].clone()), (StatusCode::CREATED, json!(25)));
    let hold = json!({"id": "float-2", "debit_account_id": "alice", "credit_account_id": "bob", "amount": 5, "currency": "EUR", "pending": true, "timeout_seconds": 60.0});
    assert_eq!(api.post("/v1/transfers", "acme", hold).await.status, StatusCode::CREATED);
    for amount in [json!(25.5), json!(-25.0), json!(1e19)] {
        let body = json!({"id": "float-3", "debit_account_id": "alice", "credit_account_id": "bob", "amount": amount, "currency": "EUR"});
        let reply = api.post("/v1/transfers", "acme", body).await;
        assert_eq!(
            (reply.status, reply.body["field"].clone()),
            (StatusCode::BAD_REQUEST, json!("amount")),
            "{amount}"
        );
    }
}

pub async fn an_account_without_id_gets_a_generated_one<B: Backend>(api: Api<B>) {
    let created = api.post("/v1/accounts", "acme", json!({"currency": "JPY"})).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 32);
    assert_eq!(api.get(&format!("/v1/accounts/{id}"), "acme").await.body["currency"], "JPY");
}

pub async fn bodies_over_64_kib_are_413<B: Backend>(api: Api<B>) {
    let big = format!(r#"{{"currency":"EUR","metadata":{{"k":"{}"}}}}"#, "v".repeat(70 * 1024));
    let reply = api.raw("POST", "/v1/accounts", Some("acme"), big).await;
    assert_eq!((reply.status, reply.code()), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
}

pub async fn credentials_and_tenants<B: Backend>(api: Api<B>) {
    let api = funded(api).await;
    let anonymous = api.raw("GET", "/v1/accounts/alice", None, "").await;
    assert_eq!((anonymous.status, anonymous.code()), (StatusCode::UNAUTHORIZED, "unauthorized"));
    let forged = crate::DevAuth::new(b"another-key".to_vec(), "tenant_id")
        .token("acme", std::time::Duration::from_secs(60));
    for bearer in [forged.as_str(), "garbage"] {
        let reply = api.with_bearer("/v1/accounts/alice", bearer).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::UNAUTHORIZED, "unauthorized"));
    }
    let other = api.get("/v1/accounts/alice", "globex").await;
    assert_eq!((other.status, other.code()), (StatusCode::NOT_FOUND, "not_found"));
    let other_list = api.get("/v1/accounts", "globex").await;
    assert_eq!(other_list.body["data"], json!([]));
    let steal = api.post("/v1/transfers", "globex", t("steal", "alice", "bob", 1)).await;
    assert_eq!(steal.code(), "account_not_found");
    assert_eq!(api.get("/v1/accounts/alice", "acme").await.body["balance"], 1000);
}

pub async fn unknown_routes_and_methods_are_problems<B: Backend>(api: Api<B>) {
    let missing = api.get("/v1/nothing", "acme").await;
    assert_eq!((missing.status, missing.code()), (StatusCode::NOT_FOUND, "route_not_found"));
    let method = api.raw("DELETE", "/v1/accounts", Some("acme"), "").await;
    assert_eq!((method.status, method.code()), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
}

pub async fn lists_paginate_with_opaque_cursors<B: Backend>(api: Api<B>) {
    let api = funded(api).await;
    let first = api.get("/v1/accounts?limit=2", "acme").await;
    let ids: Vec<_> = first.body["data"].as_array().unwrap().iter().map(|a| a["id"].clone()).collect();
    assert_eq!(ids, vec![json!("alice"), json!("bank")]);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = api.get(&format!("/v1/accounts?limit=2&cursor={cursor}"), "acme").await;
    assert_eq!(second.body["data"][0]["id"], "bob");
    assert_eq!(second.body["next_cursor"], serde_json::Value::Null);
    // An entries cursor is not an accounts cursor.
    let entries = api.get("/v1/accounts/bank/entries?limit=1", "acme").await;
    assert_eq!(entries.body["next_cursor"], serde_json::Value::Null);
    let mixed = api.get(&format!("/v1/accounts/bank/entries?cursor={cursor}"), "acme").await;
    assert_eq!(mixed.code(), "invalid_field");
}
