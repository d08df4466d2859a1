//! `cargo stack bench`: throughput against fresh local emulators, each figure next to the raw rate
//! of the store it ran on, measured in the same run:
//! - raw 5-put TransactWriteItems/s of DynamoDB Local and of moto's DynamoDB, side by side, at 1, 4
//!   and 16 clients (the shape of one transfer's write);
//! - synchronous transfers/s through the HTTP router at 1, 4 and 16 clients, over accounts of their
//!   own (uncontended) and over 8 shared accounts (contended), with the 503s counted;
//! - queued transfers applied/s with 1 and with the template's `MaximumConcurrency` of worker
//!   invocations at once.
//!
//! Figures are printed, never asserted: they depend on the machine and what else runs on it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use axum::Router;
use axum::body::Body;
use futures::stream::{self, StreamExt};
use harness::emulators::{self, Ports};
use harness::stack::LEDGER_TABLE;
use harness::{DevAuth, Emulators, Stack, StackOptions, paths, template};
use http::{Request, StatusCode};
use ledger_dynamodb::DynamoStore;
use ledger_http::AppState;
use rand::Rng;
use serde_json::{Value, json};
use tower::ServiceExt;

#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    /// Seconds each timed figure runs for.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Transfers queued for each worker figure.
    #[arg(long, default_value_t = 5_000)]
    pub queued: usize,
    /// Client counts of the raw and synchronous figures.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 4, 16])]
    pub clients: Vec<usize>,
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

const TENANT: &str = "bench";
const CONTENDED_ACCOUNTS: usize = 8;
/// Accounts the queued transfers move between.
const QUEUED_ACCOUNTS: usize = 64;
const FUNDS: u64 = 1_000_000_000_000;

pub async fn run(args: BenchArgs) -> io::Result<String> {
    let window = Duration::from_secs(args.seconds);
    let emulators = Emulators::start(Ports::default())?;
    let mut report = String::new();
    let _ = writeln!(
        report,
        "cargo stack bench: {} s per figure, on this machine ({} cores)\n",
        args.seconds,
        cores()
    );

    // Raw: both emulators, same workload, side by side.
    let _ = writeln!(report, "raw 5-put TransactWriteItems/s");
    let _ = writeln!(report, "| clients | DynamoDB Local | moto 5.2.5 (serial) |\n|---|---|---|");
    let mut raw_local: BTreeMap<usize, f64> = BTreeMap::new();
    for &clients in &args.clients {
        let local =
            raw(emulators.dynamodb_endpoint(), &format!("raw-local-{clients}"), clients, window).await?;
        let moto = raw(emulators.moto_endpoint(), &format!("raw-moto-{clients}"), clients, window).await?;
        raw_local.insert(clients, local.per_s);
        let _ = writeln!(report, "| {clients} | {} | {} |", local.render(), moto.render());
    }

    // Synchronous transfers through the router, on DynamoDB Local.
    let _ = writeln!(report, "\nsynchronous transfers/s through the HTTP router (DynamoDB Local)");
    let _ = writeln!(
        report,
        "| clients | uncontended | × raw | contended (8 accounts) | × raw |\n|---|---|---|---|---|"
    );
    for &clients in &args.clients {
        let stack = Stack::create(&emulators, &format!("sync-{clients}"), StackOptions::default()).await?;
        let bench = SyncBench::new(stack.state(), clients).await?;
        let uncontended = bench.run(Workload::Uncontended, window).await?;
        let contended = bench.run(Workload::Contended, window).await?;
        let raw = raw_local.get(&clients).copied().unwrap_or(f64::NAN);
        let _ = writeln!(
            report,
            "| {clients} | {} | {:.2} | {} | {:.2} |",
            uncontended.render(),
            uncontended.per_s / raw,
            contended.render(),
            contended.per_s / raw
        );
    }
    // The same synchronous path on moto, for the side-by-side view of the emulators.
    let moto_clients: Vec<usize> = [1, 16].into_iter().filter(|c| args.clients.contains(c)).collect();
    for clients in moto_clients {
        let store = moto_store(&emulators, &format!("sync-moto-{clients}")).await?;
        let state = AppState::new(
            store,
            fresh_queue(&emulators, clients).await?,
            ledger_config::DEFAULT_TENANT_CLAIM,
        );
        let bench = SyncBench::new(state, clients).await?;
        let uncontended = bench.run(Workload::Uncontended, window).await?;
        let _ = writeln!(report, "| {clients} (moto) | {} | | | |", uncontended.render());
    }

    // Queued transfers: 1 worker invocation at a time, then the template's maximum.
    let _ = writeln!(
        report,
        "\nqueued transfers applied/s by the worker (DynamoDB Local, {} transfers)",
        args.queued
    );
    let _ = writeln!(
        report,
        "| invocations at once | applied/s | × raw (1 client) | invocations | redelivered |\n|---|---|---|---|---|"
    );
    let spec_concurrency = {
        let stack = Stack::create(&emulators, "queued-spec", StackOptions::default()).await?;
        stack.event_source.spec().max_concurrency
    };
    for concurrency in [1, spec_concurrency] {
        let figures = queued(&emulators, concurrency, args.queued).await?;
        let raw = raw_local.get(&1).copied().unwrap_or(f64::NAN);
        let _ = writeln!(
            report,
            "| {concurrency} (peak {}) | {:.0} | {:.2} | {} | {} |",
            figures.peak,
            figures.per_s,
            figures.per_s / raw,
            figures.invocations,
            figures.redelivered
        );
    }
    drop(emulators);
    Ok(report)
}

