//! Governed accounts end to end through the router (and the worker, and a hold's expiry): freezes
//! and closes refuse money on every route, bounds hold with holds counted, changes happen only on
//! the version named, a transfer can be conditioned on the accounts' tags, and a dry run decides
//! without writing. Then changes racing transfers: each transfer is ordered before or after each
//! change, never across it.

use std::sync::Arc;

use crate::client::transfer_body as t;
use crate::{Api, Backend, Reply};
use http::StatusCode;
use serde_json::{Value, json};

fn body(transfer: ledger::NewTransfer) -> Value {
    serde_json::to_value(transfer).unwrap()
}

/// `PATCH /v1/accounts/{id}` with `If-Match: {tag}` (none if `tag` is `None`).
async fn patch<B: Backend>(api: &Api<B>, account: &str, tag: Option<&str>, patch: Value) -> Reply {
    let mut request = http::Request::patch(format!("/v1/accounts/{account}"))
        .header("authorization", format!("Bearer {}", api.token("acme")))
        .header("content-type", "application/merge-patch+json");
    if let Some(tag) = tag {
        request = request.header("if-match", tag);
    }
    api.send_request(request.body(axum::body::Body::from(patch.to_string())).unwrap()).await
}

/// `POST /v1/transfers` with `If-Match: {tags}`.
async fn transfer_if<B: Backend>(api: &Api<B>, transfer: Value, tags: &str) -> Reply {
    let request = http::Request::post("/v1/transfers")
        .header("authorization", format!("Bearer {}", api.token("acme")))
        .header("content-type", "application/json")
        .header("if-match", tags);
    api.send_request(request.body(axum::body::Body::from(transfer.to_string())).unwrap()).await
}

fn tag(reply: &Reply) -> String {
    reply.headers.get(http::header::ETAG).and_then(|v| v.to_str().ok()).expect("an ETag").to_owned()
}

async fn status<B: Backend>(api: &Api<B>, transfer: &str) -> (String, String) {
    let t = api.get(&format!("/v1/transfers/{transfer}"), "acme").await.body;
    let code = t["reason"]["code"].as_str().unwrap_or("").to_owned();
    (t["status"].as_str().unwrap_or("").to_owned(), code)
}

async fn event_count<B: Backend>(api: &Api<B>, kind: &str) -> usize {
    let listed = api.get(&format!("/v1/events?type={kind}&limit=100"), "acme").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    listed.body["data"].as_array().map_or(0, Vec::len)
}

async fn funded<B: Backend>(api: &Api<B>) {
    api.open_account("acme", "bank", true).await;
    api.open_account("acme", "alice", false).await;
    api.open_account("acme", "bob", false).await;
    let fund = api.post("/v1/transfers", "acme", t("fund", "bank", "alice", 1_000)).await;
    assert_eq!(fund.status, StatusCode::CREATED, "{}", fund.body);
}

