//! `cargo stack bench`: throughput against fresh local emulators, each figure next to the raw rate
//! of the store it ran on, measured in the same run:
//! - raw TransactWriteItems/s of DynamoDB Local and of moto's DynamoDB, side by side, at 1, 4 and 16
//!   clients: the 5 items one transfer writes (the transfer, two balance items, two entries), as
//!   puts on fresh keys, so nothing contends;
//! - synchronous transfers/s through the HTTP router at the same client counts, on both emulators,
//!   over accounts of each client's own (uncontended) and, on DynamoDB Local, over 8 shared accounts
//!   (contended), into one hot account every transfer credits, and out of one every transfer debits,
//!   with the 503s counted;
//! - queued transfers applied/s with 1 and with the template's `MaximumConcurrency` of worker
//!   invocations at once, and into one hot account;
//! - transfers into one hot account sent with `Prefer: respond-async; wait=5` (the queue nets them,
//!   the answer waits for the outcome), committed/s at the largest client count and 4× it.
//!
//! A shared 2-core machine drifts: each client count runs its raw and synchronous figures
//! interleaved, in rounds, and reports their medians, so each ratio compares figures taken side by
//! side. Figures are printed, never asserted: they depend on the machine and what else runs on it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::io_error;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use futures::stream::{self, StreamExt};
use harness::client::transfer_body;
use harness::emulated::LEDGER_TABLE;
use harness::emulators::{self, Ports};
use harness::{DevAuth, EmulatedStack, Emulators, FaultPlan, Faults, StackOptions, paths, template};
use http::StatusCode;
use ledger::TenantId;
use ledger_client::{Call, Client, Retry, Route, routes};
use ledger_dynamodb::{DynamoStore, items};
use ledger_http::AppState;
use rand::Rng;
use serde_json::{Value, json};
use time::OffsetDateTime;

#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    /// Seconds each timed figure runs for, in each round.
    #[arg(long, default_value_t = 2)]
    pub seconds: u64,
    /// Rounds of the raw and synchronous figures (their medians are reported).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Transfers queued for each worker figure.
    #[arg(long, default_value_t = 5_000)]
    pub queued: usize,
    /// Client counts of the raw and synchronous figures.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 4, 16])]
    pub clients: Vec<usize>,
    /// Only the synchronous table on DynamoDB Local (no moto, no queue figures): the quick loop
    /// while tuning contention.
    #[arg(long)]
    pub sync_only: bool,
    /// Each synchronous client on a store of its own (its own balance cache, contention levels
    /// and turns), as each Lambda instance has, instead of all on one.
    #[arg(long)]
    pub own_stores: bool,
}

const TENANT: &str = "bench";
const CONTENDED_ACCOUNTS: usize = 8;
/// Accounts the queued transfers move between.
const QUEUED_ACCOUNTS: usize = 64;
const FUNDS: u64 = 1_000_000_000_000;
/// The shards of each hot account of the synchronous bench (`ledger::shard`).
const HOT_SHARDS: u16 = 64;
/// DynamoDB Local runs on the JVM: its JIT compiles the hot paths in the first seconds.
const WARM_UP: Duration = Duration::from_secs(10);

