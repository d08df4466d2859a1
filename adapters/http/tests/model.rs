//! A model-based concurrency test in the style of Jepsen and TigerBeetle's VOPR: seeded random
//! operations from concurrent clients, through the API router and the worker, against DynamoDB Local
//! and moto with the `mixed` faults (throttling, 500s, slow calls, conflicts, lost replies, clients
//! that give up, duplicated deliveries, killed invocations), checked against a sequential model.
//!
//! Each client owns two accounts without overdraft; every client also moves money from the shared
//! funding account (`bank`) and into one shared hot account (`fees`), so the routes contend on the
//! same items. A client's operations on its own accounts are decided by nothing but its own history,
//! so the model predicts each outcome exactly: sync, respond-async and batch transfers, replays with
//! the same fields (same outcome) and with other fields (409 naming them, nothing changed), reads.
//! Queued work is applied by up to 10 concurrent worker invocations that run all along, with extra
//! copies of each batch's message sent at random (duplicates, late and "redriven" deliveries).
//!
//! Checked: every acknowledged outcome against the model; batch counters exactly; every read of all
//! balances conserves the total and shows no account without overdraft below zero; afterwards every
//! id's stored status, every balance, and every account's gapless entries replaying to its balance.
//!
//! The seed (`LEDGER_MODEL_SEED`, default below) decides the operations and the faults and is
//! printed; `LEDGER_MODEL_OPS` sets the operations per client (CI runs the default).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use harness::client::transfer_body;
use harness::{Api, FaultPlan, Reply, StackOptions, fresh_stack_with};
use http::StatusCode;
use ledger::{BatchId, Submission, TenantId};
use ledger_sqs::Work;
use ledger_telemetry::{CorrelationId, TraceContext};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const CLIENTS: usize = 8;
const DEFAULT_OPS: usize = 30;
const DEFAULT_SEED: u64 = 0x5eed_0009;
const TENANT: &str = "acme";

/// The sequential model of one client's two accounts, and what each of its ids holds.
#[derive(Default)]
struct Model {
    balances: BTreeMap<String, i64>,
    /// Each id used: its request body and its outcome ("committed" or a rule's code).
    ids: BTreeMap<String, (Value, String)>,
    /// Money moved into `fees` and out of `bank` by committed transfers.
    fees: i64,
    funded: i64,
}

impl Model {
    /// Applies one transfer as the ledger must, returning its outcome.
    fn apply(&mut self, body: &Value) -> String {
        let id = body["id"].as_str().unwrap().to_owned();
        let (from, to) =
            (body["debit_account_id"].as_str().unwrap(), body["credit_account_id"].as_str().unwrap());
        let amount = body["amount"].as_i64().unwrap();
        let outcome = if from != "bank" && self.balances[from] < amount {
            "insufficient_funds".to_owned()
        } else {
            if from == "bank" {
                self.funded += amount;
            } else {
                *self.balances.get_mut(from).unwrap() -= amount;
            }
            if to == "fees" {
                self.fees += amount;
            } else {
                *self.balances.get_mut(to).unwrap() += amount;
            }
            "committed".to_owned()
        };
        self.ids.insert(id, (body.clone(), outcome.clone()));
        outcome
    }
}

/// What a client does next.
enum Op {
    Sync(Value),
    Async(Value),
    Batch(String, Vec<Value>),
    /// An earlier request sent again: the same outcome.
    Replay(Value),
    /// An earlier id with another amount: 409 naming `amount`, nothing changed.
    Differing(Value),
    Read,
}

fn random_transfer(rng: &mut StdRng, client: usize, id: String) -> Value {
    let (a, b) = (format!("c{client}-a"), format!("c{client}-b"));
    let amount = rng.random_range(1..=400u64);
    let (from, to) = match rng.random_range(0..6) {
        0 => ("bank".to_owned(), a),
        1 => ("bank".to_owned(), b),
        2 => (a, b),
        3 => (b, a),
        4 => (a, "fees".to_owned()),
        _ => (b, "fees".to_owned()),
    };
    transfer_body(&id, &from, &to, amount)
}

