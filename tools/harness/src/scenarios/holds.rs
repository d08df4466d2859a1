//! Holds (two-phase transfers) end to end through the router, the worker and the sweeper: reserve,
//! post part or all, void, expire; each hold resolved at most once, under concurrent posts, voids
//! and sweeps; every misuse a typed 4xx that writes nothing.

use crate::client::transfer_body as t;
use crate::{Api, Backend};
use http::StatusCode;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

async fn funded<B: Backend>(api: Api<B>) -> Api<B> {
    api.open_account("acme", "bank", true).await;
    api.open_account("acme", "alice", false).await;
    api.open_account("acme", "bob", false).await;
    assert_eq!(
        api.post("/v1/transfers", "acme", t("fund", "bank", "alice", 1000)).await.status,
        StatusCode::CREATED
    );
    api
}

fn hold(id: &str, debit: &str, credit: &str, amount: u64, timeout: Option<u64>) -> Value {
    serde_json::to_value(ledger::fixtures::hold(id, debit, credit, amount, timeout)).unwrap()
}

fn post(id: &str, pending: &str, amount: Option<u64>) -> Value {
    serde_json::to_value(ledger::fixtures::post(id, pending, amount)).unwrap()
}

fn void(id: &str, pending: &str) -> Value {
    serde_json::to_value(ledger::fixtures::void(id, pending)).unwrap()
}

/// (balance, available, debits_pending, credits_pending) of an account.
async fn totals<B: Backend>(api: &Api<B>, account: &str) -> (i64, i64, i64, i64) {
    let b = api.get(&format!("/v1/accounts/{account}"), "acme").await.body;
    let n = |k: &str| b[k].as_i64().unwrap_or_else(|| panic!("{k} in {b}"));
    (n("balance"), n("available"), n("debits_pending"), n("credits_pending"))
}

