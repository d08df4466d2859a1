//! The noisy neighbour (issue 12): tenant B's latencies are measured alone and while tenant A
//! floods the API with synchronous transfers and batches far beyond its limit, ignoring every
//! `429`. B's synchronous p99 and its queued enqueue→commit p99 must stay within 2× of their
//! unloaded values. The worker runs meanwhile as the event source mapping runs it (the template's
//! `MaximumConcurrency` of invocations polling the queue). In its own test binary, so that no other
//! test's load lands in either measurement.
//!
//! The two conditions are measured in interleaved blocks, balanced against drift (alone, beside,
//! beside, alone, beside, alone, alone, beside), and each condition's samples pooled: a p99 of a
//! hundred samples on a shared 2-core machine moved 2× between identical runs (62.6 to 130.2 ms
//! alone, in the README's table), so whatever the machine does meanwhile (a JIT, a collection,
//! another process) must land in both conditions alike, not in one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use harness::client::Reply;
use harness::client::transfer_body as t;
use harness::{Api, StackOptions, fresh_stack_with};
use http::StatusCode;
use ledger::{RateLimit, TenantId, TransferId, TransferStatus};
use serde_json::json;
use tokio::time::MissedTickBehavior;

/// Every tenant's limit: operations a second, burst. Sized, as a deployment sizes it, so that the
/// tenants' limits together stay well under what the platform serves: here one 2-core machine
/// running the debug build and both emulators, which serves some 30-50 transfers a second. (At
/// 10/s each, B's p99s rose 1.7-1.9× beside the flood: within 2×, but by too little to be stable.)
const PER_SECOND: u32 = 6;
const BURST: u32 = 12;
/// The blocks, in order (`true`: beside the flood), how long each runs, and B's load meanwhile (well
/// within its limit).
const BLOCKS: [bool; 8] = [false, true, true, false, true, false, false, true];
const MEASURE: Duration = Duration::from_secs(12);
/// After a flood, what it queued is drained and the machine given this long before the next block.
const SETTLE: Duration = Duration::from_secs(2);
/// The quiet tenants ("B"): several, as a platform has, each well within its limit; their
/// samples are pooled.
const QUIET: [&str; 3] = ["globex", "initech", "umbrella"];
const B_SYNC_EVERY: Duration = Duration::from_millis(400);
const B_QUEUED_EVERY: Duration = Duration::from_millis(400);
/// A's flood: clients each sending on a fixed beat, whatever the answers.
const A_SYNC_CLIENTS: usize = 4;
const A_SYNC_EVERY: Duration = Duration::from_millis(20);
const A_BATCH_CLIENTS: usize = 2;
const A_BATCH_EVERY: Duration = Duration::from_millis(100);
const A_BATCH_SIZE: usize = 20;
/// How often the observer reads a queued transfer from the store to see it committed.
const OBSERVE_EVERY: Duration = Duration::from_millis(10);

fn percentile(samples: &[Duration], percent: usize) -> Duration {
    assert!(!samples.is_empty());
    let mut samples = samples.to_vec();
    samples.sort();
    samples[(samples.len() * percent).div_ceil(100).max(1) - 1]
}

fn p99(samples: &[Duration]) -> Duration {
    percentile(samples, 99)
}