fn plan_op(rng: &mut StdRng, client: usize, n: usize, used: &[Value]) -> Op {
    let id = |k: usize| format!("c{client}-{n}-{k}");
    match rng.random_range(0..100) {
        0..35 => Op::Sync(random_transfer(rng, client, id(0))),
        35..50 => Op::Async(random_transfer(rng, client, id(0))),
        50..65 => {
            let size = rng.random_range(1..=25);
            Op::Batch(
                format!("c{client}-b{n}"),
                (0..size).map(|k| random_transfer(rng, client, id(k))).collect(),
            )
        }
        65..78 if !used.is_empty() => Op::Replay(used[rng.random_range(0..used.len())].clone()),
        78..88 if !used.is_empty() => {
            let mut body = used[rng.random_range(0..used.len())].clone();
            body["amount"] = json!(body["amount"].as_u64().unwrap() + 1);
            Op::Differing(body)
        }
        _ => Op::Read,
    }
}

async fn post_async(api: &Api, body: &Value) -> Reply {
    for _ in 0..20 {
        let request = http::Request::builder()
            .method("POST")
            .uri("/v1/transfers")
            .header("content-type", "application/json")
            .header("prefer", "respond-async")
            .header("authorization", format!("Bearer {}", api.token(TENANT)))
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        let reply = api.send_request(request).await;
        if !reply.is_indefinite() {
            return reply;
        }
    }
    panic!("respond-async POST of {body} stayed indefinite");
}

