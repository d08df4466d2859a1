//! Reversals end to end through the router and the worker: full and partial, linked both ways and
//! visible on both, never summing to more than the transfer posted (even sent concurrently, on the
//! sync and async routes at once), and every misuse a typed 4xx that writes nothing.

use crate::client::transfer_body as t;
use crate::{Api, Backend};
use http::StatusCode;
use serde_json::{Value, json};

async fn funded<B: Backend>(api: Api<B>) -> Api<B> {
    api.open_account("acme", "bank", true).await;
    api.open_account("acme", "alice", false).await;
    api.open_account("acme", "bob", false).await;
    for (id, debit, credit, amount) in [("fund", "bank", "alice", 1000), ("pay", "alice", "bob", 600)] {
        let reply = api.post("/v1/transfers", "acme", t(id, debit, credit, amount)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
    api
}

fn reversal(id: &str, reversed: &str, amount: Option<u64>) -> Value {
    serde_json::to_value(ledger::fixtures::reversal(id, reversed, amount)).unwrap()
}

pub async fn a_partial_then_a_full_reversal_move_back_what_was_posted_linked_both_ways<B: Backend>(
    api: Api<B>,
) {
    let api = funded(api).await;
    let part = api.post("/v1/transfers", "acme", reversal("r1", "pay", Some(200))).await;
    assert_eq!(part.status, StatusCode::CREATED, "{}", part.body);
    assert_eq!(
        (
            part.body["reverses_transfer_id"].as_str(),
            part.body["debit_account_id"].as_str(),
            part.body["credit_account_id"].as_str(),
            part.body["amount"].as_i64(),
            part.body["status"].as_str()
        ),
        (Some("pay"), Some("bob"), Some("alice"), Some(200), Some("committed"))
    );
    assert_eq!((api.balance("acme", "alice").await, api.balance("acme", "bob").await), (600, 400));
    let too_much = api.post("/v1/transfers", "acme", reversal("r2", "pay", Some(401))).await;
    assert_eq!(
        (too_much.status, too_much.code(), too_much.body["reversed_transfer_id"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "exceeds_reversible_amount", Some("pay"))
    );
    // Omitted amount: all that remains.
    let rest = api.post("/v1/transfers", "acme", reversal("r3", "pay", None)).await;
    assert_eq!((rest.status, rest.body["amount"].as_i64()), (StatusCode::CREATED, Some(400)));
    assert_eq!((api.balance("acme", "alice").await, api.balance("acme", "bob").await), (1000, 0));
    let original = api.get("/v1/transfers/pay", "acme").await.body;
    assert_eq!(
        (original["status"].as_str(), original["reversed_amount"].as_i64(), &original["reversals"]),
        (Some("committed"), Some(600), &json!([{"id": "r1", "amount": 200}, {"id": "r3", "amount": 400}]))
    );
    assert_eq!(api.get("/v1/transfers/r3", "acme").await.body["reverses_transfer_id"], "pay");
    // Nothing is left to reverse; a retry of a reversal replays it and moves nothing.
    assert_eq!(
        api.post("/v1/transfers", "acme", reversal("r4", "pay", None)).await.code(),
        "exceeds_reversible_amount"
    );
    let again = api.post("/v1/transfers", "acme", reversal("r1", "pay", Some(200))).await;
    assert_eq!((again.status, again.replayed()), (StatusCode::OK, true));
    let bob: Vec<_> = api
        .all_entries("acme", "bob")
        .await
        .iter()
        .map(|e| (e["transfer_id"].as_str().unwrap().to_owned(), e["direction"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        bob,
        [("r3".into(), "debit".into()), ("r1".into(), "debit".into()), ("pay".into(), "credit".into())]
    );
}

pub async fn concurrent_reversals_on_both_routes_never_sum_to_more_than_the_original<B: Backend>(
    api: Api<B>,
) {
    let api = funded(api).await;
    // 24 reversals of 50 against 600 posted: exactly 12 can land, whichever they are.
    let bodies: Vec<_> = (0..24).map(|i| reversal(&format!("r{i}"), "pay", Some(50))).collect();
    let sync = bodies.iter().step_by(2).map(|b| api.post("/v1/transfers", "acme", b.clone()));
    let queued = bodies.iter().skip(1).step_by(2).map(|b| api.post_async("/v1/transfers", "acme", b));
    let (sync, queued) = tokio::join!(futures::future::join_all(sync), futures::future::join_all(queued));
    assert!(queued.iter().all(|r| r.status == StatusCode::ACCEPTED));
    let drained = tokio::spawn({
        let stack = api.stack.clone();
        async move { stack.settle_queued().await }
    });
    // More sync reversals race the worker.
    let late: Vec<_> = (24..30).map(|i| reversal(&format!("r{i}"), "pay", Some(50))).collect();
    let late =
        futures::future::join_all(late.iter().map(|b| api.post("/v1/transfers", "acme", b.clone()))).await;
    drained.await.unwrap().unwrap();
    for reply in sync.iter().chain(&late) {
        assert!(
            reply.status == StatusCode::CREATED || reply.code() == "exceeds_reversible_amount",
            "{} {}",
            reply.status,
            reply.body
        );
    }
    let mut landed = 0;
    for i in 0..30 {
        let r = api.get(&format!("/v1/transfers/r{i}"), "acme").await.body;
        match r["status"].as_str() {
            Some("committed") => landed += 1,
            Some("rejected") => assert_eq!(r["reason"]["code"], "exceeds_reversible_amount", "{r}"),
            other => panic!("r{i}: {other:?}"),
        }
    }
    let original = api.get("/v1/transfers/pay", "acme").await.body;
    assert_eq!((landed, original["reversed_amount"].as_i64()), (12, Some(600)));
    assert_eq!(original["reversals"].as_array().unwrap().len(), 12);
    assert_eq!((api.balance("acme", "alice").await, api.balance("acme", "bob").await), (1000, 0));
}

pub async fn a_transfer_and_its_reversals_settle_in_one_batch_in_order<B: Backend>(api: Api<B>) {
    let api = funded(api).await;
    let batch = json!({"id": "b1", "transfers": [
        reversal("br0", "bt", None),
        t("bt", "alice", "bob", 300),
        reversal("br1", "bt", Some(100)),
        t("bspend", "bob", "alice", 750),
        reversal("br2", "bt", None),
        reversal("br3", "bt", Some(50)),
    ]});
    assert_eq!(api.post("/v1/transfer-batches", "acme", batch).await.status, StatusCode::ACCEPTED);
    api.stack.settle_queued().await.unwrap();
    let status = api.get("/v1/transfer-batches/b1", "acme").await.body;
    // br0 comes before bt; br2 would take back 200 from bob, who kept 50 after spending 750.
    assert_eq!(
        status["rejected_by_reason"],
        json!({"reversed_transfer_not_found": 1, "insufficient_funds": 1}),
        "{status}"
    );
    let bt = api.get("/v1/transfers/bt", "acme").await.body;
    assert_eq!(bt["reversals"], json!([{"id": "br1", "amount": 100}, {"id": "br3", "amount": 50}]));
    assert_eq!((api.balance("acme", "alice").await, api.balance("acme", "bob").await), (1000, 0));
}

pub async fn every_misuse_of_a_reversal_is_a_typed_4xx_and_writes_nothing<B: Backend>(api: Api<B>) {
    let api = funded(api).await;
    let hold = serde_json::to_value(ledger::fixtures::hold("h", "alice", "bob", 10, None)).unwrap();
    assert_eq!(api.post("/v1/transfers", "acme", hold).await.status, StatusCode::CREATED);
    let void = serde_json::to_value(ledger::fixtures::void("v", "h")).unwrap();
    assert_eq!(api.post("/v1/transfers", "acme", void).await.status, StatusCode::CREATED);
    let refused = api.post("/v1/transfers", "acme", t("nope", "bob", "alice", 5_000)).await;
    assert_eq!(refused.code(), "insufficient_funds");
    let bad_fields = [
        (json!({"id": "x1", "reverses_transfer_id": "pay", "debit_account_id": "alice"}), "debit_account_id"),
        (json!({"id": "x2", "reverses_transfer_id": "pay", "currency": "EUR"}), "currency"),
        (json!({"id": "x3", "reverses_transfer_id": "pay", "void_pending_id": "h"}), "reverses_transfer_id"),
        (json!({"id": "x4", "reverses_transfer_id": "pay", "amount": 0}), "amount"),
        (json!({"id": "x5", "reverses_transfer_id": "pay", "pending": true}), "pending"),
        (json!({"id": "x6", "reverses_transfer_id": ""}), "reverses_transfer_id"),
    ];
    for (body, field) in bad_fields {
        api.post("/v1/transfers", "acme", body.clone()).await.assert_invalid_field(field, &body);
        let id = body["id"].as_str().unwrap();
        assert_eq!(api.get(&format!("/v1/transfers/{id}"), "acme").await.status, StatusCode::NOT_FOUND);
    }
    let rules = [
        (reversal("y1", "ghost", None), "reversed_transfer_not_found"),
        (reversal("y2", "h", None), "not_reversible"),
        (reversal("y3", "v", None), "not_reversible"),
        (reversal("y4", "nope", None), "not_reversible"),
        (reversal("y5", "pay", Some(601)), "exceeds_reversible_amount"),
    ];
    let entries_before = api.all_entries("acme", "bob").await.len();
    for (body, code) in rules {
        let reply = api.post("/v1/transfers", "acme", body.clone()).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::UNPROCESSABLE_ENTITY, code), "{body}");
        assert!(reply.body["reversed_transfer_id"].is_string(), "{}", reply.body);
        let stored = api.get(&format!("/v1/transfers/{}", body["id"].as_str().unwrap()), "acme").await.body;
        assert_eq!(stored["reason"]["code"], code);
    }
    // A reversal of a reversal is refused too.
    assert_eq!(
        api.post("/v1/transfers", "acme", reversal("z1", "pay", Some(1))).await.status,
        StatusCode::CREATED
    );
    assert_eq!(api.post("/v1/transfers", "acme", reversal("z2", "z1", None)).await.code(), "not_reversible");
    assert_eq!(api.all_entries("acme", "bob").await.len(), entries_before + 1);
    assert_eq!(api.get("/v1/transfers/pay", "acme").await.body["reversed_amount"], 1);
}

pub async fn several_reversals_of_one_transfer_land_in_one_transaction<B: Backend>(api: Api<B>) {
    let api = funded(api).await;
    let chain = json!({"transfers": [reversal("c1", "pay", Some(100)), reversal("c2", "pay", Some(50))]});
    let reply = api.post("/v1/linked-transfers", "acme", chain).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let batch = json!({"id": "b2", "transfers": [reversal("b1", "pay", Some(10)), reversal("b2", "pay", Some(20)), reversal("b3", "pay", None)]});
    assert_eq!(api.post("/v1/transfer-batches", "acme", batch).await.status, StatusCode::ACCEPTED);
    api.stack.settle_queued().await.unwrap();
    let original = api.get("/v1/transfers/pay", "acme").await.body;
    assert_eq!(
        original["reversals"],
        json!([{"id": "c1", "amount": 100}, {"id": "c2", "amount": 50}, {"id": "b1", "amount": 10},
            {"id": "b2", "amount": 20}, {"id": "b3", "amount": 420}])
    );
    assert_eq!((api.balance("acme", "alice").await, api.balance("acme", "bob").await), (1000, 0));
}
