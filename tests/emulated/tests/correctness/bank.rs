//! A Jepsen-style bank test through the API router against DynamoDB Local, which serves requests
//! concurrently, with faults injected (throttling, 500s, slow calls, transactions cancelled for a
//! conflict, writes whose answer is lost, clients that give up): 16 concurrent clients send random
//! transfers among 8 accounts, a third of them twice at once, with reads of all balances interleaved.
//! Each request is served by an API instance of its own at that moment (`Api::fleet`), so requests
//! at once meet only in the table, as Lambda's instances do.
//!
//! Every read sees every account, the total exactly conserved and no account without overdraft below
//! zero. Afterwards every acknowledged transfer is stored as acknowledged, exactly once, with one
//! gapless entry per side, and each balance equals the reference model's: the funding plus the
//! acknowledged committed transfers, applied in any order.
//!
//! The faults come from a seed (`LEDGER_FAULT_SEED`, printed), so a failing run can be replayed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use harness::client::transfer_body;
use harness::{Api, FaultPlan, Reply, StackOptions, fresh_stack_with};
use http::StatusCode;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tokio::sync::Mutex;

const ACCOUNTS: usize = 8;
const FUNDS_EACH: i64 = 10_000;
const TRANSFERS: usize = 2_000;
const TASKS: usize = 16;
const PLAN_SEED: u64 = 0x1ed6e5;

fn name(i: usize) -> String {
    format!("acct-{i}")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Committed,
    Rejected,
}

/// Sends until the answer is definite (a 503 or 504 leaves it open; the same id makes the retry
/// safe). Returns the outcome, whether the definite answer was a replay, and how many indefinite
/// answers came first.
async fn send(api: &Api, body: &Value) -> (Outcome, bool, u32) {
    let (reply, retries) = api.post_definite("/v1/transfers", "acme", body.clone()).await;
    match reply.status {
        StatusCode::CREATED | StatusCode::OK => {
            assert_eq!(reply.body["status"], "committed");
            (Outcome::Committed, reply.replayed(), retries)
        }
        StatusCode::UNPROCESSABLE_ENTITY => {
            assert_eq!(reply.code(), "insufficient_funds", "{}", reply.body);
            (Outcome::Rejected, reply.replayed(), retries)
        }
        other => panic!("unexpected {other}: {}", reply.body),
    }
}

async fn get(api: &Api, path: &str) -> Reply {
    let reply = api.get_definite(path, "acme").await;
    assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
    reply
}