/// Polls until `path`'s answer satisfies `settled` (the worker runs in the background).
async fn wait_for(api: &Api, path: &str, settled: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let reply = api.get_definite(path, TENANT).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        if settled(&reply.body) {
            return reply.body;
        }
        assert!(started.elapsed() < Duration::from_secs(240), "{path} never settled: {}", reply.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn transfer_outcome(api: &Api, id: &str) -> String {
    let body = wait_for(api, &format!("/v1/transfers/{id}"), |t| t["status"] != "queued").await;
    match body["status"].as_str() {
        Some("committed") => "committed".to_owned(),
        _ => body["reason"]["code"].as_str().unwrap().to_owned(),
    }
}

/// One read of all balances: every account there, the total exactly conserved, no account without
/// overdraft below zero.
async fn check_read(api: &Api) {
    let reply = api.get_definite("/v1/accounts?limit=100", TENANT).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let accounts = reply.body["data"].as_array().unwrap();
    assert_eq!(accounts.len(), 2 + 2 * CLIENTS);
    let mut total = 0;
    for account in accounts {
        let balance = account["balance"].as_i64().unwrap();
        assert!(account["allow_overdraft"] == true || balance >= 0, "negative in a read: {account}");
        total += balance;
    }
    assert_eq!(total, 0, "a read saw money created or lost");
}

/// Runs one client's operations, checking each acknowledged outcome against its model.
async fn client(
    api: Arc<Api>,
    client: usize,
    ops: usize,
    seed: u64,
    copies: Arc<tokio::sync::Mutex<Vec<String>>>,
) -> (Model, usize) {
    let mut rng = StdRng::seed_from_u64(seed ^ (client as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut model = Model::default();
    model.balances.insert(format!("c{client}-a"), 0);
    model.balances.insert(format!("c{client}-b"), 0);
    let mut used: Vec<Value> = Vec::new();
    let mut batches: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut reads = 0;
    for n in 0..ops {
        match plan_op(&mut rng, client, n, &used) {
            Op::Sync(body) => {
                let (reply, _) = api.post_definite("/v1/transfers", TENANT, body.clone()).await;
                let expected = model.apply(&body);
                assert_sync_outcome(&reply, &expected, false);
                used.push(body);
            }
            Op::Async(body) => {
                let reply = post_async(&api, &body).await;
                assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
                let id = body["id"].as_str().unwrap();
                let outcome = transfer_outcome(&api, id).await;
                assert_eq!(outcome, model.apply(&body), "async {id}");
                used.push(body);
            }
            Op::Batch(id, transfers) => {
                let request = json!({"id": id, "transfers": transfers});
                let (reply, _) = api.post_definite("/v1/transfer-batches", TENANT, request).await;
                assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
                if rng.random_bool(0.5) {
                    copies.lock().await.push(id.clone());
                }
                let path = format!("/v1/transfer-batches/{id}");
                let status = wait_for(&api, &path, |b| b["queued"] == 0).await;
                // In submitted order, exactly as the model applies them.
                let mut expected: BTreeMap<String, u64> = BTreeMap::new();
                for t in &transfers {
                    *expected.entry(model.apply(t)).or_default() += 1;
                }
                let committed = expected.remove("committed").unwrap_or(0);
                assert_eq!(status["committed"].as_u64(), Some(committed), "batch {id}: {status}");
                assert_eq!(status["rejected_by_reason"], json!(expected), "batch {id}");
                for t in &transfers {
                    let stored = transfer_outcome(&api, t["id"].as_str().unwrap()).await;
                    assert_eq!(stored, model.ids[t["id"].as_str().unwrap()].1, "{} of batch {id}", t["id"]);
                }
                used.extend(transfers.iter().cloned());
                batches.insert(id, transfers);
            }
            Op::Replay(body) => {
                let id = body["id"].as_str().unwrap();
                let expected = model.ids[id].1.clone();
                if rng.random_bool(0.5) {
                    let (reply, _) = api.post_definite("/v1/transfers", TENANT, body.clone()).await;
                    assert_sync_outcome(&reply, &expected, true);
                } else {
                    let reply = post_async(&api, &body).await;
                    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
                    assert!(reply.replayed(), "async replay of {id}");
                    let status = reply.body["status"].as_str().unwrap();
                    assert_eq!(status == "committed", expected == "committed", "async replay of {id}");
                }
            }
            Op::Differing(body) => {
                let (reply, _) = if rng.random_bool(0.5) {
                    api.post_definite("/v1/transfers", TENANT, body.clone()).await
                } else {
                    (post_async(&api, &body).await, 0)
                };
                assert_eq!(
                    (reply.status, reply.code()),
                    (StatusCode::CONFLICT, "idempotency_conflict"),
                    "{}",
                    reply.body
                );
                assert_eq!(reply.body["fields"], json!(["amount"]));
            }
            Op::Read => {
                check_read(&api).await;
                for (account, balance) in &model.balances {
                    assert_eq!(
                        api.balance(TENANT, account).await,
                        *balance,
                        "{account} differs from the model"
                    );
                }
                reads += 1;
            }
        }
    }
    // A batch posted again after it settled replays with the same counters.
    for (id, transfers) in batches.iter().take(2) {
        let (reply, _) = api
            .post_definite("/v1/transfer-batches", TENANT, json!({"id": id, "transfers": transfers}))
            .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED);
        assert!(reply.replayed());
        assert_eq!(reply.body["queued"], 0);
    }
    (model, reads)
}

fn assert_sync_outcome(reply: &Reply, expected: &str, replay: bool) {
    match expected {
        "committed" => {
            let status = if replay { StatusCode::OK } else { StatusCode::CREATED };
            // A lost answer retried is a replay of what landed.
            assert!(
                reply.status == status || reply.status == StatusCode::OK,
                "{} {}",
                reply.status,
                reply.body
            );
            assert_eq!(reply.body["status"], "committed");
        }
        code => {
            assert_eq!(
                (reply.status, reply.code()),
                (StatusCode::UNPROCESSABLE_ENTITY, code),
                "{}",
                reply.body
            );
        }
    }
    if replay {
        assert!(reply.replayed(), "{}", reply.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_outcome_matches_the_sequential_model_under_concurrency_and_faults() {
    let seed = std::env::var("LEDGER_MODEL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_SEED);
    let ops = std::env::var("LEDGER_MODEL_OPS").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_OPS);
    println!(
        "model test: seed {seed}, {CLIENTS} clients x {ops} operations (LEDGER_MODEL_SEED, LEDGER_MODEL_OPS)"
    );
    let options = StackOptions {
        faults: FaultPlan::mixed(seed),
        visibility_timeout: Some(3),
        ..StackOptions::default()
    };
    let api = Arc::new(Api::on(fresh_stack_with(options).await));
    api.open_account(TENANT, "bank", true).await;
    api.open_account(TENANT, "fees", false).await;
    for c in 0..CLIENTS {
        api.open_account(TENANT, &format!("c{c}-a"), false).await;
        api.open_account(TENANT, &format!("c{c}-b"), false).await;
    }

    // The worker, all along: up to the template's concurrency of invocations at once.
    let stop = Arc::new(AtomicBool::new(false));
    let source = api.stack.event_source.clone();
    let pollers: Vec<_> = (0..source.spec().max_concurrency)
        .map(|_| {
            let (source, handler, stop) = (source.clone(), api.stack.worker(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if source.invoke_once(&handler).await.map(|i| i.received).unwrap_or(0) == 0 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            })
        })
        .collect();
    // Extra deliveries of batches' messages, late and out of order, as duplicates and redrives are.
    let copies = Arc::new(tokio::sync::Mutex::new(Vec::<String>::new()));
    let redeliver = {
        let (api, copies, stop) = (api.clone(), copies.clone(), stop.clone());
        tokio::spawn(async move {
            let mut sent = 0;
            let trace = TraceContext::new(CorrelationId::generate(), None);
            while !stop.load(Ordering::Relaxed) {
                let batch = copies.lock().await.pop();
                match batch {
                    Some(id) => {
                        let work = Work {
                            tenant: TenantId::parse(TENANT).unwrap(),
                            submission: Submission::Batch(BatchId::parse(id).unwrap()),
                        };
                        api.stack.queue.send(&work, &trace).await.unwrap();
                        sent += 1;
                    }
                    None => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
            sent
        })
    };

    let started = Instant::now();
    let clients = (0..CLIENTS).map(|c| tokio::spawn(client(api.clone(), c, ops, seed, copies.clone())));
    let mut models = Vec::new();
    let mut reads = 0;
    for handle in clients.collect::<Vec<_>>() {
        let (model, r) = handle.await.unwrap();
        models.push(model);
        reads += r;
    }
    stop.store(true, Ordering::Relaxed);
    let redelivered = redeliver.await.unwrap();
    for poller in pollers {
        poller.await.unwrap();
    }
    let drained = api.stack.drain().await.unwrap();
    let elapsed = started.elapsed();
    check_read(&api).await;
    let dead = api.stack.sqs.receive_message().queue_url(&api.stack.dead_letter_url).send().await.unwrap();
    assert!(dead.messages.unwrap_or_default().is_empty(), "work ended in the dead-letter queue");

    // Afterwards: every id as the model says, every balance, every account's history.
    let mut committed_ids = BTreeSet::new();
    let (mut fees, mut funded, mut ids) = (0, 0, 0);
    for model in &models {
        for (id, (_, outcome)) in &model.ids {
            assert_eq!(&transfer_outcome(&api, id).await, outcome, "{id}");
            if outcome == "committed" {
                committed_ids.insert(id.clone());
            }
            ids += 1;
        }
        for (account, balance) in &model.balances {
            assert_eq!(api.balance(TENANT, account).await, *balance, "{account}");
        }
        fees += model.fees;
        funded += model.funded;
    }
    assert_eq!(api.balance(TENANT, "fees").await, fees);
    assert_eq!(api.balance(TENANT, "bank").await, -funded);
    let mut sides: BTreeMap<String, u32> = BTreeMap::new();
    let accounts = (0..CLIENTS)
        .flat_map(|c| [format!("c{c}-a"), format!("c{c}-b")])
        .chain(["fees".into(), "bank".into()]);
    for account in accounts {
        let entries = api.all_entries(TENANT, &account).await;
        let mut running = 0i64;
        for (n, entry) in entries.iter().rev().enumerate() {
            assert_eq!(entry["sequence"].as_u64(), Some(n as u64 + 1), "{account}: a gap");
            let amount = entry["amount"].as_i64().unwrap();
            running += if entry["direction"] == "credit" { amount } else { -amount };
            assert_eq!(entry["balance_after"].as_i64(), Some(running), "{account}");
            assert!(account == "bank" || running >= 0, "{account} went below zero");
            *sides.entry(entry["transfer_id"].as_str().unwrap().to_owned()).or_default() += 1;
        }
        assert_eq!(running, api.balance(TENANT, &account).await, "{account}");
    }
    assert!(sides.values().all(|&n| n == 2), "a transfer with other than one entry per side");
    assert_eq!(
        sides.keys().cloned().collect::<BTreeSet<_>>(),
        committed_ids,
        "entries and committed transfers differ"
    );
    let faults = api.stack.faults.counts();
    assert!(faults.throttled > 0 && faults.conflicts > 0 && faults.duplicates > 0, "{faults}");
    println!(
        "model test: seed {seed}: {ids} ids ({} committed) by {CLIENTS} clients x {ops} operations in {:.1} s, \
         {reads} model reads, {redelivered} extra batch deliveries, final drain {} invocations; faults: {faults}",
        committed_ids.len(),
        elapsed.as_secs_f64(),
        drained.invocations.len()
    );
}
