//! A Jepsen-style bank test through the API router against the emulator: concurrent random
//! transfers, a third of them sent twice, with reads of all balances interleaved. Afterwards the
//! money is all there, no account without overdraft ever went negative, and every acknowledged
//! transfer exists exactly once with matching entries.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use common::{Api, Reply};
use http::StatusCode;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::sync::Mutex;

const ACCOUNTS: usize = 8;
const FUNDS_EACH: i64 = 10_000;
const TRANSFERS: usize = 2_000;
const TASKS: usize = 16;
const SEED: u64 = 0x1ed6e5;

fn name(i: usize) -> String {
    format!("acct-{i}")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Committed,
    Rejected,
}

/// Sends until the answer is definite: a 503 means "maybe not applied", and the same id makes the
/// retry safe.
async fn send(api: &Api, body: &Value) -> (Outcome, bool) {
    for _ in 0..50 {
        let reply: Reply = api.post("/v1/transfers", "acme", body.clone()).await;
        match reply.status {
            StatusCode::CREATED | StatusCode::OK => {
                assert_eq!(reply.body["status"], "committed");
                return (Outcome::Committed, reply.replayed());
            }
            StatusCode::UNPROCESSABLE_ENTITY => {
                assert_eq!(reply.code(), "insufficient_funds", "{}", reply.body);
                return (Outcome::Rejected, reply.replayed());
            }
            StatusCode::SERVICE_UNAVAILABLE => continue,
            other => panic!("unexpected {other}: {}", reply.body),
        }
    }
    panic!("transfer {} stayed unavailable", body["id"]);
}

