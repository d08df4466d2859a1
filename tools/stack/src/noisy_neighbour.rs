//! `cargo stack bench noisy-neighbour`: how much a flooding tenant slows the others. Tenant A
//! floods the API with synchronous transfers and batches far beyond its limit, ignoring every
//! `429`, while quiet tenants keep to theirs, with the worker running as the event source mapping
//! runs it. Printed: the quiet tenants' synchronous latency and queued enqueue→commit latency,
//! p50/p99/max alone and beside the flood, and their ratio; A's requests, refusals and admitted
//! operations. What must hold whatever the figures (the quiet tenants never refused, A within its
//! limit, all their work done, their queued work before A's backlog) is a test:
//! `tests/emulated/tests/noisy_neighbour.rs`.
//!
//! The two conditions are measured in interleaved blocks, balanced against drift (alone, beside,
//! beside, alone, beside, alone, alone, beside), each condition's samples pooled: whatever the
//! machine does meanwhile (a JIT, a collection, another process) lands in both conditions alike.

use std::fmt::Write as _;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use harness::client::{Reply, transfer_body as t};
use harness::emulators::Ports;
use harness::{Api, EmulatedStack, Emulators, StackOptions};
use http::StatusCode;
use ledger::{RateLimit, TenantId, TransferId, TransferStatus};
use serde_json::json;
use tokio::time::MissedTickBehavior;

use crate::dashboard::percentile;
use crate::io_error;

/// Every tenant's limit, sized as a deployment sizes it: the tenants' limits together well under
/// what the platform serves (here one 2-core machine with both emulators, some 30-50 transfers a
/// second).
const PER_SECOND: u32 = 6;
const BURST: u32 = 12;
/// The blocks, in order (`true`: beside the flood).
const BLOCKS: [bool; 8] = [false, true, true, false, true, false, false, true];
/// After a flood, what it queued is drained and the machine given this long before the next block.
const SETTLE: Duration = Duration::from_secs(2);
const QUIET: [&str; 3] = ["globex", "initech", "umbrella"];
const B_EVERY: Duration = Duration::from_millis(400);
const A_SYNC_CLIENTS: usize = 4;
const A_SYNC_EVERY: Duration = Duration::from_millis(20);
const A_BATCH_CLIENTS: usize = 2;
const A_BATCH_EVERY: Duration = Duration::from_millis(100);
const A_BATCH_SIZE: usize = 20;
/// How often a queued transfer is read from the store to see it committed.
const OBSERVE_EVERY: Duration = Duration::from_millis(10);

#[derive(clap::Args, Clone, Debug)]
pub struct NoisyArgs {
    /// Seconds each block measures.
    #[arg(long, default_value_t = 12)]
    pub block_seconds: u64,
}

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

#[derive(Default)]
struct Flood {
    sent: AtomicU32,
    limited: AtomicU32,
    admitted_operations: AtomicU32,
}

/// The `q` quantile of `samples`, in ms.
fn quantile_ms(samples: &[Duration], q: f64) -> f64 {
    let ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    percentile(&ms, q).unwrap_or(f64::NAN)
}

fn spread(samples: &[Duration]) -> String {
    let at = |q| quantile_ms(samples, q);
    format!("{:.1} / {:.1} / {:.1}", at(0.5), at(0.99), at(1.0))
}

fn p99(samples: &[Duration]) -> f64 {
    quantile_ms(samples, 0.99)
}

pub async fn run(args: NoisyArgs) -> io::Result<String> {
    let measure = Duration::from_secs(args.block_seconds);
    let emulators = Emulators::start(Ports::default())?;
    let options = StackOptions {
        visibility_timeout: Some(10),
        tenant_limit: Some(RateLimit::new(PER_SECOND, BURST).map_err(io_error)?),
        ..StackOptions::default()
    };
    let api = Arc::new(Api::on(EmulatedStack::create(&emulators, "noisy-neighbour", options).await?));
    tokio::spawn(api.stack.event_source.clone().run(api.stack.worker()));
    for (tenant, prefix, accounts) in [("acme", "a", 8)].into_iter().chain(QUIET.map(|t| (t, "b", 4))) {
        let open = |id: String, overdraft| json!({"id": id, "currency": "EUR", "allow_overdraft": overdraft});
        paced(&api, "/v1/accounts", tenant, open(format!("{prefix}-bank"), true)).await;
        for i in 0..accounts {
            paced(&api, "/v1/accounts", tenant, open(format!("{prefix}{i}"), false)).await;
        }
    }
    for i in 0..8 {
        paced(&api, "/v1/transfers", "acme", t(&format!("fund-a{i}"), "a-bank", &format!("a{i}"), 1_000_000))
            .await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (mut alone, mut beside) = (Latencies::default(), Latencies::default());
    let flood = Arc::new(Flood::default());
    let mut flood_secs = 0.0;
    for (n, flooded) in BLOCKS.into_iter().enumerate() {
        let round = format!("r{n}");
        if !flooded {
            alone.pool(measure_quiet_tenants(api.clone(), &round, measure).await?);
            continue;
        }
        let started = Instant::now();
        let flooding = flood_a(api.clone(), flood.clone(), started + measure + Duration::from_secs(1));
        beside.pool(measure_quiet_tenants(api.clone(), &round, measure).await?);
        for client in futures::future::join_all(flooding).await {
            client.map_err(io_error)?;
        }
        flood_secs += started.elapsed().as_secs_f64();
        api.stack.drain().await?;
        tokio::time::sleep(SETTLE).await;
    }
    let mut out = String::new();
    let (sent, limited, admitted) = (
        flood.sent.load(Ordering::Relaxed),
        flood.limited.load(Ordering::Relaxed),
        flood.admitted_operations.load(Ordering::Relaxed),
    );
    let _ = writeln!(
        out,
        "noisy neighbour: A sent {sent} requests in {flood_secs:.1} s, {limited} refused with 429, {admitted} operations admitted (limit {PER_SECOND}/s, burst {BURST})"
    );
    let _ = writeln!(
        out,
        "| quiet tenants | alone p50 / p99 / max ms | beside the flood | p99 beside ÷ alone | samples |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    for (label, a, b) in [
        ("synchronous", &alone.sync, &beside.sync),
        ("queued, enqueue→commit", &alone.queued, &beside.queued),
    ] {
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {:.2}× | {} and {} |",
            spread(a),
            spread(b),
            p99(b) / p99(a),
            a.len(),
            b.len()
        );
    }
    Ok(out)
}