pub async fn a_frozen_account_moves_no_money_on_any_route_and_its_holds_still_release<B: Backend>(
    api: Api<B>,
) {
    funded(&api).await;
    let hold = |id, amount, timeout| body(ledger::fixtures::hold(id, "alice", "bob", amount, timeout));
    for (id, timeout) in [("h-post", None), ("h-void", None), ("h-expire", Some(1))] {
        assert_eq!(
            api.post("/v1/transfers", "acme", hold(id, 100, timeout)).await.status,
            StatusCode::CREATED
        );
    }
    assert_eq!(
        api.post("/v1/transfers", "acme", t("paid", "alice", "bob", 50)).await.status,
        StatusCode::CREATED
    );
    let frozen = api.post("/v1/accounts/alice/freeze", "acme", json!({"mode": "debits"})).await;
    assert_eq!((frozen.status, frozen.body["status"].as_str()), (StatusCode::OK, Some("debits_frozen")));
    // Freezing again the same way changes nothing: same tag, one event.
    let again = api.post("/v1/accounts/alice/freeze", "acme", json!({"mode": "debits"})).await;
    assert_eq!((again.status, tag(&again)), (StatusCode::OK, tag(&frozen)));
    assert_eq!(event_count(&api, "account.frozen").await, 1);

    // Out of alice: refused on every route and kind; into alice: credits still land.
    let out = api.post("/v1/transfers", "acme", t("out", "alice", "bob", 1)).await;
    assert_eq!(
        (out.status, out.code(), out.body["account_id"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "account_frozen", Some("alice"))
    );
    assert_eq!(
        api.post("/v1/transfers", "acme", t("in", "bank", "alice", 1)).await.status,
        StatusCode::CREATED
    );
    assert_eq!(api.post("/v1/transfers", "acme", hold("h-new", 1, None)).await.code(), "account_frozen");
    let posted = api.post("/v1/transfers", "acme", body(ledger::fixtures::post("p", "h-post", None))).await;
    assert_eq!(posted.code(), "account_frozen", "posting a hold moves its money");
    let voided = api.post("/v1/transfers", "acme", body(ledger::fixtures::void("v", "h-void"))).await;
    assert_eq!(voided.status, StatusCode::CREATED, "a void moves no money: {}", voided.body);
    // A reversal of alice's payment moves money back INTO alice: it lands.
    let back =
        api.post("/v1/transfers", "acme", body(ledger::fixtures::reversal("back", "paid", Some(10)))).await;
    assert_eq!(back.status, StatusCode::CREATED, "{}", back.body);
    let chain = json!({"transfers": [
        {"linked": true, "id": "c-1", "debit_account_id": "bank", "credit_account_id": "alice", "amount": 5, "currency": "EUR"},
        t("c-2", "alice", "bob", 5),
    ]});
    let chained = api.post("/v1/linked-transfers", "acme", chain).await;
    assert_eq!((chained.code(), chained.body["transfer_id"].as_str()), ("account_frozen", Some("c-2")));
    assert_eq!(
        api.post_async("/v1/transfers", "acme", &t("queued", "alice", "bob", 1)).await.status,
        StatusCode::ACCEPTED
    );
    let batch =
        json!({"id": "batch", "transfers": [t("b-in", "bank", "alice", 2), t("b-out", "alice", "bob", 2)]});
    assert_eq!(api.post("/v1/transfer-batches", "acme", batch).await.status, StatusCode::ACCEPTED);
    api.stack.settle_queued().await.unwrap();
    for (id, expected) in [
        ("queued", ("rejected", "account_frozen")),
        ("b-in", ("committed", "")),
        ("b-out", ("rejected", "account_frozen")),
    ] {
        let (status, code) = status(&api, id).await;
        assert_eq!((status.as_str(), code.as_str()), expected, "{id}");
    }

    // Frozen whole: nothing enters either, and a hold's expiry still releases what it reserved.
    let whole = api.post("/v1/accounts/alice/freeze", "acme", json!({"mode": "all"})).await;
    assert_eq!(whole.body["status"], "frozen");
    assert_eq!(
        api.post("/v1/transfers", "acme", t("in-2", "bank", "alice", 1)).await.code(),
        "account_frozen"
    );
    let back =
        api.post("/v1/transfers", "acme", body(ledger::fixtures::reversal("back-2", "paid", Some(10)))).await;
    assert_eq!(back.code(), "account_frozen");
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(status(&api, "h-expire").await.0, "expired");
    let alice = api.get("/v1/accounts/alice", "acme").await.body;
    // 1,000 - 50 paid + 1 in + 10 back + 2 from the batch; only h-post still reserves.
    assert_eq!((alice["balance"].as_i64(), alice["debits_pending"].as_i64()), (Some(963), Some(100)));

    // Unfrozen, it moves money again.
    let open = api.post("/v1/accounts/alice/unfreeze", "acme", json!({})).await;
    assert_eq!(open.body["status"], "open");
    assert_eq!(
        api.post("/v1/transfers", "acme", t("out-2", "alice", "bob", 1)).await.status,
        StatusCode::CREATED
    );
    let posted = api.post("/v1/transfers", "acme", body(ledger::fixtures::post("p-2", "h-post", None))).await;
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.body);
    for (kind, n) in [("account.frozen", 2), ("account.unfrozen", 1)] {
        assert_eq!(event_count(&api, kind).await, n, "{kind}");
    }
}