fn cores() -> usize {
    std::thread::available_parallelism().map(usize::from).unwrap_or(1)
}

/// A rate and what it counted.
struct Rate {
    per_s: f64,
    done: u64,
    errors: u64,
}

impl Rate {
    fn render(&self) -> String {
        if self.errors > 0 {
            format!("{:.0}/s ({} errors)", self.per_s, self.errors)
        } else {
            format!("{:.0}/s", self.per_s)
        }
    }
}

/// `clients` loops of 5-put transactions on a fresh table of the emulator at `endpoint`, for `window`.
async fn raw(endpoint: &str, table: &str, clients: usize, window: Duration) -> io::Result<Rate> {
    let client = ledger_dynamodb::client::dynamodb_client(&emulators::sdk_config(endpoint).await);
    template::table(&paths::template(), LEDGER_TABLE)?.create(&client, table).await?;
    let started = Instant::now();
    let loops = (0..clients).map(|c| {
        let (client, table) = (client.clone(), table.to_owned());
        tokio::spawn(async move {
            let (mut done, mut errors) = (0u64, 0u64);
            while started.elapsed() < window {
                let items: Vec<TransactWriteItem> = (0..5)
                    .filter_map(|i| {
                        let put = Put::builder()
                            .table_name(&table)
                            .item("pk", AttributeValue::S(format!("raw#{c}#{done}#{errors}#{i}")))
                            .item("sk", AttributeValue::S("X".into()))
                            .item("amount", AttributeValue::N("100".into()))
                            .condition_expression("attribute_not_exists(pk)")
                            .build()
                            .ok()?;
                        Some(TransactWriteItem::builder().put(put).build())
                    })
                    .collect();
                match client.transact_write_items().set_transact_items(Some(items)).send().await {
                    Ok(_) => done += 1,
                    Err(_) => errors += 1,
                }
            }
            (done, errors)
        })
    });
    let mut rate = Rate { per_s: 0.0, done: 0, errors: 0 };
    for handle in loops.collect::<Vec<_>>() {
        let (done, errors) = handle.await.map_err(other)?;
        rate.done += done;
        rate.errors += errors;
    }
    rate.per_s = rate.done as f64 / started.elapsed().as_secs_f64();
    Ok(rate)
}

/// A ledger table on moto's DynamoDB (the other emulator of the side-by-side figures).
async fn moto_store(emulators: &Emulators, table: &str) -> io::Result<DynamoStore> {
    let client =
        ledger_dynamodb::client::dynamodb_client(&emulators::sdk_config(emulators.moto_endpoint()).await);
    template::table(&paths::template(), LEDGER_TABLE)?.create(&client, table).await?;
    Ok(DynamoStore::new(client, table))
}

