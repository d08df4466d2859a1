//! Linked chains end to end through the router and the worker: all of a chain commits, in order,
//! or none of it (the refused member keeps its own code, the others `linked_failed`), on the sync,
//! respond-async and batch routes; concurrent chains never apply in part; every misuse is a typed
//! 4xx that writes nothing.

use crate::client::transfer_body as t;
use crate::{Api, Backend};
use http::StatusCode;
use serde_json::{Value, json};

async fn funded<B: Backend>(api: Api<B>) -> Api<B> {
    api.open_account("acme", "bank", true).await;
    api.open_account("acme", "alice", false).await;
    api.open_account("acme", "bob", false).await;
    let reply = api.post("/v1/transfers", "acme", t("fund", "bank", "alice", 1000)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    api
}

fn chain(transfers: Vec<Value>) -> Value {
    json!({ "transfers": transfers })
}

fn statuses(body: &Value) -> Vec<(String, String)> {
    body["transfers"]
        .as_array()
        .unwrap_or_else(|| panic!("no transfers in {body}"))
        .iter()
        .map(|t| {
            let code = t["reason"]["code"].as_str().or(t["status"].as_str()).unwrap_or_default();
            (t["id"].as_str().unwrap_or_default().to_owned(), code.to_owned())
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

pub async fn a_chain_commits_whole_in_order_and_a_failing_member_fails_it_all<B: Backend>(api: Api<B>) {
    let api = funded(api).await;
    // In order: bob is paid, then pays a fee out of what he just got.
    let paid =
        chain(vec![t("pay", "alice", "bob", 600), t("fee", "bob", "bank", 10), t("tax", "bob", "bank", 5)]);
    let reply = api.post("/v1/linked-transfers", "acme", paid.clone()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(
        statuses(&reply.body),
        pairs(&[("pay", "committed"), ("fee", "committed"), ("tax", "committed")])
    );
    assert_eq!(reply.body["transfers"][0]["linked"], true);
    assert!(reply.body["transfers"][2]["linked"].is_null());
    assert_eq!((api.balance("acme", "alice").await, api.balance("acme", "bob").await), (400, 585));

    // The fee cannot be paid: nothing of the chain applies, each member's id is spent.
    let refused = chain(vec![
        t("pay2", "alice", "bob", 300),
        t("fee2", "alice", "bank", 101),
        t("tip2", "bank", "bob", 1),
    ]);
    let reply = api.post("/v1/linked-transfers", "acme", refused.clone()).await;
    assert_eq!(
        (reply.status, reply.code(), reply.body["transfer_id"].as_str(), reply.body["account_id"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "insufficient_funds", Some("fee2"), Some("alice")),
        "{}",
        reply.body
    );
    assert_eq!(
        statuses(&reply.body),
        pairs(&[("pay2", "linked_failed"), ("fee2", "insufficient_funds"), ("tip2", "linked_failed")])
    );
    assert_eq!((api.balance("acme", "alice").await, api.balance("acme", "bob").await), (400, 585));
    assert_eq!(api.get("/v1/transfers/pay2", "acme").await.body["reason"]["code"], "linked_failed");
    // Retries replay, with the same answers.
    let again = api.post("/v1/linked-transfers", "acme", refused).await;
    assert_eq!(
        (again.status, again.replayed(), again.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, true, "insufficient_funds")
    );
    let again = api.post("/v1/linked-transfers", "acme", paid).await;
    assert_eq!((again.status, again.replayed()), (StatusCode::OK, true));
    assert_eq!(api.all_entries("acme", "bob").await.len(), 3);
}

pub async fn holds_posts_and_reversals_link_and_a_currency_mismatch_fails_the_chain<B: Backend>(api: Api<B>) {
    let api = funded(api).await;
    let usd = json!({"id": "usd", "currency": "USD"});
    assert_eq!(api.post("/v1/accounts", "acme", usd).await.status, StatusCode::CREATED);
    let hold = serde_json::to_value(ledger::fixtures::hold("h", "alice", "bob", 200, Some(3600))).unwrap();
    let post = serde_json::to_value(ledger::fixtures::post("p", "h", Some(150))).unwrap();
    let reversal = serde_json::to_value(ledger::fixtures::reversal("r", "p", Some(50))).unwrap();
    let mixed = chain(vec![hold.clone(), post.clone(), reversal.clone(), t("x", "alice", "usd", 1)]);
    let reply = api.post("/v1/linked-transfers", "acme", mixed).await;
    assert_eq!((reply.code(), reply.body["transfer_id"].as_str()), ("currency_mismatch", Some("x")));
    assert_eq!(api.get("/v1/accounts/alice", "acme").await.body["available"], 1000);
    let linked = chain(vec![
        serde_json::to_value(ledger::fixtures::hold("h2", "alice", "bob", 200, Some(3600))).unwrap(),
        serde_json::to_value(ledger::fixtures::post("p2", "h2", Some(150))).unwrap(),
        serde_json::to_value(ledger::fixtures::reversal("r2", "p2", Some(50))).unwrap(),
    ]);
    let reply = api.post("/v1/linked-transfers", "acme", linked).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(api.get("/v1/transfers/h2", "acme").await.body["status"], "posted");
    assert_eq!(api.get("/v1/transfers/p2", "acme").await.body["reversed_amount"], 50);
    assert_eq!((api.balance("acme", "alice").await, api.balance("acme", "bob").await), (900, 100));
    assert_eq!(api.get("/v1/accounts/alice", "acme").await.body["available"], 900);
}

pub async fn concurrent_chains_on_the_sync_and_async_routes_apply_whole_or_not_at_all<B: Backend>(
    api: Api<B>,
) {
    let api = funded(api).await;
    // 30 chains of 40 + a 10 fee from alice's 1000: exactly 20 can apply, whichever they are.
    let chains: Vec<Value> = (0..30)
        .map(|i| {
            chain(vec![
                t(&format!("c{i}-pay"), "alice", "bob", 40),
                t(&format!("c{i}-fee"), "alice", "bank", 10),
            ])
        })
        .collect();
    let sync = chains.iter().step_by(2).map(|c| api.post("/v1/linked-transfers", "acme", c.clone()));
    let queued = chains.iter().skip(1).step_by(2).map(|c| api.post_async("/v1/linked-transfers", "acme", c));
    let (sync, queued) = tokio::join!(futures::future::join_all(sync), futures::future::join_all(queued));
    for reply in &queued {
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
        assert!(statuses(&reply.body).iter().all(|(_, s)| s == "queued"));
    }
    for reply in &sync {
        assert!(
            reply.status == StatusCode::CREATED || reply.code() == "insufficient_funds",
            "{}",
            reply.body
        );
    }
    api.stack.settle_queued().await.unwrap();
    let mut applied = 0;
    for i in 0..30 {
        let pay = api.get(&format!("/v1/transfers/c{i}-pay"), "acme").await.body;
        let fee = api.get(&format!("/v1/transfers/c{i}-fee"), "acme").await.body;
        match (pay["status"].as_str(), fee["status"].as_str()) {
            (Some("committed"), Some("committed")) => applied += 1,
            (Some("rejected"), Some("rejected")) => {
                let codes =
                    [pay["reason"]["code"].as_str().unwrap(), fee["reason"]["code"].as_str().unwrap()];
                assert!(
                    codes == ["insufficient_funds", "linked_failed"]
                        || codes == ["linked_failed", "insufficient_funds"],
                    "chain c{i}: {codes:?}"
                );
            }
            other => panic!("chain c{i} applied in part: {other:?}"),
        }
    }
    assert_eq!(applied, 20);
    assert_eq!(
        (
            api.balance("acme", "alice").await,
            api.balance("acme", "bob").await,
            api.balance("acme", "bank").await
        ),
        (0, 800, -800)
    );
    // A queued chain replays, as it now stands.
    let replay = api.post_async("/v1/linked-transfers", "acme", &chains[1]).await;
    assert_eq!((replay.status, replay.replayed()), (StatusCode::ACCEPTED, true));
    assert!(statuses(&replay.body).iter().all(|(_, s)| s != "queued"));
}

pub async fn chains_inside_batches_settle_whole_even_across_the_workers_windows<B: Backend>(api: Api<B>) {
    let api = funded(api).await;
    let mut transfers: Vec<Value> = (0..93).map(|i| t(&format!("s{i}"), "bank", "bob", 1)).collect();
    // A chain across position 96, where the worker's window of reads ends.
    let mut linked: Vec<Value> = (0..6).map(|i| t(&format!("l{i}"), "alice", "bob", 10)).collect();
    for member in &mut linked[..5] {
        member["linked"] = true.into();
    }
    transfers.extend(linked);
    // A chain that fails: its second member would overdraw alice.
    transfers.push(json!({"id": "f0", "debit_account_id": "alice", "credit_account_id": "bob", "amount": 1, "currency": "EUR", "linked": true}));
    transfers.push(t("f1", "alice", "bob", 5_000));
    transfers.push(t("last", "bank", "alice", 1));
    let batch = json!({"id": "b1", "transfers": transfers});
    assert_eq!(api.post("/v1/transfer-batches", "acme", batch).await.status, StatusCode::ACCEPTED);
    api.stack.settle_queued().await.unwrap();
    let status = api.get("/v1/transfer-batches/b1", "acme").await.body;
    assert_eq!((status["committed"].as_i64(), status["queued"].as_i64()), (Some(100), Some(0)), "{status}");
    assert_eq!(status["rejected_by_reason"], json!({"linked_failed": 1, "insufficient_funds": 1}));
    assert_eq!(
        (api.balance("acme", "alice").await, api.balance("acme", "bob").await),
        (1000 - 60 + 1, 93 + 60)
    );
    for id in ["l0", "l5"] {
        assert_eq!(api.get(&format!("/v1/transfers/{id}"), "acme").await.body["status"], "committed");
    }
}

pub async fn every_misuse_of_a_chain_is_a_typed_4xx_and_writes_nothing<B: Backend>(api: Api<B>) {
    let api = funded(api).await;
    let too_long = chain((0..13).map(|i| t(&format!("x{i}"), "bank", "bob", 1)).collect());
    let twice = chain(vec![t("y", "bank", "bob", 1), t("y", "bank", "bob", 1)]);
    let empty = chain(vec![]);
    for (body, field) in [(too_long, "transfers"), (twice, "transfers[1].id"), (empty, "transfers")] {
        api.post("/v1/linked-transfers", "acme", body).await.assert_invalid_field(field, "a chain");
    }
    let mut open = t("z", "bank", "bob", 1);
    open["linked"] = true.into();
    let reply = api.post("/v1/transfers", "acme", open.clone()).await;
    assert_eq!((reply.status, reply.body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("linked")));
    let batch = json!({"id": "b", "transfers": [t("z0", "bank", "bob", 1), open]});
    let reply = api.post("/v1/transfer-batches", "acme", batch).await;
    assert_eq!(
        (reply.status, reply.body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("transfers[1].linked"))
    );
    // An id spent apart from the chain: the chain cannot apply as asked.
    let reply = api
        .post(
            "/v1/linked-transfers",
            "acme",
            chain(vec![t("fund", "bank", "alice", 1000), t("w", "bank", "bob", 1)]),
        )
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::CONFLICT, "idempotency_conflict"),
        "{}",
        reply.body
    );
    for id in ["x0", "y", "z", "z0", "w"] {
        assert_eq!(
            api.get(&format!("/v1/transfers/{id}"), "acme").await.status,
            StatusCode::NOT_FOUND,
            "{id}"
        );
    }
    assert_eq!(api.balance("acme", "bob").await, 0);
    // A chain of one is its transfer: the same transfer made alone is replayed, not a conflict.
    let reply = api.post("/v1/linked-transfers", "acme", chain(vec![t("fund", "bank", "alice", 1000)])).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.headers.get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
    assert_eq!(api.balance("acme", "alice").await, 1000, "moved once");
}

pub async fn a_queued_chains_member_sent_alone_never_applies_without_its_chain<B: Backend>(api: Api<B>) {
    let api = funded(api).await;
    let members = vec![t("q-pay", "alice", "bob", 5_000), t("q-fee", "bob", "bank", 1)];
    let reply = api.post_async("/v1/linked-transfers", "acme", &chain(members.clone())).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    // The last member alone, as a single respond-async transfer: it replays the queued claim.
    let alone = api.post_async("/v1/transfers", "acme", &members[1]).await;
    assert_eq!(
        (alone.status, alone.replayed(), alone.body["status"].as_str()),
        (StatusCode::ACCEPTED, true, Some("queued"))
    );
    api.stack.settle_queued().await.unwrap();
    for (id, code) in [("q-pay", "insufficient_funds"), ("q-fee", "linked_failed")] {
        assert_eq!(api.get(&format!("/v1/transfers/{id}"), "acme").await.body["reason"]["code"], code);
    }
    assert_eq!(api.balance("acme", "bob").await, 0);
}

/// Currency exchange, TigerBeetle's recipe: one linked chain through a liquidity account per
/// currency (the customer's dollars into the dollar liquidity account, euros out of the euro one to
/// the other customer), so each currency's books balance on their own and the exchange happens
/// whole or not at all; the rate travels as metadata.
pub async fn a_currency_exchange_is_a_chain_through_a_liquidity_account_per_currency<B: Backend>(
    api: Api<B>,
) {
    let open = |id: &'static str, currency: &'static str, overdraft: bool| {
        let api = &api;
        async move {
            let body = json!({"id": id, "currency": currency, "allow_overdraft": overdraft});
            assert_eq!(api.post("/v1/accounts", "acme", body).await.status, StatusCode::CREATED, "{id}");
        }
    };
    open("bank-usd", "USD", true).await;
    open("bank-eur", "EUR", true).await;
    open("liquidity-usd", "USD", false).await;
    open("liquidity-eur", "EUR", false).await;
    open("alice-usd", "USD", false).await;
    open("bob-eur", "EUR", false).await;
    let fund = |id: &str, debit: &str, credit: &str, amount: u64, currency: &str| json!({"id": id, "debit_account_id": debit, "credit_account_id": credit, "amount": amount, "currency": currency});
    for body in [
        fund("f1", "bank-usd", "alice-usd", 10_000, "USD"),
        fund("f2", "bank-eur", "liquidity-eur", 500, "EUR"),
    ] {
        assert_eq!(api.post("/v1/transfers", "acme", body).await.status, StatusCode::CREATED);
    }
    // 100.00 USD at 0.92: alice pays 10,000 cents in, bob gets 9,200 euro cents out.
    let exchange = |id: &str, usd: u64, eur: u64| {
        let mut pay_in = fund(&format!("{id}-in"), "alice-usd", "liquidity-usd", usd, "USD");
        pay_in["linked"] = json!(true);
        pay_in["metadata"] = json!({"rate": "0.92", "exchange": id});
        let mut pay_out = fund(&format!("{id}-out"), "liquidity-eur", "bob-eur", eur, "EUR");
        pay_out["metadata"] = json!({"rate": "0.92", "exchange": id});
        json!({"transfers": [pay_in, pay_out]})
    };
    // The euro liquidity holds 500: an exchange needing 9,200 fails whole, alice's dollars unmoved.
    let short = api.post("/v1/linked-transfers", "acme", exchange("fx-1", 10_000, 9_200)).await;
    assert_eq!((short.code(), short.body["transfer_id"].as_str()), ("insufficient_funds", Some("fx-1-out")));
    assert_eq!(api.balance("acme", "alice-usd").await, 10_000);
    // Topped up, the same exchange (new ids) applies whole.
    assert_eq!(
        api.post("/v1/transfers", "acme", fund("f3", "bank-eur", "liquidity-eur", 10_000, "EUR"))
            .await
            .status,
        StatusCode::CREATED
    );
    let done = api.post("/v1/linked-transfers", "acme", exchange("fx-2", 10_000, 9_200)).await;
    assert_eq!(done.status, StatusCode::CREATED, "{}", done.body);
    let balances = [
        ("alice-usd", 0),
        ("liquidity-usd", 10_000),
        ("bank-usd", -10_000),
        ("bob-eur", 9_200),
        ("liquidity-eur", 1_300),
        ("bank-eur", -10_500),
    ];
    for (account, balance) in balances {
        assert_eq!(api.balance("acme", account).await, balance, "{account}");
    }
    // Each currency balances on its own.
    let usd: i64 = balances.iter().filter(|(a, _)| a.ends_with("usd")).map(|(_, b)| b).sum();
    let eur: i64 = balances.iter().filter(|(a, _)| a.ends_with("eur")).map(|(_, b)| b).sum();
    assert_eq!((usd, eur), (0, 0));
    // A leg in the wrong currency fails the chain by its rule.
    let wrong = json!({"transfers": [
        {"linked": true, "id": "fx-3-in", "debit_account_id": "bank-usd", "credit_account_id": "liquidity-usd", "amount": 1, "currency": "USD"},
        fund("fx-3-out", "liquidity-eur", "bob-eur", 1, "USD"),
    ]});
    assert_eq!(api.post("/v1/linked-transfers", "acme", wrong).await.code(), "currency_mismatch");
    // Both legs are found by the exchange's metadata.
    let found = api.get("/v1/transfers?metadata[exchange]=fx-2", "acme").await.body;
    let mut ids: Vec<&str> =
        found["data"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["fx-2-in", "fx-2-out"]);
}