pub async fn closing_needs_an_empty_account_is_final_and_refuses_every_later_transfer<B: Backend>(
    api: Api<B>,
) {
    funded(&api).await;
    let refused = api.post("/v1/accounts/alice/close", "acme", json!({})).await;
    assert_eq!((refused.status, refused.code()), (StatusCode::UNPROCESSABLE_ENTITY, "account_not_empty"));
    // A hold from bob into alice, then alice emptied: her pending credit still keeps her open.
    let held = body(ledger::fixtures::hold("h", "bob", "alice", 5, None));
    assert_eq!(
        api.post("/v1/transfers", "acme", t("fund-bob", "bank", "bob", 5)).await.status,
        StatusCode::CREATED
    );
    assert_eq!(api.post("/v1/transfers", "acme", held).await.status, StatusCode::CREATED);
    assert_eq!(
        api.post("/v1/transfers", "acme", t("empty", "alice", "bank", 1_000)).await.status,
        StatusCode::CREATED
    );
    let pending = api.post("/v1/accounts/alice/close", "acme", json!({})).await;
    assert_eq!(pending.code(), "account_not_empty", "a pending credit keeps it open");
    assert_eq!(
        api.post("/v1/transfers", "acme", body(ledger::fixtures::void("v", "h"))).await.status,
        StatusCode::CREATED
    );
    let closed = api.post("/v1/accounts/alice/close", "acme", json!({})).await;
    assert_eq!(
        (closed.status, closed.body["status"].as_str()),
        (StatusCode::OK, Some("closed")),
        "{}",
        closed.body
    );

    // Final: every later transfer naming it is refused, on every route; it never changes again.
    assert_eq!(api.post("/v1/transfers", "acme", t("in", "bank", "alice", 1)).await.code(), "account_closed");
    assert_eq!(
        api.post("/v1/transfers", "acme", t("out", "alice", "bank", 1)).await.code(),
        "account_closed"
    );
    let batch = json!({"id": "late", "transfers": [t("late-1", "bank", "alice", 1)]});
    assert_eq!(api.post("/v1/transfer-batches", "acme", batch).await.status, StatusCode::ACCEPTED);
    api.stack.settle_queued().await.unwrap();
    assert_eq!(status(&api, "late-1").await, ("rejected".to_owned(), "account_closed".to_owned()));
    // Closing again (a retry) answers as the first close did; any other change is refused.
    let again = api.post("/v1/accounts/alice/close", "acme", json!({})).await;
    assert_eq!((again.status, tag(&again)), (StatusCode::OK, tag(&closed)));
    for path in ["/v1/accounts/alice/freeze", "/v1/accounts/alice/unfreeze"] {
        let reply = api.post(path, "acme", json!({"mode": "all"})).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "account_closed"),
            "{path}"
        );
    }
    assert_eq!(
        patch(&api, "alice", Some("*"), json!({"metadata": {"k": "v"}})).await.code(),
        "account_closed"
    );
    // A retry of its creation replays it as it stands, closed.
    let replay = api.post("/v1/accounts", "acme", json!({"id": "alice", "currency": "EUR"})).await;
    assert_eq!((replay.status, replay.body["status"].as_str()), (StatusCode::OK, Some("closed")));
    assert_eq!(event_count(&api, "account.closed").await, 1);
    assert_eq!(api.balance("acme", "alice").await, 0);
}