pub async fn run(args: BenchArgs) -> io::Result<String> {
    let window = Duration::from_secs(args.seconds);
    let emulators = Emulators::start(Ports::default())?;
    let mut report = String::new();
    let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
    let _ = writeln!(
        report,
        "cargo stack bench on this machine ({cores} cores): medians of {} rounds of {} s per figure\n",
        args.rounds, args.seconds
    );
    raw(emulators.dynamodb_endpoint(), "warm-up", 4, WARM_UP).await?;

    let _ = writeln!(
        report,
        "raw: TransactWriteItems/s of a transfer's 5 items; sync: committed transfers/s through the HTTP router{}\n",
        if args.own_stores { ", each client on a store of its own (as Lambda instances)" } else { "" }
    );
    let _ = writeln!(
        report,
        "| clients | raw, DynamoDB Local | sync, uncontended | × raw | sync, 8 contended accounts | × raw | sync, into one hot account | × uncontended | sync, out of one hot account with overdraft | × uncontended | sync, out of one bounded hot account | × uncontended | raw, moto 5.2.5 | sync on moto, uncontended | × raw |"
    );
    let _ = writeln!(report, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut raw_at_one = f64::NAN;
    for &clients in &args.clients {
        let local_stack =
            EmulatedStack::create(&emulators, &format!("sync-{clients}"), StackOptions::default()).await?;
        let mut local_sync = SyncBench::new(local_stack.state(), clients).await?;
        if args.own_stores {
            let client = emulators.dynamodb().await;
            local_sync.instances = (0..clients)
                .map(|_| {
                    let store = DynamoStore::new(client.clone(), local_stack.table.clone());
                    let state = AppState::new(
                        Arc::new(store),
                        Arc::new(local_stack.queue.clone()),
                        ledger_config::DEFAULT_TENANT_CLAIM,
                    );
                    SyncBench::client(state)
                })
                .collect();
        }
        let moto_sync = if args.sync_only {
            None
        } else {
            let moto_state = AppState::new(
                Arc::new(moto_store(&emulators, &format!("sync-moto-{clients}")).await?),
                Arc::new(local_stack.queue.clone()),
                ledger_config::DEFAULT_TENANT_CLAIM,
            );
            Some(SyncBench::new(moto_state, clients).await?)
        };
        let mut figures: [Vec<Rate>; 8] = Default::default();
        for round in 0..args.rounds {
            let table = format!("raw-{clients}-{round}");
            figures[0]
                .push(raw(emulators.dynamodb_endpoint(), &format!("{table}-local"), clients, window).await?);
            figures[1].push(local_sync.run(Workload::Uncontended, window).await?);
            figures[2].push(local_sync.run(Workload::Contended, window).await?);
            figures[3].push(local_sync.run(Workload::HotCredit, window).await?);
            figures[4].push(local_sync.run(Workload::HotDebit, window).await?);
            figures[5].push(local_sync.run(Workload::HotBoundedDebit, window).await?);
            if let Some(moto_sync) = &moto_sync {
                figures[6]
                    .push(raw(emulators.moto_endpoint(), &format!("{table}-moto"), clients, window).await?);
                figures[7].push(moto_sync.run(Workload::Uncontended, window).await?);
            }
            let this_round: Vec<String> = figures.iter().filter_map(|f| f.last()).map(Rate::render).collect();
            eprintln!("  {clients} clients, round {}: {}", round + 1, this_round.join(" | "));
        }
        let [local, uncontended, contended, hot_credit, hot_debit, hot_bounded, moto, moto_uncontended] =
            figures.map(median);
        if clients == 1 {
            raw_at_one = local.per_s;
        }
        let moto = if args.sync_only {
            "- | - | -".to_owned()
        } else {
            let ratio = moto_uncontended.per_s / moto.per_s;
            format!("{} | {} | {ratio:.2}", moto.render(), moto_uncontended.render())
        };
        let _ = writeln!(
            report,
            "| {clients} | {} | {} | {:.2} | {} | {:.2} | {} | {:.2} | {} | {:.2} | {} | {:.2} | {moto} |",
            local.render(),
            uncontended.render(),
            uncontended.per_s / local.per_s,
            contended.render(),
            contended.per_s / local.per_s,
            hot_credit.render(),
            hot_credit.per_s / uncontended.per_s,
            hot_debit.render(),
            hot_debit.per_s / uncontended.per_s,
            hot_bounded.render(),
            hot_bounded.per_s / uncontended.per_s,
        );
    }

    if args.sync_only {
        return Ok(report);
    }
    let _ = writeln!(
        report,
        "\nqueued: {} transfers among {QUEUED_ACCOUNTS} accounts applied by the worker (DynamoDB Local)\n",
        args.queued
    );
    let _ = writeln!(
        report,
        "| invocations at once | applied/s | × raw (1 client) | invocations | redelivered |"
    );
    let _ = writeln!(report, "|---|---|---|---|---|");
    let template_concurrency =
        harness::queues::event_source(&paths::template(), harness::queues::WORKER_FUNCTION)?.max_concurrency;
    for (concurrency, hot) in [(1, false), (template_concurrency, false), (template_concurrency, true)] {
        let figures = queued(&emulators, concurrency, args.queued, hot).await?;
        let into = if hot { ", every transfer into one account" } else { "" };
        let _ = writeln!(
            report,
            "| {concurrency} (peak {}){into} | {:.0} | {:.2} | {} | {} |",
            figures.peak,
            figures.per_s,
            figures.per_s / raw_at_one,
            figures.invocations,
            figures.redelivered
        );
    }
    let most = args.clients.iter().copied().max().unwrap_or(1);
    let _ = writeln!(
        report,
        "\nhot account through the queue: clients each sending transfers into one account with \
         `Prefer: respond-async; wait=5` (each waits for its answer), worker invocations running all along\n\n\
         | clients | committed within the wait | answers | p50 | p99 |\n|---|---|---|---|---|"
    );
    for clients in [most, 4 * most] {
        let hot = hot_through_queue(&emulators, clients, window * args.rounds as u32).await?;
        let _ = writeln!(
            report,
            "| {clients} | {:.0}/s | {} | {:.0} ms | {:.0} ms |",
            hot.per_s, hot.answers, hot.p50_ms, hot.p99_ms
        );
    }
    drop(emulators);
    Ok(report)
}

struct HotThroughQueue {
    per_s: f64,
    answers: String,
    p50_ms: f64,
    p99_ms: f64,
}

/// `clients` loops of `respond-async; wait=5` transfers into one account for `window`, while the
/// template's concurrency of worker invocations drain the queue.
async fn hot_through_queue(
    emulators: &Emulators,
    clients: usize,
    window: Duration,
) -> io::Result<HotThroughQueue> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stack =
        EmulatedStack::create(emulators, &format!("hot-async-{clients}"), StackOptions::default()).await?;
    let bench = SyncBench::new(stack.state(), clients).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let pollers: Vec<_> = (0..stack.event_source.spec().max_concurrency)
        .map(|_| {
            let (source, handler, stop) = (stack.event_source.clone(), stack.worker(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if source.invoke_once(&handler).await.map(|i| i.received).unwrap_or(0) == 0 {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        })
        .collect();
    let started = Instant::now();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let loops = (0..clients).map(|c| {
        let (bench, run) = (&bench, &run);
        async move {
            let mut answers: Vec<(String, f64)> = Vec::new();
            let mut n = 0u64;
            while started.elapsed() < window {
                let body =
                    transfer_body(&format!("{}-{c}-{n}", &run[..12]), &format!("u{c}a"), "merchant", 1);
                let sent = Instant::now();
                let (status, answer) = bench.post_waiting(body).await?;
                let status = match answer["status"].as_str() {
                    Some(s) if status == StatusCode::ACCEPTED => s.to_owned(),
                    _ => status.as_u16().to_string(),
                };
                answers.push((status, sent.elapsed().as_secs_f64() * 1000.0));
                n += 1;
            }
            Ok::<_, io::Error>(answers)
        }
    });
    let mut answers: Vec<(String, f64)> = Vec::new();
    for outcome in futures::future::join_all(loops).await {
        answers.extend(outcome?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for poller in pollers {
        poller.await.map_err(io_error)?;
    }
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    for (status, _) in &answers {
        *by_status.entry(status.clone()).or_default() += 1;
    }
    let mut latencies: Vec<f64> = answers.iter().map(|(_, ms)| *ms).collect();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    Ok(HotThroughQueue {
        per_s: by_status.get("committed").copied().unwrap_or(0) as f64 / elapsed,
        answers: by_status.iter().map(|(s, n)| format!("{n} × {s}")).collect::<Vec<_>>().join(", "),
        p50_ms: at(0.5),
        p99_ms: at(0.99),
    })
}

/// A rate, with what it counted.
#[derive(Default)]
struct Rate {
    per_s: f64,
    /// Answers (or store errors) other than success, by status (0: a store error).
    failures: BTreeMap<u16, u64>,
}

impl Rate {
    fn render(&self) -> String {
        let mut text = format!("{:.0}/s", self.per_s);
        for (status, count) in &self.failures {
            match status {
                0 => {
                    let _ = write!(text, ", {count} errors");
                }
                status => {
                    let _ = write!(text, ", {count} × {status}");
                }
            }
        }
        text
    }
}

/// The figure of median rate (the upper one of an even count).
fn median(mut figures: Vec<Rate>) -> Rate {
    figures.sort_by(|a, b| a.per_s.total_cmp(&b.per_s));
    let middle = figures.len() / 2;
    if figures.is_empty() { Rate::default() } else { figures.swap_remove(middle) }
}

/// `clients` loops of transactions writing a transfer's 5 items on fresh keys of a fresh table of the
/// emulator at `endpoint`, for `window`.
async fn raw(endpoint: &str, table: &str, clients: usize, window: Duration) -> io::Result<Rate> {
    let client = fresh_table(endpoint, table).await?;
    let started = Instant::now();
    let loops = (0..clients).map(|c| {
        let (client, table) = (client.clone(), table.to_owned());
        tokio::spawn(async move {
            let (mut done, mut errors) = (0u64, 0u64);
            while started.elapsed() < window {
                let items = transfer_items(&table, &format!("raw-{c}-{done}-{errors}"));
                match client.transact_write_items().set_transact_items(Some(items)).send().await {
                    Ok(_) => done += 1,
                    Err(_) => errors += 1,
                }
            }
            (done, errors)
        })
    });
    let (mut done, mut errors) = (0, 0);
    for handle in loops.collect::<Vec<_>>() {
        let (d, e) = handle.await.map_err(io_error)?;
        done += d;
        errors += e;
    }
    let failures = if errors > 0 { BTreeMap::from([(0, errors)]) } else { BTreeMap::new() };
    Ok(Rate { per_s: done as f64 / started.elapsed().as_secs_f64(), failures })
}

/// The items one committed transfer writes, with ids made from `key`: the transfer (put only if new,
/// as the ledger puts it), both balance items and both entries.
fn transfer_items(table: &str, key: &str) -> Vec<TransactWriteItem> {
    let Ok(tenant) = TenantId::parse(TENANT) else { unreachable!("the bench's tenant id is valid") };
    let now = OffsetDateTime::now_utc();
    let request = ledger::fixtures::transfer(key, &format!("{key}-a"), &format!("{key}-b"), 100);
    let mut debit = ledger::fixtures::account(&format!("{key}-a"), true).open(now).balance_state();
    let mut credit = ledger::fixtures::account(&format!("{key}-b"), false).open(now).balance_state();
    let Some(movement) = request.kind.movement().cloned() else { unreachable!("an immediate transfer") };
    let posted = ledger::Effect::Posted;
    let Ok((debit_entry, credit_entry)) =
        ledger::apply(&request.id, &movement, posted, Some(&mut debit), Some(&mut credit), now, None)
    else {
        unreachable!("a transfer from an account that may overdraw applies")
    };
    let put = |item, only_if_new: bool| {
        let put = Put::builder().table_name(table).set_item(Some(item));
        let put = if only_if_new { put.condition_expression("attribute_not_exists(pk)") } else { put };
        put.build().ok().map(|put| TransactWriteItem::builder().put(put).build())
    };
    [
        put(items::transfer_item(&tenant, &request.applied(movement, now)), true),
        put(items::balance_item(&tenant, &debit), false),
        put(items::balance_item(&tenant, &credit), false),
        put(items::entry_item(&tenant, &debit_entry), false),
        put(items::entry_item(&tenant, &credit_entry), false),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A ledger table on moto's DynamoDB (the other emulator of the side-by-side figures).
async fn moto_store(emulators: &Emulators, table: &str) -> io::Result<DynamoStore> {
    Ok(DynamoStore::new(fresh_table(emulators.moto_endpoint(), table).await?, table))
}

/// A client of the DynamoDB at `endpoint`, and a ledger table named `table` made in it.
async fn fresh_table(endpoint: &str, table: &str) -> io::Result<aws_sdk_dynamodb::Client> {
    let client = ledger_dynamodb::client::dynamodb_client(&emulators::sdk_config(endpoint).await);
    let mut spec = template::table(&paths::template(), LEDGER_TABLE)?;
    // As the stacks the sync figures run on make it: without the stream, which slows every write
    // of DynamoDB Local.
    spec.stream_specification = None;
    spec.create(&client, table).await?;
    Ok(client)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Workload {
    /// Each client moves money between two accounts of its own.
    Uncontended,
    /// Every client moves money among the same 8 accounts.
    Contended,
    /// Every client pays from its own account into the same one (a merchant, a fee account).
    HotCredit,
    /// Every client is paid from the same account (a funding or settlement account, with overdraft).
    HotDebit,
    /// Every client is paid from the same account without overdraft (a treasury), funded.
    HotBoundedDebit,
}

/// Clients of the API router (`ledger-client`, one try a request, in process), each sending one
/// transfer at a time.
struct SyncBench {
    api: Client,
    clients: usize,
    /// One router (and store) per client, if set: client `c` sends through `instances[c]`.
    instances: Vec<Client>,
}

impl SyncBench {
    /// A client of a router of its own on `state`.
    fn client(state: AppState) -> Client {
        let auth = DevAuth::new(b"bench-key".to_vec(), state.tenant_claim.clone());
        let token = auth.token(TENANT, Duration::from_secs(3600));
        let router = harness::local_router(state, auth, Arc::new(Faults::new(FaultPlan::none())));
        let transport = Arc::new(harness::client::RouterTransport(router));
        Client::with_transport("http://ledger.local", &token, transport).with_retry(Retry::NONE)
    }

    /// Opens and funds the accounts both workloads use.
    async fn new(state: AppState, clients: usize) -> io::Result<SyncBench> {
        let bench = SyncBench { api: Self::client(state), clients, instances: Vec::new() };
        // The three accounts every client shares are hot (`ledger::shard`).
        let bank = json!({"id": "bank", "currency": "EUR", "allow_overdraft": true, "shards": HOT_SHARDS});
        bench.post(routes::CREATE_ACCOUNT, bank).await?;
        bench
            .post(routes::CREATE_ACCOUNT, json!({"id": "merchant", "currency": "EUR", "shards": HOT_SHARDS}))
            .await?;
        bench
            .post(routes::CREATE_ACCOUNT, json!({"id": "treasury", "currency": "EUR", "shards": HOT_SHARDS}))
            .await?;
        let funded = bench
            .post(routes::CREATE_TRANSFER, transfer_body("fund-treasury", "bank", "treasury", FUNDS))
            .await?;
        if funded != StatusCode::CREATED {
            return Err(io_error(format!("funding the treasury answered {funded}")));
        }
        let own = (0..clients).flat_map(|c| [format!("u{c}a"), format!("u{c}b")]);
        let shared = (0..CONTENDED_ACCOUNTS).map(|i| format!("k{i}"));
        for id in own.chain(shared) {
            bench.open_funded(&id).await?;
        }
        Ok(bench)
    }

    async fn open_funded(&self, id: &str) -> io::Result<()> {
        self.post(routes::CREATE_ACCOUNT, json!({"id": id, "currency": "EUR"})).await?;
        let status = self
            .post(routes::CREATE_TRANSFER, transfer_body(&format!("fund-{id}"), "bank", id, FUNDS))
            .await?;
        if status == StatusCode::CREATED {
            Ok(())
        } else {
            Err(io_error(format!("funding {id} answered {status}")))
        }
    }

    async fn post(&self, route: Route, body: Value) -> io::Result<StatusCode> {
        let answer = self.api.execute(&Call::new(route).body(body)).await.map_err(io_error)?;
        StatusCode::from_u16(answer.status).map_err(io_error)
    }

    /// POSTs a transfer with `Prefer: respond-async; wait=5`: the status and the body.
    async fn post_waiting(&self, body: Value) -> io::Result<(StatusCode, Value)> {
        let call = Call::new(routes::CREATE_TRANSFER).body(body).prefer("respond-async; wait=5");
        let answer = self.api.execute(&call).await.map_err(io_error)?;
        let status = StatusCode::from_u16(answer.status).map_err(io_error)?;
        Ok((status, serde_json::from_slice(&answer.body).unwrap_or(Value::Null)))
    }

    async fn run(&self, workload: Workload, window: Duration) -> io::Result<Rate> {
        let started = Instant::now();
        let run = uuid::Uuid::new_v4().simple().to_string();
        let loops = (0..self.clients).map(|c| {
            let run = &run;
            async move {
                let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
                let mut n = 0u64;
                while started.elapsed() < window {
                    let (debit, credit) = match workload {
                        Workload::Uncontended => (format!("u{c}a"), format!("u{c}b")),
                        Workload::HotCredit => (format!("u{c}a"), "merchant".to_owned()),
                        Workload::HotDebit => ("bank".to_owned(), format!("u{c}b")),
                        Workload::HotBoundedDebit => ("treasury".to_owned(), format!("u{c}b")),
                        Workload::Contended => {
                            let mut rng = rand::rng();
                            let from = rng.random_range(0..CONTENDED_ACCOUNTS);
                            let to = (from + rng.random_range(1..CONTENDED_ACCOUNTS)) % CONTENDED_ACCOUNTS;
                            (format!("k{from}"), format!("k{to}"))
                        }
                    };
                    let body = transfer_body(&format!("{}-{c}-{n}", &run[..12]), &debit, &credit, 1);
                    let api = self.instances.get(c).unwrap_or(&self.api);
                    let answer = api.execute(&Call::new(routes::CREATE_TRANSFER).body(body)).await;
                    let status = StatusCode::from_u16(answer.map_err(io_error)?.status).map_err(io_error)?;
                    // A transfer committed after the window is not counted (the rate is that of the
                    // window), a failure always is.
                    if status != StatusCode::CREATED || started.elapsed() <= window {
                        *statuses.entry(status.as_u16()).or_default() += 1;
                    }
                    n += 1;
                }
                Ok::<_, io::Error>(statuses)
            }
        });
        let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
        for outcome in futures::future::join_all(loops).await {
            for (status, count) in outcome? {
                *statuses.entry(status).or_default() += count;
            }
        }
        let committed = statuses.remove(&201).unwrap_or(0);
        Ok(Rate { per_s: committed as f64 / window.as_secs_f64(), failures: statuses })
    }
}

struct QueuedFigures {
    per_s: f64,
    invocations: usize,
    redelivered: usize,
    peak: usize,
}

/// `transfers` queued among 64 funded accounts (if `hot`, each from one of them into the same
/// one), in batches of 1,000, then applied by up to `concurrency` invocations.
async fn queued(
    emulators: &Emulators,
    concurrency: usize,
    transfers: usize,
    hot: bool,
) -> io::Result<QueuedFigures> {
    let options = StackOptions { visibility_timeout: Some(5), ..StackOptions::default() };
    let stack = EmulatedStack::create(emulators, &format!("queued-{concurrency}-{hot}"), options).await?;
    let bench = SyncBench::new(stack.state(), 0).await?;
    for i in 0..QUEUED_ACCOUNTS {
        bench.open_funded(&format!("q{i}")).await?;
    }
    let mut rng = rand::rng();
    let bodies: Vec<Value> = (0..transfers.div_ceil(1000))
        .map(|b| {
            let batch: Vec<Value> = (0..1000.min(transfers - b * 1000))
                .map(|i| {
                    let from = rng.random_range(1..QUEUED_ACCOUNTS);
                    let to =
                        if hot { 0 } else { (from + rng.random_range(1..QUEUED_ACCOUNTS)) % QUEUED_ACCOUNTS };
                    transfer_body(&format!("q{b}-{i}"), &format!("q{from}"), &format!("q{to}"), 1)
                })
                .collect();
            json!({"id": format!("bench-{b}"), "transfers": batch})
        })
        .collect();
    let posted: Vec<io::Result<StatusCode>> =
        stream::iter(bodies.into_iter().map(|body| bench.post(routes::SUBMIT_BATCH, body)))
            .buffer_unordered(4)
            .collect()
            .await;
    for status in posted {
        let status = status?;
        if status != StatusCode::ACCEPTED {
            return Err(io_error(format!("a batch answered {status}")));
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
        // One message per batch: any more were delivered again.
        redelivered: drained.received().saturating_sub(transfers.div_ceil(1000)),
        peak: drained.peak_concurrency,
    })
}