/// One read of all balances: every account present, none unexpected, no negative balance where
/// overdraft is not allowed, and the total exactly conserved.
async fn check_read(api: &Api) {
    let reply = get(api, "/v1/accounts?limit=100").await;
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
async fn bank_invariants_hold_under_concurrency_and_faults() {
    let _turn = super::one_at_a_time().await;
    let seed = std::env::var("LEDGER_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(PLAN_SEED);
    let plan = FaultPlan::mixed(seed);
    let api = Arc::new(Api::fleet(
        fresh_stack_with(StackOptions { faults: plan, ..StackOptions::default() }).await,
    ));
    api.open_account("acme", "bank", true).await;
    for i in 0..ACCOUNTS {
        api.open_account("acme", &name(i), false).await;
        let fund = transfer_body(&format!("fund-{i}"), "bank", &name(i), FUNDS_EACH as u64);
        assert_eq!(send(&api, &fund).await.0, Outcome::Committed);
    }

    let mut rng = StdRng::seed_from_u64(PLAN_SEED);
    let plan: Vec<(Value, bool)> = (0..TRANSFERS)
        .map(|n| {
            let from = rng.random_range(0..ACCOUNTS);
            let to = (from + rng.random_range(1..ACCOUNTS)) % ACCOUNTS;
            let amount = rng.random_range(1..=3_000u64);
            (transfer_body(&format!("t-{n}"), &name(from), &name(to), amount), n % 3 == 0)
        })
        .collect();
    let queue = Arc::new(Mutex::new(plan.clone()));
    let acknowledged = Arc::new(Mutex::new(BTreeMap::<String, Outcome>::new()));

    let workers = (0..TASKS).map(|task| {
        let (api, queue, acknowledged) = (api.clone(), queue.clone(), acknowledged.clone());
        tokio::spawn(async move {
            let (mut reads, mut indefinite) = (0, 0);
            loop {
                let Some((body, twice)) = queue.lock().await.pop() else { break };
                let outcome = if twice {
                    // The duplicate races the original: exactly one of them may apply.
                    let (a, b) = tokio::join!(send(&api, &body), send(&api, &body));
                    assert_eq!(a.0, b.0, "the two sends of {} disagree", body["id"]);
                    // At most one of them is the original. Both may be replays: a send whose answer
                    // was lost may still have landed, and its retry then replays it.
                    assert!(a.1 || b.1, "both sends of {} applied: {a:?} {b:?}", body["id"]);
                    indefinite += a.2 + b.2;
                    a.0
                } else {
                    let (outcome, _, retries) = send(&api, &body).await;
                    indefinite += retries;
                    outcome
                };
                acknowledged.lock().await.insert(body["id"].as_str().unwrap().to_owned(), outcome);
                if task % 4 == 0 {
                    check_read(&api).await;
                    reads += 1;
                }
            }
            (reads, indefinite)
        })
    });
    let (mut reads, mut indefinite) = (0, 0);
    for worker in workers.collect::<Vec<_>>() {
        let (r, i) = worker.await.unwrap();
        reads += r;
        indefinite += i;
    }
    assert!(reads > 100, "only {reads} interleaved reads");
    check_read(&api).await;
    let faults = api.stack.faults.counts();

    // Every acknowledged transfer is stored as acknowledged.
    let acknowledged = acknowledged.lock().await.clone();
    assert_eq!(acknowledged.len(), TRANSFERS);
    let committed: BTreeMap<&str, &Value> = plan
        .iter()
        .map(|(b, _)| (b["id"].as_str().unwrap(), b))
        .filter(|(id, _)| acknowledged[*id] == Outcome::Committed)
        .collect();
    assert!(committed.len() > TRANSFERS / 2, "only {} of {TRANSFERS} committed", committed.len());
    for (id, outcome) in &acknowledged {
        let stored = get(&api, &format!("/v1/transfers/{id}")).await;
        let expected = if *outcome == Outcome::Committed { "committed" } else { "rejected" };
        assert_eq!(stored.body["status"], expected, "{id}");
    }

    // The reference model: funding plus the acknowledged committed transfers.
    let mut model: BTreeMap<String, i64> = (0..ACCOUNTS).map(|i| (name(i), FUNDS_EACH)).collect();
    for body in committed.values() {
        let amount = body["amount"].as_i64().unwrap();
        *model.get_mut(body["debit_account_id"].as_str().unwrap()).unwrap() -= amount;
        *model.get_mut(body["credit_account_id"].as_str().unwrap()).unwrap() += amount;
    }
    for i in 0..ACCOUNTS {
        let entries = api.all_entries("acme", &name(i)).await;
        let balance = get(&api, &format!("/v1/accounts/{}", name(i))).await.body["balance"].as_i64().unwrap();
        assert_eq!(balance, model[&name(i)], "{} differs from the model", name(i));
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
    // The faults did happen: a run without them would prove less than it claims.
    assert!(
        faults.throttled > 0 && faults.conflicts > 0 && faults.lost_replies > 0 && faults.gave_up > 0,
        "{faults}"
    );
    println!(
        "bank (fault seed {seed}): {} committed, {} rejected, {reads} interleaved reads, {indefinite} indefinite \
         answers retried; faults: {faults}",
        committed.len(),
        TRANSFERS - committed.len()
    );
}