pub async fn bounds_hold_with_holds_counted_and_change_only_on_the_version_named<B: Backend>(api: Api<B>) {
    funded(&api).await;
    let both = json!({"id": "x", "currency": "EUR", "allow_overdraft": true, "overdraft_limit": 1});
    api.post("/v1/accounts", "acme", both)
        .await
        .assert_invalid_field("overdraft_limit", "with allow_overdraft");
    let line = json!({"id": "line", "currency": "EUR", "overdraft_limit": 100, "max_balance": 500});
    let opened = api.post("/v1/accounts", "acme", line).await;
    assert_eq!(
        (opened.status, opened.body["overdraft_limit"].as_i64(), opened.body["max_balance"].as_i64()),
        (StatusCode::CREATED, Some(100), Some(500))
    );

    // The credit line: down to -100 available, a hold counted.
    let hold = body(ledger::fixtures::hold("h", "line", "bob", 60, None));
    assert_eq!(api.post("/v1/transfers", "acme", hold).await.status, StatusCode::CREATED);
    let over = api.post("/v1/transfers", "acme", t("over", "line", "bob", 41)).await;
    assert_eq!((over.code(), over.body["account_id"].as_str()), ("insufficient_funds", Some("line")));
    assert_eq!(
        api.post("/v1/transfers", "acme", t("to-limit", "line", "bob", 40)).await.status,
        StatusCode::CREATED
    );
    // The maximum: the balance (-40) with pending credits up to 500, on every route.
    let incoming = body(ledger::fixtures::hold("in", "bank", "line", 500, None));
    assert_eq!(api.post("/v1/transfers", "acme", incoming).await.status, StatusCode::CREATED);
    assert_eq!(
        api.post("/v1/transfers", "acme", t("above", "bank", "line", 41)).await.code(),
        "max_balance_exceeded"
    );
    let batch = json!({"id": "b", "transfers": [t("b-1", "bank", "line", 40), t("b-2", "bank", "line", 1)]});
    assert_eq!(api.post("/v1/transfer-batches", "acme", batch).await.status, StatusCode::ACCEPTED);
    api.stack.settle_queued().await.unwrap();
    assert_eq!(status(&api, "b-1").await.0, "committed");
    assert_eq!(status(&api, "b-2").await, ("rejected".to_owned(), "max_balance_exceeded".to_owned()));

    // Changes name the version: none is 428, a stale one 412, the current one changes it.
    let read = api.get("/v1/accounts/line", "acme").await;
    let current = tag(&read);
    let missing = patch(&api, "line", None, json!({"max_balance": 1_000})).await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::PRECONDITION_REQUIRED, "precondition_required")
    );
    assert_eq!(
        api.post("/v1/transfers", "acme", t("moves", "bank", "bob", 1)).await.status,
        StatusCode::CREATED
    );
    let other = patch(&api, "line", Some("\"bob.3.0\""), json!({"max_balance": 1_000})).await;
    assert_eq!(
        (other.status, other.code()),
        (StatusCode::PRECONDITION_FAILED, "precondition_failed"),
        "another account's tag"
    );
    // A bound the balances do not admit is refused, with the rule it would break.
    let low = patch(&api, "line", Some(&current), json!({"max_balance": 499})).await;
    assert_eq!((low.status, low.code()), (StatusCode::UNPROCESSABLE_ENTITY, "max_balance_exceeded"));
    let changed = patch(
        &api,
        "line",
        Some(&current),
        json!({"max_balance": null, "overdraft_limit": 200, "metadata": {"tier": "gold"}}),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(
        (
            changed.body["max_balance"].as_i64(),
            changed.body["overdraft_limit"].as_i64(),
            changed.body["metadata"]["tier"].as_str()
        ),
        (None, Some(200), Some("gold"))
    );
    assert_ne!(tag(&changed), current);
    let stale = patch(&api, "line", Some(&current), json!({"metadata": {"tier": null}})).await;
    assert_eq!((stale.status, stale.code()), (StatusCode::PRECONDITION_FAILED, "precondition_failed"));
    // The new bounds hold at once: the line reaches -200, the cap is gone.
    assert_eq!(
        api.post("/v1/transfers", "acme", t("deeper", "line", "bob", 100)).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        api.post("/v1/transfers", "acme", t("huge", "bank", "line", 10_000)).await.status,
        StatusCode::CREATED
    );
    // The old tag revalidates as changed; the new one as current until the next entry.
    let revalidate = |tag: String| {
        http::Request::get("/v1/accounts/line")
            .header("authorization", format!("Bearer {}", api.token("acme")))
            .header("if-none-match", tag)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    assert_eq!(api.send_request(revalidate(current)).await.status, StatusCode::OK);
    let now = tag(&api.get("/v1/accounts/line", "acme").await);
    assert_eq!(api.send_request(revalidate(now)).await.status, StatusCode::NOT_MODIFIED);
    assert_eq!(event_count(&api, "account.updated").await, 1);
}

pub async fn a_transfer_under_if_match_commits_only_on_the_versions_read_and_a_dry_run_writes_nothing<
    B: Backend,
>(
    api: Api<B>,
) {
    funded(&api).await;
    let alice = tag(&api.get("/v1/accounts/alice", "acme").await);
    let bob = tag(&api.get("/v1/accounts/bob", "acme").await);
    let both = format!("{alice}, {bob}");
    let first = transfer_if(&api, t("t1", "alice", "bob", 10), &both).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    // The same tags again are stale: 412, and the id is not spent.
    let second = transfer_if(&api, t("t2", "alice", "bob", 10), &both).await;
    assert_eq!((second.status, second.code()), (StatusCode::PRECONDITION_FAILED, "precondition_failed"));
    assert_eq!(api.get("/v1/transfers/t2", "acme").await.status, StatusCode::NOT_FOUND);
    // A retry of the first replays it, whatever the versions now.
    let replay = transfer_if(&api, t("t1", "alice", "bob", 10), &both).await;
    assert_eq!((replay.status, replay.replayed()), (StatusCode::OK, true));
    // A tag of an account the transfer does not move fails it; garbage too; `*` holds.
    let carol_tag = "\"carol.0.0\"";
    assert_eq!(
        transfer_if(&api, t("t3", "alice", "bob", 10), carol_tag).await.status,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        transfer_if(&api, t("t3", "alice", "bob", 10), "\"zzz\"").await.status,
        StatusCode::PRECONDITION_FAILED
    );
    let fresh = tag(&api.get("/v1/accounts/alice", "acme").await);
    assert_eq!(transfer_if(&api, t("t2", "alice", "bob", 10), &fresh).await.status, StatusCode::CREATED);
    assert_eq!(transfer_if(&api, t("t4", "alice", "bob", 10), "*").await.status, StatusCode::CREATED);
    let queued = http::Request::post("/v1/transfers")
        .header("authorization", format!("Bearer {}", api.token("acme")))
        .header("prefer", "respond-async")
        .header("if-match", fresh)
        .body(axum::body::Body::from(t("t5", "alice", "bob", 1).to_string()))
        .unwrap();
    api.send_request(queued).await.assert_invalid_field("If-Match", "respond-async");

    // Dry runs: a single transfer, a chain and a batch decided as now, nothing written.
    let events = api.get("/v1/events?limit=100", "acme").await.body["data"].as_array().unwrap().len();
    let alice_before = api.get("/v1/accounts/alice", "acme").await.body;
    let single = api.post("/v1/transfers?dry_run=true", "acme", t("d1", "alice", "bob", 100)).await;
    assert_eq!(single.status, StatusCode::OK, "{}", single.body);
    assert_eq!(
        (single.body["dry_run"].as_bool(), single.body["transfers"][0]["status"].as_str()),
        (Some(true), Some("committed"))
    );
    let balances: Vec<(String, i64)> = single.body["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["id"].as_str().unwrap().to_owned(), a["balance"].as_i64().unwrap()))
        .collect();
    assert_eq!(balances, [("alice".to_owned(), 870), ("bob".to_owned(), 130)]);
    let refused = api.post("/v1/transfers?dry_run=true", "acme", t("d2", "alice", "bob", 10_000)).await;
    let code = refused.body["transfers"][0]["reason"]["code"].as_str();
    assert_eq!((refused.status, code), (StatusCode::OK, Some("insufficient_funds")));
    let chain = json!({"transfers": [
        {"linked": true, "id": "d3", "debit_account_id": "alice", "credit_account_id": "bob", "amount": 900, "currency": "EUR"},
        t("d4", "alice", "bob", 100),
    ]});
    let chained = api.post("/v1/linked-transfers?dry_run=true", "acme", chain).await;
    let statuses: Vec<&str> =
        chained.body["transfers"].as_array().unwrap().iter().map(|t| t["status"].as_str().unwrap()).collect();
    assert_eq!(
        (chained.status, statuses),
        (StatusCode::OK, vec!["rejected", "rejected"]),
        "the chain fails whole"
    );
    let batch =
        json!({"id": "db", "transfers": [t("d5", "bank", "alice", 500), t("d6", "alice", "bob", 1_300)]});
    let batched = api.post("/v1/transfer-batches?dry_run=true", "acme", batch).await;
    let statuses: Vec<&str> =
        batched.body["transfers"].as_array().unwrap().iter().map(|t| t["status"].as_str().unwrap()).collect();
    assert_eq!(
        (batched.status, statuses),
        (StatusCode::OK, vec!["committed", "committed"]),
        "fund, then spend, in order"
    );
    assert_eq!(
        api.post("/v1/transfers?dry_run=maybe", "acme", t("d7", "alice", "bob", 1)).await.code(),
        "invalid_field"
    );
    // Nothing was written: no id spent, no event, no balance moved, no batch.
    for id in ["d1", "d2", "d3", "d4", "d5", "d6"] {
        assert_eq!(
            api.get(&format!("/v1/transfers/{id}"), "acme").await.status,
            StatusCode::NOT_FOUND,
            "{id}"
        );
    }
    assert_eq!(api.get("/v1/transfer-batches/db", "acme").await.status, StatusCode::NOT_FOUND);
    assert_eq!(api.get("/v1/events?limit=100", "acme").await.body["data"].as_array().unwrap().len(), events);
    assert_eq!(api.get("/v1/accounts/alice", "acme").await.body, alice_before);
    // The ids are still free: the real transfer commits as the dry run said.
    assert_eq!(
        api.post("/v1/transfers", "acme", t("d1", "alice", "bob", 100)).await.status,
        StatusCode::CREATED
    );
    assert_eq!(api.balance("acme", "alice").await, 870);
}

/// Concurrent transfers out of and into an account while it is frozen and its maximum lowered:
/// each change's answer names the version it was written at, and no entry after that version
/// breaks it. Every transfer is decided once.
pub async fn changes_racing_transfers_are_ordered_one_way_or_the_other<B: Backend>(api: Api<B>) {
    funded(&api).await;
    api.open_account("acme", "carol", false).await;
    let api = Arc::new(api);
    let mut tasks = Vec::new();
    for i in 0..24 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let (debit, credit) = if i % 2 == 0 { ("alice", "bob") } else { ("bank", "carol") };
            let (reply, _) =
                api.post_definite("/v1/transfers", "acme", t(&format!("r{i}"), debit, credit, 10)).await;
            reply.status
        }));
    }
    let freeze = {
        let api = api.clone();
        tokio::spawn(
            async move { api.post("/v1/accounts/alice/freeze", "acme", json!({"mode": "debits"})).await },
        )
    };
    let cap = {
        let api = api.clone();
        tokio::spawn(async move {
            loop {
                let read = api.get("/v1/accounts/carol", "acme").await;
                let reply = patch(&api, "carol", Some(&tag(&read)), json!({"max_balance": 60})).await;
                if reply.status != StatusCode::PRECONDITION_FAILED {
                    return reply;
                }
            }
        })
    };
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let frozen = freeze.await.unwrap();
    let capped = cap.await.unwrap();
    assert_eq!(frozen.status, StatusCode::OK, "{}", frozen.body);
    assert!(
        statuses.iter().all(|s| [StatusCode::CREATED, StatusCode::UNPROCESSABLE_ENTITY].contains(s)),
        "{statuses:?}"
    );
    // Alice: no debit after the freeze's version (its entry count, in its tag).
    let entries_at =
        |reply: &Reply| -> u64 { tag(reply).trim_matches('"').split('.').nth(1).unwrap().parse().unwrap() };
    let at_freeze = entries_at(&frozen);
    for entry in api.all_entries("acme", "alice").await {
        if entry["sequence"].as_u64().unwrap() > at_freeze {
            assert_ne!(entry["direction"], "debit", "a debit after the freeze: {entry}");
        }
    }
    // Carol: once capped (if the cap was admitted), no entry takes her above it.
    if capped.status == StatusCode::OK {
        let at_cap = entries_at(&capped);
        for entry in api.all_entries("acme", "carol").await {
            if entry["sequence"].as_u64().unwrap() > at_cap {
                let after =
                    entry["balance_after"].as_i64().unwrap() + entry["credits_pending"].as_i64().unwrap_or(0);
                assert!(after <= 60, "above the cap after it was set: {entry}");
            }
        }
    } else {
        assert_eq!(capped.code(), "max_balance_exceeded", "{}", capped.body);
    }
    // Money is conserved, and each transfer decided once.
    let total: i64 = [
        api.balance("acme", "bank").await,
        api.balance("acme", "alice").await,
        api.balance("acme", "bob").await,
        api.balance("acme", "carol").await,
    ]
    .iter()
    .sum();
    assert_eq!(total, 0);
    let committed = statuses.iter().filter(|s| **s == StatusCode::CREATED).count() as i64;
    assert_eq!(api.balance("acme", "bob").await + api.balance("acme", "carol").await, committed * 10);
}