/// A queue the synchronous path never uses, for the moto store's router.
async fn fresh_queue(emulators: &Emulators, n: usize) -> io::Result<ledger_sqs::TransferQueue> {
    let stack = Stack::create(emulators, &format!("sync-moto-queue-{n}"), StackOptions::default()).await?;
    Ok(stack.queue)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Workload {
    /// Each client moves money between two accounts of its own.
    Uncontended,
    /// Every client moves money among the same 8 accounts.
    Contended,
}

struct SyncBench {
    router: Router,
    token: String,
    clients: usize,
}

impl SyncBench {
    /// Opens and funds the accounts both workloads use.
    async fn new(state: AppState, clients: usize) -> io::Result<SyncBench> {
        let auth = DevAuth::new(b"bench-key".to_vec(), state.tenant_claim.clone());
        let token = auth.token(TENANT, Duration::from_secs(3600));
        let router =
            harness::local_router(state, auth, Arc::new(harness::Faults::new(harness::FaultPlan::none())));
        let bench = SyncBench { router, token, clients };
        bench.post("/v1/accounts", json!({"id": "bank", "currency": "EUR", "allow_overdraft": true})).await?;
        let own = (0..clients).flat_map(|c| [format!("u{c}a"), format!("u{c}b")]);
        let shared = (0..CONTENDED_ACCOUNTS).map(|i| format!("k{i}"));
        for id in own.chain(shared) {
            bench.post("/v1/accounts", json!({"id": id, "currency": "EUR"})).await?;
            let fund = harness::client::transfer_body(&format!("fund-{id}"), "bank", &id, FUNDS);
            let status = bench.post("/v1/transfers", fund).await?;
            if status != StatusCode::CREATED {
                return Err(other(format!("funding {id} answered {status}")));
            }
        }
        Ok(bench)
    }

    async fn post(&self, path: &str, body: Value) -> io::Result<StatusCode> {
        let request = Request::post(path)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {}", self.token))
            .body(Body::from(body.to_string()))
            .map_err(other)?;
        Ok(self.router.clone().oneshot(request).await.map_err(other)?.status())
    }

    async fn run(&self, workload: Workload, window: Duration) -> io::Result<SyncRate> {
        let started = Instant::now();
        let tag = if workload == Workload::Uncontended { "u" } else { "k" };
        let loops = (0..self.clients).map(|c| async move {
            let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
            let mut n = 0u64;
            while started.elapsed() < window {
                let (debit, credit) = match workload {
                    Workload::Uncontended => (format!("u{c}a"), format!("u{c}b")),
                    Workload::Contended => {
                        let mut rng = rand::rng();
                        let from = rng.random_range(0..CONTENDED_ACCOUNTS);
                        let to = (from + rng.random_range(1..CONTENDED_ACCOUNTS)) % CONTENDED_ACCOUNTS;
                        (format!("k{from}"), format!("k{to}"))
                    }
                };
                let body = harness::client::transfer_body(&format!("{tag}-{c}-{n}"), &debit, &credit, 1);
                let status = self.post("/v1/transfers", body).await?;
                *statuses.entry(status.as_u16()).or_default() += 1;
                n += 1;
            }
            Ok::<_, io::Error>(statuses)
        });
        let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
        for outcome in futures::future::join_all(loops).await {
            for (status, count) in outcome? {
                *statuses.entry(status).or_default() += count;
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        let committed = statuses.get(&201).copied().unwrap_or(0);
        Ok(SyncRate { per_s: committed as f64 / elapsed, statuses })
    }
}

struct SyncRate {
    /// Committed transfers per second.
    per_s: f64,
    statuses: BTreeMap<u16, u64>,
}

impl SyncRate {
    fn render(&self) -> String {
        let unavailable = self.statuses.get(&503).copied().unwrap_or(0);
        let others: u64 =
            self.statuses.iter().filter(|(s, _)| **s != 201 && **s != 503).map(|(_, n)| n).sum();
        let mut text = format!("{:.0}/s, {unavailable} × 503", self.per_s);
        if others > 0 {
            let _ = write!(text, ", {others} other");
        }
        text
    }
}

struct QueuedFigures {
    per_s: f64,
    invocations: usize,
    redelivered: usize,
    peak: usize,
}

/// `transfers` queued among 64 funded accounts, then applied by up to `concurrency` invocations.
async fn queued(emulators: &Emulators, concurrency: usize, transfers: usize) -> io::Result<QueuedFigures> {
    let options = StackOptions { visibility_timeout: Some(5), ..StackOptions::default() };
    let stack = Stack::create(emulators, &format!("queued-{concurrency}"), options).await?;
    let bench = SyncBench::new(stack.state(), 0).await?;
    for i in 0..QUEUED_ACCOUNTS {
        let id = format!("q{i}");
        bench.post("/v1/accounts", json!({"id": id, "currency": "EUR"})).await?;
        bench
            .post("/v1/transfers", harness::client::transfer_body(&format!("fund-{id}"), "bank", &id, FUNDS))
            .await?;
    }
    let mut rng = rand::rng();
    let bodies: Vec<Value> = (0..transfers.div_ceil(1000))
        .map(|b| {
            let batch: Vec<Value> = (0..1000.min(transfers - b * 1000))
                .map(|i| {
                    let from = rng.random_range(0..QUEUED_ACCOUNTS);
                    let to = (from + rng.random_range(1..QUEUED_ACCOUNTS)) % QUEUED_ACCOUNTS;
                    harness::client::transfer_body(
                        &format!("q{b}-{i}"),
                        &format!("q{from}"),
                        &format!("q{to}"),
                        1,
                    )
                })
                .collect();
            json!({"id": format!("bench-{b}"), "transfers": batch})
        })
        .collect();
    let posted: Vec<io::Result<StatusCode>> =
        stream::iter(bodies.into_iter().map(|body| bench.post("/v1/transfer-batches", body)))
            .buffer_unordered(4)
            .collect()
            .await;
    for status in posted {
        let status = status?;
        if status != StatusCode::ACCEPTED {
            return Err(other(format!("a batch answered {status}")));
        }
    }
    let started = Instant::now();
    let source = stack.event_source.clone().with_concurrency(concurrency);
    let drained = source.drain(&stack.worker(), Duration::from_secs(600)).await?;
    // The drain notices the empty queue within one 200 ms check: not counted as work.
    let elapsed = (started.elapsed().as_secs_f64() - 0.2).max(0.001);
    Ok(QueuedFigures {
        per_s: transfers as f64 / elapsed,
        invocations: drained.invocations.len(),
        redelivered: drained.received().saturating_sub(transfers),
        peak: drained.peak_concurrency,
    })
}