async fn measure_quiet_tenants(api: Arc<Api>, round: &str, measure: Duration) -> io::Result<Latencies> {
    let mut pooled = Latencies::default();
    let blocks = QUIET.map(|tenant| measure_quiet(api.clone(), tenant, round.to_owned(), measure));
    for block in futures::future::join_all(blocks).await {
        pooled.pool(block?);
    }
    Ok(pooled)
}

async fn measure_quiet(
    api: Arc<Api>,
    tenant: &'static str,
    round: String,
    measure: Duration,
) -> io::Result<Latencies> {
    let sync = {
        let (api, round) = (api.clone(), round.clone());
        tokio::spawn(async move {
            let mut beat = tokio::time::interval(B_EVERY);
            beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let (started, mut samples, mut i) = (Instant::now(), Vec::new(), 0);
            while started.elapsed() < measure {
                beat.tick().await;
                let sent = Instant::now();
                let reply = api
                    .post(
                        "/v1/transfers",
                        tenant,
                        t(&format!("{round}-s{i}"), "b-bank", &format!("b{}", i % 4), 1),
                    )
                    .await;
                if reply.status == StatusCode::CREATED {
                    samples.push(sent.elapsed());
                }
                i += 1;
            }
            samples
        })
    };
    let mut beat = tokio::time::interval(B_EVERY);
    beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let (started, mut observers, mut i) = (Instant::now(), Vec::new(), 0);
    while started.elapsed() < measure {
        beat.tick().await;
        let id = format!("{round}-q{i}");
        let reply =
            api.post_async("/v1/transfers", tenant, &t(&id, "b-bank", &format!("b{}", i % 4), 1)).await;
        i += 1;
        if reply.status != StatusCode::ACCEPTED {
            continue;
        }
        let (accepted, store) = (Instant::now(), api.stack.store.clone());
        observers.push(tokio::spawn(async move {
            let (tenant, id) = (TenantId::parse(tenant).ok()?, TransferId::parse(id).ok()?);
            while accepted.elapsed() < Duration::from_secs(120) {
                let transfer =
                    store.get_transfer(&tenant, &id, time::OffsetDateTime::now_utc()).await.ok()?;
                if transfer.status != TransferStatus::Queued {
                    return Some(accepted.elapsed());
                }
                tokio::time::sleep(OBSERVE_EVERY).await;
            }
            None
        }));
    }
    let queued =
        futures::future::join_all(observers).await.into_iter().filter_map(|r| r.ok().flatten()).collect();
    Ok(Latencies { sync: sync.await.map_err(io_error)?, queued })
}

fn flood_a(api: Arc<Api>, flood: Arc<Flood>, until: Instant) -> Vec<tokio::task::JoinHandle<()>> {
    let account = |n: usize| format!("a{}", n % 8);
    let client =
        move |every: Duration,
              request: Box<dyn Fn(usize) -> (&'static str, serde_json::Value, u32) + Send>| {
            let (api, flood) = (api.clone(), flood.clone());
            tokio::spawn(async move {
                let mut beat = tokio::time::interval(every);
                beat.set_missed_tick_behavior(MissedTickBehavior::Skip);
                let mut i = 0;
                while Instant::now() < until {
                    beat.tick().await;
                    let (path, body, operations) = request(i);
                    let status = api.post(path, "acme", body).await.status;
                    flood.sent.fetch_add(1, Ordering::Relaxed);
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        flood.limited.fetch_add(1, Ordering::Relaxed);
                    } else if status.is_success() {
                        flood.admitted_operations.fetch_add(operations, Ordering::Relaxed);
                    }
                    i += 1;
                }
            })
        };
    let sync = (0..A_SYNC_CLIENTS).map(|c| {
        client(
            A_SYNC_EVERY,
            Box::new(move |i| ("/v1/transfers", t(&format!("a{c}-{i}"), &account(i), &account(i + 3), 1), 1)),
        )
    });
    let batches = (0..A_BATCH_CLIENTS).map(|c| {
        client(
            A_BATCH_EVERY,
            Box::new(move |i| {
                let transfers: Vec<_> = (0..A_BATCH_SIZE)
                    .map(|n| t(&format!("ab{c}-{i}-{n}"), &account(n), &account(n + 5), 1))
                    .collect();
                (
                    "/v1/transfer-batches",
                    json!({"id": format!("ab{c}-{i}"), "transfers": transfers}),
                    A_BATCH_SIZE as u32,
                )
            }),
        )
    });
    sync.chain(batches).collect()
}

/// A POST as a client keeping to its limit sends it (setup): again after each `429`'s `Retry-After`.
async fn paced(api: &Api, path: &str, tenant: &str, body: serde_json::Value) -> Reply {
    loop {
        let reply = api.post(path, tenant, body.clone()).await;
        if reply.status != StatusCode::TOO_MANY_REQUESTS {
            return reply;
        }
        let seconds = reply.headers.get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok());
        tokio::time::sleep(Duration::from_secs(seconds.unwrap_or(1))).await;
    }
}