/// `PATCH /v1/transfers/{id}` with `If-Match`.
async fn patch_transfer<B: Backend>(api: &Api<B>, id: &str, tag: Option<&str>, metadata: Value) -> Reply {
    let mut request = http::Request::patch(format!("/v1/transfers/{id}"))
        .header("authorization", format!("Bearer {}", api.token("acme")))
        .header("content-type", "application/merge-patch+json");
    if let Some(tag) = tag {
        request = request.header("if-match", tag);
    }
    let body = json!({ "metadata": metadata }).to_string();
    api.send_request(request.body(axum::body::Body::from(body)).unwrap()).await
}

pub async fn a_transfers_metadata_changes_only_on_the_representation_read_and_search_finds_it<B: Backend>(
    api: Api<B>,
) {
    funded(&api).await;
    let mut pay = t("pay", "alice", "bob", 10);
    pay["metadata"] = json!({"order": "1"});
    assert_eq!(api.post("/v1/transfers", "acme", pay.clone()).await.status, StatusCode::CREATED);
    let read = tag(&api.get("/v1/transfers/pay", "acme").await);
    let missing = patch_transfer(&api, "pay", None, json!({"note": "x"})).await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::PRECONDITION_REQUIRED, "precondition_required")
    );
    let changed = patch_transfer(&api, "pay", Some(&read), json!({"note": "x"})).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(changed.body["metadata"], json!({"note": "x", "order": "1"}));
    // Its new tag is what a GET answers; the old one is stale.
    assert_eq!(tag(&changed), tag(&api.get("/v1/transfers/pay", "acme").await));
    let stale = patch_transfer(&api, "pay", Some(&read), json!({"note": "y"})).await;
    assert_eq!((stale.status, stale.code()), (StatusCode::PRECONDITION_FAILED, "precondition_failed"));
    let removed = patch_transfer(&api, "pay", Some(&tag(&changed)), json!({"order": null})).await;
    assert_eq!(removed.body["metadata"], json!({"note": "x"}));
    // Search finds it by what it says now, and not by what it said.
    let found = |query: &str| {
        let api = &api;
        let query = query.to_owned();
        async move {
            let reply = api.get(&format!("/v1/transfers?{query}"), "acme").await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            reply.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(found("metadata[note]=x").await, ["pay"]);
    assert!(found("metadata[order]=1").await.is_empty());
    // The original request sent again still replays it, as it stands.
    let replay = api.post("/v1/transfers", "acme", pay).await;
    assert_eq!(
        (replay.status, replay.replayed(), &replay.body["metadata"]),
        (StatusCode::OK, true, &json!({"note": "x"}))
    );
    // A hold resolved after it was read: the read's tag is stale.
    let hold = body(ledger::fixtures::hold("h", "alice", "bob", 5, None));
    assert_eq!(api.post("/v1/transfers", "acme", hold).await.status, StatusCode::CREATED);
    let before = tag(&api.get("/v1/transfers/h", "acme").await);
    assert_eq!(
        api.post("/v1/transfers", "acme", body(ledger::fixtures::void("v", "h"))).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        patch_transfer(&api, "h", Some(&before), json!({"k": "v"})).await.status,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(patch_transfer(&api, "h", Some("*"), json!({"k": "v"})).await.body["status"], "voided");
    // Queued, it has no record to change yet.
    assert_eq!(
        api.post_async("/v1/transfers", "acme", &t("later", "alice", "bob", 1)).await.status,
        StatusCode::ACCEPTED
    );
    let queued = patch_transfer(&api, "later", Some("*"), json!({"k": "v"})).await;
    assert_eq!((queued.status, queued.code()), (StatusCode::CONFLICT, "transfer_in_flight"));
    let bad = patch_transfer(&api, "pay", Some("*"), json!({"": "v"})).await;
    bad.assert_invalid_field("metadata", "");
    assert_eq!(event_count(&api, "transfer.updated").await, 3);
}

/// A hot account (`ledger::shard`) through the API: typed refusals of what it cannot be, payments
/// in and out on the synchronous and batch routes from concurrent clients, read as one account
/// (its totals, `shards`, a gapless history, a statement, a balance as of now), a transfer under
/// its `If-Match` tag, and un-marked under version control.
pub async fn a_hot_account_reads_as_one_and_obeys_its_rules_on_every_route<B: Backend>(api: Api<B>) {
    funded(&api).await;
    for (shards, field) in [(json!(0), "shards"), (json!(65), "shards")] {
        let refused =
            api.post("/v1/accounts", "acme", json!({"id": "h", "currency": "EUR", "shards": shards})).await;
        refused.assert_invalid_field(field, "1 to 64");
    }
    let capped = json!({"id": "h", "currency": "EUR", "shards": 4, "max_balance": 10});
    api.post("/v1/accounts", "acme", capped).await.assert_invalid_field("shards", "max_balance");
    let opened =
        api.post("/v1/accounts", "acme", json!({"id": "fees", "currency": "EUR", "shards": 8})).await;
    assert_eq!((opened.status, opened.body["shards"].as_i64()), (StatusCode::CREATED, Some(8)));

    // Eight clients pay 10 into it and take 15 out, at once, 5 times each: every payout is
    // committed or refused for want of funds of the whole account.
    let api = Arc::new(api);
    let runs = (0..8).map(|c| {
        let api = api.clone();
        async move {
            let mut out = 0;
            for n in 0..5 {
                let paid =
                    api.post("/v1/transfers", "acme", t(&format!("in-{c}-{n}"), "bank", "fees", 10)).await;
                assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.body);
                let payout =
                    api.post("/v1/transfers", "acme", t(&format!("out-{c}-{n}"), "fees", "bob", 15)).await;
                match payout.status {
                    StatusCode::CREATED => out += 15,
                    _ => assert_eq!(payout.code(), "insufficient_funds", "{}", payout.body),
                }
            }
            out
        }
    });
    let out: i64 = futures::future::join_all(runs).await.into_iter().sum();
    let batch =
        json!({"id": "hot-batch", "transfers": [t("hb-1", "bank", "fees", 7), t("hb-2", "fees", "bob", 3)]});
    assert_eq!(api.post("/v1/transfer-batches", "acme", batch).await.status, StatusCode::ACCEPTED);
    api.stack.settle_queued().await.unwrap();
    assert_eq!(status(&api, "hb-2").await.0, "committed");
    let expected = 400 + 7 - out - 3;
    let read = api.get("/v1/accounts/fees", "acme").await;
    assert_eq!((read.body["balance"].as_i64(), read.body["shards"].as_i64()), (Some(expected), Some(8)));
    assert!(expected >= 0);

    // One account's history: newest first, sequences gapless down to 1, the newest at the balance.
    let entries = api.all_entries("acme", "fees").await;
    let count = 40 + 2 + (out / 15) as usize;
    assert_eq!(entries.len(), count);
    let sequences: Vec<u64> = entries.iter().map(|e| e["sequence"].as_u64().unwrap()).collect();
    assert_eq!(sequences, (1..=count as u64).rev().collect::<Vec<_>>());
    assert_eq!(entries[0]["balance_after"].as_i64(), Some(expected));
    assert!(entries.iter().all(|e| e.get("shard").is_none()), "shards are not shown");
    let at = time::OffsetDateTime::now_utc();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let at = at.format(&time::format_description::well_known::Rfc3339).unwrap();
    let now = api.get(&format!("/v1/accounts/fees/balance?at={at}"), "acme").await;
    assert_eq!(now.body["balance"].as_i64(), Some(expected), "{}", now.body);
    let statement = api.get(&format!("/v1/accounts/fees/statement?to={at}&limit=100"), "acme").await;
    assert_eq!(statement.body["closing_balance"]["balance"].as_i64(), Some(expected), "{}", statement.body);
    assert_eq!(statement.body["entries"].as_array().map(Vec::len), Some(count));

    // Under its tag: the whole account's version, moved by a payment on any shard.
    let tagged = tag(&read);
    let paid = transfer_if(&api, t("if-1", "bank", "fees", 1), &tagged).await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.body);
    let stale = transfer_if(&api, t("if-2", "bank", "fees", 1), &tagged).await;
    assert_eq!((stale.status, stale.code()), (StatusCode::PRECONDITION_FAILED, "precondition_failed"));
    // Un-marked under version control: new writes to one shard, all of it still spent and read.
    let current = tag(&api.get("/v1/accounts/fees", "acme").await);
    let unmarked = patch(&api, "fees", Some(&current), json!({"shards": 1})).await;
    assert_eq!((unmarked.status, unmarked.body.get("shards")), (StatusCode::OK, None), "{}", unmarked.body);
    let drain = api.post("/v1/transfers", "acme", t("drain", "fees", "bob", (expected + 1) as u64)).await;
    assert_eq!(drain.status, StatusCode::CREATED, "{}", drain.body);
    assert_eq!(api.balance("acme", "fees").await, 0);
}