/// `p50 / p99 / max` in ms, for the log.
fn spread(samples: &[Duration]) -> String {
    let at = |percent| ms(percentile(samples, percent));
    format!("{:.1} / {:.1} / {:.1}", at(50), at(99), at(100))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// B's two latencies over one measurement: synchronous transfers, and queued transfers from the
/// `202` to the commit (seen by reading the store directly, so the observer spends none of B's
/// limit).
#[derive(Default)]
struct Latencies {
    sync: Vec<Duration>,
    queued: Vec<Duration>,
}

impl Latencies {
    fn pool(&mut self, block: Latencies) {
        self.sync.extend(block.sync);
        self.queued.extend(block.queued);
    }
}

/// Every quiet tenant's latencies over one block, measured at once and pooled.
async fn measure_b(api: Arc<Api>, round: &str) -> Latencies {
    let mut pooled = Latencies::default();
    let blocks = QUIET.map(|tenant| measure_quiet(api.clone(), tenant, round.to_owned()));
    for block in futures::future::join_all(blocks).await {
        pooled.pool(block);
    }
    pooled
}

async fn measure_quiet(api: Arc<Api>, tenant: &'static str, round: String) -> Latencies {
    let sync = {
        let (api, round) = (api.clone(), round.clone());
        tokio::spawn(async move {
            let mut beat = tokio::time::interval(B_SYNC_EVERY);
            beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let started = Instant::now();
            let mut samples = Vec::new();
            let mut i = 0;
            while started.elapsed() < MEASURE {
                beat.tick().await;
                let sent = Instant::now();
                let body = t(&format!("{round}-s{i}"), "b-bank", &format!("b{}", i % 4), 1);
                let reply = api.post("/v1/transfers", tenant, body).await;
                assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
                samples.push(sent.elapsed());
                i += 1;
            }
            samples
        })
    };
    let mut beat = tokio::time::interval(B_QUEUED_EVERY);
    beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let started = Instant::now();
    let mut observers = Vec::new();
    let mut i = 0;
    while started.elapsed() < MEASURE {
        beat.tick().await;
        let id = format!("{round}-q{i}");
        let body = t(&id, "b-bank", &format!("b{}", i % 4), 1);
        let reply = api.post_async("/v1/transfers", tenant, &body).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
        let accepted = Instant::now();
        let store = api.stack.store.clone();
        observers.push(tokio::spawn(async move {
            let (tenant, id) = (TenantId::parse(tenant).unwrap(), TransferId::parse(id).unwrap());
            loop {
                let now = time::OffsetDateTime::now_utc();
                let transfer = store.get_transfer(&tenant, &id, now).await.unwrap();
                if transfer.status != TransferStatus::Queued {
                    assert_eq!(transfer.status, TransferStatus::Committed);
                    return accepted.elapsed();
                }
                assert!(accepted.elapsed() < Duration::from_secs(60), "{id} never settled");
                tokio::time::sleep(OBSERVE_EVERY).await;
            }
        }));
        i += 1;
    }
    let queued = futures::future::join_all(observers).await.into_iter().map(Result::unwrap).collect();
    Latencies { sync: sync.await.unwrap(), queued }
}

/// What A's flood got back.
#[derive(Default)]
struct Flood {
    sent: AtomicU32,
    limited: AtomicU32,
    admitted_operations: AtomicU32,
}

impl Flood {
    fn count(&self, status: StatusCode, operations: u32) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        match status {
            StatusCode::TOO_MANY_REQUESTS => {
                self.limited.fetch_add(1, Ordering::Relaxed);
            }
            s if s.is_success() => {
                self.admitted_operations.fetch_add(operations, Ordering::Relaxed);
            }
            s => panic!("the flood got {s}"),
        }
    }
}

/// One of A's clients: on every beat until `until`, its `i`th request (path, body, operations),
/// whatever the answers before it were.
fn flood_client(
    api: Arc<Api>,
    flood: Arc<Flood>,
    every: Duration,
    until: Instant,
    request: impl Fn(usize) -> (&'static str, serde_json::Value, u32) + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut beat = tokio::time::interval(every);
        beat.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut i = 0;
        while Instant::now() < until {
            beat.tick().await;
            let (path, body, operations) = request(i);
            flood.count(api.post(path, "acme", body).await.status, operations);
            i += 1;
        }
    })
}