pub async fn a_hold_reserves_and_a_post_captures_part_of_it_releasing_the_rest<B: Backend>(api: Api<B>) {
    let api = funded(api).await;
    let held = api.post("/v1/transfers", "acme", hold("h1", "alice", "bob", 600, None)).await;
    assert_eq!(
        (held.status, held.body["status"].as_str(), held.body["pending"].as_bool()),
        (StatusCode::CREATED, Some("pending"), Some(true))
    );
    assert_eq!(totals(&api, "alice").await, (1000, 400, 600, 0));
    assert_eq!(totals(&api, "bob").await, (0, 0, 0, 600));
    // The hold counts against the available balance.
    let over = api.post("/v1/transfers", "acme", t("spend", "alice", "bob", 401)).await;
    assert_eq!((over.status, over.code()), (StatusCode::UNPROCESSABLE_ENTITY, "insufficient_funds"));

    let too_much = api.post("/v1/transfers", "acme", post("p0", "h1", Some(601))).await;
    assert_eq!(
        (too_much.code(), too_much.body["pending_id"].as_str()),
        ("exceeds_pending_amount", Some("h1"))
    );
    let captured = api.post("/v1/transfers", "acme", post("p1", "h1", Some(250))).await;
    assert_eq!(captured.status, StatusCode::CREATED, "{}", captured.body);
    assert_eq!(
        (
            captured.body["status"].as_str(),
            captured.body["amount"].as_i64(),
            captured.body["debit_account_id"].as_str(),
            captured.body["post_pending_id"].as_str()
        ),
        (Some("committed"), Some(250), Some("alice"), Some("h1"))
    );
    let h1 = api.get("/v1/transfers/h1", "acme").await.body;
    assert_eq!(
        (h1["status"].as_str(), h1["resolved_by"].as_str(), h1["posted_amount"].as_i64()),
        (Some("posted"), Some("p1"), Some(250))
    );
    assert_eq!(totals(&api, "alice").await, (750, 750, 0, 0));
    assert_eq!(totals(&api, "bob").await, (250, 250, 0, 0));

    // Resolved once: a second post or a void is refused; a retry of the post replays it.
    for (body, code) in
        [(post("p2", "h1", None), "pending_already_posted"), (void("v1", "h1"), "pending_already_posted")]
    {
        let refused = api.post("/v1/transfers", "acme", body).await;
        assert_eq!((refused.status, refused.code()), (StatusCode::UNPROCESSABLE_ENTITY, code));
        assert!(refused.is_problem());
    }
    let replay = api.post("/v1/transfers", "acme", post("p1", "h1", Some(250))).await;
    assert_eq!((replay.status, replay.replayed()), (StatusCode::OK, true));
    // Replaying the hold's own request answers the hold as it stands.
    let hold_replay = api.post("/v1/transfers", "acme", hold("h1", "alice", "bob", 600, None)).await;
    assert_eq!((hold_replay.status, hold_replay.body["status"].as_str()), (StatusCode::OK, Some("posted")));

    let entries = api.all_entries("acme", "alice").await;
    let effects: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                e["effect"].as_str().unwrap(),
                e["amount"].as_i64().unwrap(),
                e["available_after"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(effects, [("posted_from_hold", 250, 750), ("held", 600, 400), ("posted", 1000, 1000)]);
    assert_eq!(entries[0]["held"], 600);
}

pub async fn a_void_releases_all_and_concurrent_posts_and_voids_resolve_a_hold_once<B: Backend>(api: Api<B>) {
    let api = funded(api).await;
    assert_eq!(
        api.post("/v1/transfers", "acme", hold("h", "alice", "bob", 300, None)).await.status,
        StatusCode::CREATED
    );
    let racers = (0..16).map(|i| {
        let body =
            if i % 2 == 0 { post(&format!("p{i}"), "h", Some(100 + i)) } else { void(&format!("v{i}"), "h") };
        api.post("/v1/transfers", "acme", body)
    });
    let replies = futures::future::join_all(racers).await;
    let winners: Vec<_> = replies.iter().filter(|r| r.status == StatusCode::CREATED).collect();
    assert_eq!(
        winners.len(),
        1,
        "{:?}",
        replies.iter().map(|r| (r.status, r.code().to_owned())).collect::<Vec<_>>()
    );
    let won_by_post = winners[0].body["post_pending_id"].is_string();
    let expected = if won_by_post { "pending_already_posted" } else { "pending_already_voided" };
    for r in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert_eq!(r.code(), expected, "{}", r.body);
    }
    let posted = if won_by_post { winners[0].body["amount"].as_i64().unwrap() } else { 0 };
    assert_eq!(totals(&api, "alice").await, (1000 - posted, 1000 - posted, 0, 0));
    assert_eq!(totals(&api, "bob").await, (posted, posted, 0, 0));
    let h = api.get("/v1/transfers/h", "acme").await.body;
    assert_eq!(h["resolved_by"], winners[0].body["id"]);
}