/// One read of all balances: every account present, none unexpected, no negative balance where
/// overdraft is not allowed, and the total exactly conserved.
async fn check_read(api: &Api) {
    let reply = api.get("/v1/accounts?limit=100", "acme").await;
    assert_eq!(reply.status, StatusCode::OK);
    let mut seen = BTreeMap::new();
    for account in reply.body["data"].as_array().unwrap() {
        let balance = account["balance"].as_i64().unwrap();
        if account["allow_overdraft"] == false {
            assert!(balance >= 0, "negative balance in a read: {account}");
        }
        seen.insert(account["id"].as_str().unwrap().to_owned(), balance);
    }
    let expected: BTreeSet<String> = (0..ACCOUNTS).map(name).chain(["bank".to_owned()]).collect();
    assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert_eq!(seen.values().sum::<i64>(), 0, "a read saw money created or lost: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bank_invariants_hold_under_concurrent_duplicated_transfers() {
    let api = Arc::new(Api::new().await);
    api.post("/v1/accounts", "acme", json!({"id": "bank", "currency": "EUR", "allow_overdraft": true})).await;
    for i in 0..ACCOUNTS {
        assert_eq!(
            api.post("/v1/accounts", "acme", json!({"id": name(i), "currency": "EUR"})).await.status,
            StatusCode::CREATED
        );
        let fund = json!({"id": format!("fund-{i}"), "debit_account_id": "bank", "credit_account_id": name(i), "amount": FUNDS_EACH, "currency": "EUR"});
        assert_eq!(send(&api, &fund).await, (Outcome::Committed, false));
    }

    let mut rng = StdRng::seed_from_u64(SEED);
    let plan: Vec<(Value, bool)> = (0..TRANSFERS)
        .map(|n| {
            let from = rng.random_range(0..ACCOUNTS);
            let to = (from + rng.random_range(1..ACCOUNTS)) % ACCOUNTS;
            let amount = rng.random_range(1..=3_000u64);
            let body = json!({"id": format!("t-{n}"), "debit_account_id": name(from), "credit_account_id": name(to), "amount": amount, "currency": "EUR"});
            (body, n % 3 == 0)
        })
        .collect();
    let queue = Arc::new(Mutex::new(plan.clone()));
    let acknowledged = Arc::new(Mutex::new(BTreeMap::<String, Outcome>::new()));

    let workers = (0..TASKS).map(|task| {
        let (api, queue, acknowledged) = (api.clone(), queue.clone(), acknowledged.clone());
        tokio::spawn(async move {
            let mut reads = 0;
            loop {
                let Some((body, twice)) = queue.lock().await.pop() else { break };
                let outcome = if twice {
                    // The duplicate races the original: exactly one of them may apply.
                    let (a, b) = tokio::join!(send(&api, &body), send(&api, &body));
                    assert_eq!(a.0, b.0, "the two sends of {} disagree", body["id"]);
                    // At most one of them is the original. Both may be replays: a send that timed
                    // out may still have landed, and its retry then replays it.
                    assert!(a.1 || b.1, "both sends of {} applied: {a:?} {b:?}", body["id"]);
                    a.0
                } else {
                    send(&api, &body).await.0
                };
                acknowledged.lock().await.insert(body["id"].as_str().unwrap().to_owned(), outcome);
                if task % 4 == 0 {
                    check_read(&api).await;
                    reads += 1;
                }
            }
            reads
        })
    });
    let mut reads = 0;
    for worker in workers.collect::<Vec<_>>() {
        reads += worker.await.unwrap();
    }
    assert!(reads > 100, "only {reads} interleaved reads");
    check_read(&api).await;

    // Every acknowledged transfer exists exactly once, as acknowledged, with one entry per side.
    let acknowledged = acknowledged.lock().await.clone();
    assert_eq!(acknowledged.len(), TRANSFERS);
    let committed: BTreeMap<&str, &Value> = plan
        .iter()
        .map(|(b, _)| (b["id"].as_str().unwrap(), b))
        .filter(|(id, _)| acknowledged[*id] == Outcome::Committed)
        .collect();
    assert!(committed.len() > TRANSFERS / 2, "only {} of {TRANSFERS} committed", committed.len());
    for (id, outcome) in &acknowledged {
        let stored = api.get(&format!("/v1/transfers/{id}"), "acme").await;
        let expected = if *outcome == Outcome::Committed { "committed" } else { "rejected" };
        assert_eq!(stored.body["status"], expected, "{id}");
    }
    for i in 0..ACCOUNTS {
        let entries = all_entries(&api, &name(i)).await;
        let balance =
            api.get(&format!("/v1/accounts/{}", name(i)), "acme").await.body["balance"].as_i64().unwrap();
        // Oldest first: gapless sequences, balances that follow each amount, never negative.
        let mut running = 0i64;
        let mut transfer_ids = BTreeSet::new();
        for (n, entry) in entries.iter().rev().enumerate() {
            assert_eq!(entry["sequence"].as_u64(), Some(n as u64 + 1));
            let amount = entry["amount"].as_i64().unwrap();
            running += if entry["direction"] == "credit" { amount } else { -amount };
            assert_eq!(entry["balance_after"].as_i64(), Some(running));
            assert!(running >= 0);
            assert!(
                transfer_ids.insert(entry["transfer_id"].as_str().unwrap().to_owned()),
                "a transfer applied twice"
            );
        }
        assert_eq!(running, balance);
        let expected: BTreeSet<String> = committed
            .iter()
            .filter(|(_, b)| b["debit_account_id"] == name(i) || b["credit_account_id"] == name(i))
            .map(|(id, _)| id.to_string())
            .chain([format!("fund-{i}")])
            .collect();
        assert_eq!(transfer_ids, expected, "entries of {} differ from the acknowledged transfers", name(i));
    }
    println!(
        "bank: {} committed, {} rejected, {reads} interleaved reads",
        committed.len(),
        TRANSFERS - committed.len()
    );
}

async fn all_entries(api: &Api, account: &str) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/accounts/{account}/entries?limit=100&cursor={c}"),
            None => format!("/v1/accounts/{account}/entries?limit=100"),
        };
        let page = api.get(&path, "acme").await;
        entries.extend(page.body["data"].as_array().unwrap().iter().cloned());
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return entries,
        }
    }
}