fn flood_a(api: Arc<Api>, flood: Arc<Flood>, until: Instant) -> Vec<tokio::task::JoinHandle<()>> {
    let account = |n: usize| format!("a{}", n % 8);
    let sync = (0..A_SYNC_CLIENTS).map(|client| {
        flood_client(api.clone(), flood.clone(), A_SYNC_EVERY, until, move |i| {
            ("/v1/transfers", t(&format!("a{client}-{i}"), &account(i), &account(i + 3), 1), 1)
        })
    });
    let batches = (0..A_BATCH_CLIENTS).map(|client| {
        flood_client(api.clone(), flood.clone(), A_BATCH_EVERY, until, move |i| {
            let transfers: Vec<_> = (0..A_BATCH_SIZE)
                .map(|n| t(&format!("ab{client}-{i}-{n}"), &account(n), &account(n + 5), 1))
                .collect();
            let body = json!({"id": format!("ab{client}-{i}"), "transfers": transfers});
            ("/v1/transfer-batches", body, A_BATCH_SIZE as u32)
        })
    });
    sync.chain(batches).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flooding_tenant_leaves_another_tenants_p99s_within_twice_their_unloaded_values() {
    let options = StackOptions {
        visibility_timeout: Some(10),
        tenant_limit: Some(RateLimit::new(PER_SECOND, BURST).unwrap()),
        ..StackOptions::default()
    };
    let api = Arc::new(Api::on(fresh_stack_with(options).await));
    tokio::spawn(api.stack.event_source.clone().run(api.stack.worker()));
    let tenants = [("acme", "a", 8)].into_iter().chain(QUIET.map(|tenant| (tenant, "b", 4)));
    for (tenant, prefix, accounts) in tenants {
        let open = |id: String, overdraft| json!({"id": id, "currency": "EUR", "allow_overdraft": overdraft});
        let bank = open(format!("{prefix}-bank"), true);
        assert_eq!(paced(&api, "/v1/accounts", tenant, bank).await.status, StatusCode::CREATED);
        for i in 0..accounts {
            let account = open(format!("{prefix}{i}"), false);
            assert_eq!(paced(&api, "/v1/accounts", tenant, account).await.status, StatusCode::CREATED);
        }
    }
    // A's transfers move money among its own accounts, so they seldom contend with each other:
    // contention retries load DynamoDB Local's shared CPU, which DynamoDB's partitions would not.
    for i in 0..8 {
        let fund = t(&format!("fund-a{i}"), "a-bank", &format!("a{i}"), 1_000_000);
        assert_eq!(paced(&api, "/v1/transfers", "acme", fund).await.status, StatusCode::CREATED);
    }
    // Warm up B's path (connections, balance cache), then let its bucket refill.
    measure_b_briefly(&api).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let (mut alone, mut beside) = (Latencies::default(), Latencies::default());
    let flood = Arc::new(Flood::default());
    let mut flood_secs = 0.0;
    for (n, flooded) in BLOCKS.into_iter().enumerate() {
        let round = format!("r{n}");
        if !flooded {
            alone.pool(measure_b(api.clone(), &round).await);
            continue;
        }
        let admitted_before = flood.admitted_operations.load(Ordering::Relaxed);
        let started = Instant::now();
        let flooding = flood_a(api.clone(), flood.clone(), started + MEASURE + Duration::from_secs(1));
        beside.pool(measure_b(api.clone(), &round).await);
        for client in futures::future::join_all(flooding).await {
            client.expect("a flood client failed");
        }
        let secs = started.elapsed().as_secs_f64();
        flood_secs += secs;
        // A got no more than its limit in this flood: at most a full bucket, then its rate.
        let admitted = flood.admitted_operations.load(Ordering::Relaxed) - admitted_before;
        let most = f64::from(BURST) + f64::from(PER_SECOND) * secs + 1.0;
        assert!(
            f64::from(admitted) <= most,
            "block {n}: A got {admitted} operations in {secs:.1} s, at most {most:.0}"
        );
        // What A's flood queued is done before the next block.
        api.stack.drain().await.unwrap();
        tokio::time::sleep(SETTLE).await;
    }

    let (sent, limited, admitted) = (
        flood.sent.load(Ordering::Relaxed),
        flood.limited.load(Ordering::Relaxed),
        flood.admitted_operations.load(Ordering::Relaxed),
    );
    let (sync_alone, sync_beside) = (p99(&alone.sync), p99(&beside.sync));
    let (queued_alone, queued_beside) = (p99(&alone.queued), p99(&beside.queued));
    eprintln!(
        "noisy neighbour: A sent {sent} requests in {flood_secs:.1} s, {limited} refused with 429, \
         {admitted} operations admitted (limit {PER_SECOND}/s, burst {BURST})"
    );
    eprintln!(
        "noisy neighbour: B sync p50/p99/max {} ms alone, {} ms beside the flood ({} and {} samples)",
        spread(&alone.sync),
        spread(&beside.sync),
        alone.sync.len(),
        beside.sync.len()
    );
    eprintln!(
        "noisy neighbour: B queued enqueue→commit p50/p99/max {} ms alone, {} ms beside the flood ({} and {} samples)",
        spread(&alone.queued),
        spread(&beside.queued),
        alone.queued.len(),
        beside.queued.len()
    );
    // The flood was a flood (and each of its blocks got no more than A's limit, above).
    assert!(limited > sent / 2, "{limited} of {sent} refused");
    assert!(sync_beside <= 2 * sync_alone, "sync p99 {sync_beside:?} beside vs {sync_alone:?} alone");
    assert!(
        queued_beside <= 2 * queued_alone,
        "queued p99 {queued_beside:?} beside vs {queued_alone:?} alone"
    );
}

/// A few of each quiet tenant's transfers of each kind, unmeasured.
async fn measure_b_briefly(api: &Api) {
    for (tenant, i) in QUIET.into_iter().flat_map(|tenant| (0..5).map(move |i| (tenant, i))) {
        let body = t(&format!("warm-s{i}"), "b-bank", "b0", 1);
        assert_eq!(paced(api, "/v1/transfers", tenant, body).await.status, StatusCode::CREATED);
        let body = t(&format!("warm-q{i}"), "b-bank", "b1", 1);
        let mut reply = api.post_async("/v1/transfers", tenant, &body).await;
        while reply.status == StatusCode::TOO_MANY_REQUESTS {
            tokio::time::sleep(retry_after(&reply)).await;
            reply = api.post_async("/v1/transfers", tenant, &body).await;
        }
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    }
}

/// A POST as a client keeping to its limit sends it (setup, unmeasured): again after each `429`'s
/// `Retry-After`.
async fn paced(api: &Api, path: &str, tenant: &str, body: serde_json::Value) -> Reply {
    loop {
        let reply = api.post(path, tenant, body.clone()).await;
        if reply.status != StatusCode::TOO_MANY_REQUESTS {
            return reply;
        }
        tokio::time::sleep(retry_after(&reply)).await;
    }
}

fn retry_after(reply: &Reply) -> Duration {
    let seconds = reply.headers.get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok());
    Duration::from_secs(seconds.unwrap_or(1))
}
