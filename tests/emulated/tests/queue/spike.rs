//! A spike through the queued path, sized for 2 cores: 10,000 transfers posted in batches of 1,000 as
//! fast as the API accepts them (one batch posted twice), then applied by up to the template's
//! `MaximumConcurrency` of worker invocations at once, with duplicate deliveries and killed
//! invocations injected. Afterwards every transfer is settled (committed or rejected with a reason),
//! nothing is in flight or dead, no transfer applied twice, and the bank invariant holds.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use harness::client::transfer_body;
use harness::{Api, FaultPlan, StackOptions, fresh_stack_with};
use http::StatusCode;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const ACCOUNTS: usize = 16;
const BATCHES: usize = 10;
const PER_BATCH: usize = 1_000;
const FUNDS_EACH: i64 = 40_000;

fn name(i: usize) -> String {
    format!("c{i}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_queued_transfers_settle_exactly_once() {
    // A batch is one message, so the shares are high enough that some batches are delivered twice
    // and some invocations killed mid-batch (their batches resume at the cursor after 20 s). The
    // visibility timeout outlasts a batch's run on the emulator here (about 10 s for 1,000
    // transfers, each also listed for search), as the template's 180 s outlasts the worker's 30 s
    // timeout; a shorter one has the queue hand a batch still running to other invocations until
    // its receives run out.
    let faults = FaultPlan { seed: 7, duplicate: 0.3, kill: 0.15, ..FaultPlan::none() };
    let options = StackOptions { visibility_timeout: Some(20), faults, ..StackOptions::default() };
    let api = Arc::new(Api::on(fresh_stack_with(options).await));
    api.open_account("acme", "bank", true).await;
    api.open_account("acme", "merchant", false).await;
    for i in 0..ACCOUNTS {
        api.open_account("acme", &name(i), false).await;
        let fund = transfer_body(&format!("fund-{i}"), "bank", &name(i), FUNDS_EACH as u64);
        assert_eq!(api.post("/v1/transfers", "acme", fund).await.status, StatusCode::CREATED);
    }

    // A third of the transfers pay the one hot merchant; amounts make some of them overdraw.
    let mut rng = StdRng::seed_from_u64(7);
    let batches: Vec<Value> = (0..BATCHES)
        .map(|b| {
            let transfers: Vec<Value> = (0..PER_BATCH)
                .map(|i| {
                    let from = rng.random_range(0..ACCOUNTS);
                    let to = if i % 3 == 0 {
                        "merchant".to_owned()
                    } else {
                        name((from + rng.random_range(1..ACCOUNTS)) % ACCOUNTS)
                    };
                    transfer_body(&format!("s{b}-{i}"), &name(from), &to, rng.random_range(1..=2_000u64))
                })
                .collect();
            json!({"id": format!("spike-{b}"), "transfers": transfers})
        })
        .collect();

    let started = Instant::now();
    // As a client does: a 503 (the message not taken, or the store busy) is answered by posting the
    // same batch again, which is idempotent and resumes what is missing.
    let in_flight = Arc::new(tokio::sync::Semaphore::new(4));
    let posts = batches.iter().cloned().map(|body| {
        let (api, in_flight) = (api.clone(), in_flight.clone());
        tokio::spawn(async move {
            let _permit = in_flight.acquire_owned().await.unwrap();
            for attempt in 0..10 {
                let status = api.post("/v1/transfer-batches", "acme", body.clone()).await.status;
                if status != StatusCode::SERVICE_UNAVAILABLE {
                    return (status, attempt);
                }
            }
            (StatusCode::SERVICE_UNAVAILABLE, 10)
        })
    });
    let mut retried = 0;
    for post in posts.collect::<Vec<_>>() {
        let (status, attempts) = post.await.unwrap();
        assert_eq!(status, StatusCode::ACCEPTED);
        retried += attempts;
    }
    let accepted_in = started.elapsed();
    // A client that posts a batch again whole: nothing is sent twice, nothing applies twice.
    assert_eq!(
        api.post("/v1/transfer-batches", "acme", batches[3].clone()).await.status,
        StatusCode::ACCEPTED
    );

    let drained = api.stack.drain().await.unwrap();
    let applied_in = started.elapsed();
    let dead = api.stack.sqs.receive_message().queue_url(&api.stack.dead_letter_url).send().await.unwrap();
    assert!(dead.messages.unwrap_or_default().is_empty(), "transfers ended in the dead-letter queue");

    let mut committed = 0;
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for b in &batches {
        let status =
            api.get(&format!("/v1/transfer-batches/{}", b["id"].as_str().unwrap()), "acme").await.body;
        assert_eq!(status["queued"].as_u64(), Some(0), "{status}");
        assert_eq!(
            status["committed"].as_u64().unwrap() + status["rejected"].as_u64().unwrap(),
            PER_BATCH as u64
        );
        committed += status["committed"].as_u64().unwrap();
        for (reason, n) in status["rejected_by_reason"].as_object().unwrap() {
            *reasons.entry(reason.clone()).or_default() += n.as_u64().unwrap();
        }
    }
    assert_eq!(reasons.keys().map(String::as_str).collect::<Vec<_>>(), vec!["insufficient_funds"]);

    // Entries: each committed transfer exactly once on each side; gapless; balances replay.
    let mut sides: HashMap<String, u32> = HashMap::new();
    let mut total = 0i64;
    for account in (0..ACCOUNTS).map(name).chain(["merchant".to_owned(), "bank".to_owned()]) {
        let entries = api.all_entries("acme", &account).await;
        let mut running = 0i64;
        for (n, e) in entries.iter().rev().enumerate() {
            assert_eq!(e["sequence"].as_u64(), Some(n as u64 + 1));
            let amount = e["amount"].as_i64().unwrap();
            running += if e["direction"] == "credit" { amount } else { -amount };
            assert_eq!(e["balance_after"].as_i64(), Some(running));
            assert!(account == "bank" || running >= 0, "{account} went negative");
            *sides.entry(e["transfer_id"].as_str().unwrap().to_owned()).or_default() += 1;
        }
        let balance = api.balance("acme", &account).await;
        assert_eq!(running, balance);
        total += balance;
    }
    assert_eq!(total, 0, "money was created or lost");
    assert!(sides.values().all(|&n| n == 2), "a transfer has other than one entry per side");
    let queued_sides = sides.keys().filter(|id| id.starts_with('s')).count() as u64;
    assert_eq!(queued_sides, committed, "committed transfers and their entries disagree");
    let received = drained.received();
    println!(
        "spike: {} transfers accepted in {:.1} s ({:.0}/s); all settled in {:.1} s ({:.0}/s); \
         {committed} committed, {reasons:?} rejected; {received} messages received in {} worker invocations \
         (at most {} at once); {retried} batch posts answered 503 and were posted again; faults: {}",
        BATCHES * PER_BATCH,
        accepted_in.as_secs_f64(),
        (BATCHES * PER_BATCH) as f64 / accepted_in.as_secs_f64(),
        applied_in.as_secs_f64(),
        (BATCHES * PER_BATCH) as f64 / applied_in.as_secs_f64(),
        drained.invocations.len(),
        drained.peak_concurrency,
        api.stack.faults.counts()
    );
}