pub async fn an_expired_hold_reads_expired_at_once_and_frees_its_money_at_once<B: Backend>(api: Api<B>) {
    let api = funded(api).await;
    let created = api.post("/v1/transfers", "acme", hold("h", "alice", "bob", 600, Some(1))).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(
        api.post("/v1/transfers", "acme", hold("h2", "alice", "bob", 300, Some(1))).await.status,
        StatusCode::CREATED
    );
    let expires_at = created.body["expires_at"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    // No sweep yet: the hold reads expired (its expiry written by the read itself), and can no
    // longer be resolved.
    let read = api.get("/v1/transfers/h", "acme").await.body;
    assert_eq!(
        (read["status"].as_str(), read["expires_at"].as_str()),
        (Some("expired"), Some(expires_at.as_str()))
    );
    for body in [post("p", "h", None), void("v", "h")] {
        assert_eq!(api.post("/v1/transfers", "acme", body).await.code(), "pending_expired");
    }
    // h2, which nobody met since, counts for nothing once past its time: the read of alice's
    // account releases it before it answers, and the sweeper finds nothing left to do.
    assert_eq!(totals(&api, "alice").await, (1000, 1000, 0, 0));
    assert_eq!(totals(&api, "bob").await, (0, 0, 0, 0));
    assert_eq!(api.get("/v1/transfers/h2", "acme").await.body["status"], "expired");
    assert_eq!(api.stack.sweep(OffsetDateTime::now_utc()).await.unwrap(), ledger::port::Sweep::default());
    let effects: Vec<_> = api
        .all_entries("acme", "bob")
        .await
        .iter()
        .map(|e| e["effect"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(effects, ["released", "released", "held", "held"]);
}

pub async fn at_the_deadline_posts_reads_and_sweeps_race_and_exactly_one_resolves_each_hold<B: Backend>(
    api: Api<B>,
) {
    let api = funded(api).await;
    let store = api.stack.store();
    let tenant = ledger::TenantId::parse("acme").unwrap();
    let start = OffsetDateTime::now_utc();
    for i in 0..10 {
        let h = ledger::fixtures::hold(&format!("h{i}"), "alice", "bob", 50, Some(10));
        store.create_transfer(&tenant, h, start).await.unwrap();
    }
    let deadline = start + Duration::seconds(10);
    // Posts on a clock either side of the deadline, racing sweeps and reads past it.
    let posts = (0..10).map(|i| {
        let at = deadline + Duration::milliseconds(if i % 2 == 0 { -1 } else { 1 });
        store.create_transfer(&tenant, ledger::fixtures::post(&format!("p{i}"), &format!("h{i}"), None), at)
    });
    let late = deadline + Duration::seconds(1);
    let sweeps = (0..3).map(|_| api.stack.sweep(late));
    let ids: Vec<_> = (0..10).map(|i| ledger::TransferId::parse(format!("h{i}")).unwrap()).collect();
    let reads = ids.iter().map(|id| store.get_transfer(&tenant, id, late));
    let (posted, swept, read) = tokio::join!(
        futures::future::join_all(posts),
        futures::future::join_all(sweeps),
        futures::future::join_all(reads)
    );
    assert!(swept.iter().all(Result::is_ok) && read.iter().all(Result::is_ok));
    let mut committed = 0;
    for (i, outcome) in posted.into_iter().enumerate() {
        let post = outcome.unwrap().value().clone();
        let hold = store
            .get_transfer(&tenant, &ledger::TransferId::parse(format!("h{i}")).unwrap(), late)
            .await
            .unwrap();
        // Each hold resolved exactly once: posted by its post (only on the early clock), or expired
        // and its post refused.
        match (&post.status, &hold.status) {
            (ledger::TransferStatus::Committed, ledger::TransferStatus::Posted { .. }) => {
                assert_eq!(i % 2, 0, "p{i} posted after the deadline");
                committed += 1;
            }
            (ledger::TransferStatus::Rejected { reason }, ledger::TransferStatus::Expired) => {
                assert_eq!(reason.code(), "pending_expired", "p{i}");
            }
            other => panic!("h{i}: {other:?}"),
        }
    }
    let posted = 50 * committed as i64;
    assert_eq!(totals(&api, "alice").await, (1000 - posted, 1000 - posted, 0, 0));
    assert_eq!(totals(&api, "bob").await, (posted, posted, 0, 0));
}

pub async fn holds_settle_in_batches_in_order_and_through_respond_async<B: Backend>(api: Api<B>) {
    let api = funded(api).await;
    let batch = json!({"id": "b1", "transfers": [
        hold("bh", "alice", "bob", 400, Some(3600)),
        post("bp", "bh", Some(100)),
        void("bv", "bh"),
        hold("bh2", "alice", "bob", 700, None),
        hold("bh3", "alice", "bob", 600, None),
    ]});
    assert_eq!(api.post("/v1/transfer-batches", "acme", batch).await.status, StatusCode::ACCEPTED);
    api.stack.settle_queued().await.unwrap();
    let status = api.get("/v1/transfer-batches/b1", "acme").await.body;
    assert_eq!((status["committed"].as_i64(), status["rejected"].as_i64()), (Some(3), Some(2)), "{status}");
    assert_eq!(status["rejected_by_reason"], json!({"pending_already_posted": 1, "insufficient_funds": 1}));
    // 100 posted; then 700 held leaves 200 available, so the last hold is refused.
    assert_eq!(totals(&api, "alice").await, (900, 200, 700, 0));
    assert_eq!(api.get("/v1/transfers/bh3", "acme").await.body["reason"]["code"], "insufficient_funds");

    let queued = api.post_async("/v1/transfers", "acme", &void("av", "bh2")).await;
    assert_eq!(queued.status, StatusCode::ACCEPTED);
    api.stack.settle_queued().await.unwrap();
    assert_eq!(api.get("/v1/transfers/bh2", "acme").await.body["status"], "voided");
    assert_eq!(totals(&api, "alice").await, (900, 900, 0, 0));
}

pub async fn every_misuse_is_a_typed_4xx_and_writes_nothing<B: Backend>(api: Api<B>) {
    let api = funded(api).await;
    let bad_fields = [
        (json!({"id": "x1", "post_pending_id": "fund", "debit_account_id": "alice"}), "debit_account_id"),
        (json!({"id": "x2", "post_pending_id": "fund", "void_pending_id": "fund"}), "void_pending_id"),
        (json!({"id": "x3", "void_pending_id": "fund", "amount": 5}), "amount"),
        (
            json!({"id": "x4", "debit_account_id": "alice", "credit_account_id": "bob", "amount": 5, "currency": "EUR", "timeout_seconds": 5}),
            "timeout_seconds",
        ),
        (
            json!({"id": "x5", "debit_account_id": "alice", "credit_account_id": "bob", "amount": 5, "currency": "EUR", "pending": true, "timeout_seconds": 0}),
            "timeout_seconds",
        ),
        (json!({"id": "x6", "post_pending_id": "fund", "amount": 0}), "amount"),
    ];
    for (body, field) in bad_fields {
        api.post("/v1/transfers", "acme", body.clone()).await.assert_invalid_field(field, &body);
        let id = body["id"].as_str().unwrap();
        assert_eq!(api.get(&format!("/v1/transfers/{id}"), "acme").await.status, StatusCode::NOT_FOUND);
    }
    let refused = [
        (post("y1", "ghost", None), "pending_not_found"),
        (post("y2", "fund", None), "not_pending"),
        (void("y3", "fund"), "not_pending"),
    ];
    for (body, code) in refused {
        let reply = api.post("/v1/transfers", "acme", body).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::UNPROCESSABLE_ENTITY, code));
        assert!(reply.body["pending_id"].is_string());
    }
    // A rejected hold can never be posted.
    let big = api.post("/v1/transfers", "acme", hold("big", "alice", "bob", 5_000, None)).await;
    assert_eq!(big.code(), "insufficient_funds");
    assert_eq!(api.post("/v1/transfers", "acme", post("y4", "big", None)).await.code(), "not_pending");
    // A batch naming an invalid field is refused whole.
    let batch = json!({"id": "bx", "transfers": [t("ok", "alice", "bob", 1), json!({"id": "z", "void_pending_id": "h", "currency": "EUR"})]});
    let reply = api.post("/v1/transfer-batches", "acme", batch).await;
    assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, "invalid_field"));
    assert_eq!(api.get("/v1/transfers/ok", "acme").await.status, StatusCode::NOT_FOUND);
    assert_eq!(totals(&api, "alice").await, (1000, 1000, 0, 0));
    assert_eq!(api.all_entries("acme", "alice").await.len(), 1);
}
