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
use std::time::{Duration, Instant};

use harness::client::transfer_body as t;
use harness::emulators::Ports;
use harness::flood::{Flood, FloodPlan, flood, paced};
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
const A_FLOOD: FloodPlan = FloodPlan {
    sync_clients: 4,
    sync_every: Duration::from_millis(20),
    batch_clients: 2,
    batch_every: Duration::from_millis(100),
    batch_size: 20,
};
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
    let counts = Arc::new(Flood::default());
    let mut flood_secs = 0.0;
    for (n, flooded) in BLOCKS.into_iter().enumerate() {
        let round = format!("r{n}");
        if !flooded {
            alone.pool(measure_quiet_tenants(api.clone(), &round, measure).await?);
            continue;
        }
        let started = Instant::now();
        let until = started + measure + Duration::from_secs(1);
        let flooding = flood(api.clone(), "acme", A_FLOOD, counts.clone(), until);
        beside.pool(measure_quiet_tenants(api.clone(), &round, measure).await?);
        for client in futures::future::join_all(flooding).await {
            client.map_err(io_error)?;
        }
        flood_secs += started.elapsed().as_secs_f64();
        api.stack.drain().await?;
        tokio::time::sleep(SETTLE).await;
    }
    let mut out = String::new();
    let (sent, limited, admitted, failed) = counts.counts();
    let _ = writeln!(
        out,
        "noisy neighbour: A sent {sent} requests in {flood_secs:.1} s, {limited} refused with 429, {failed} failed otherwise, {admitted} operations admitted (limit {PER_SECOND}/s, burst {BURST})"
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
