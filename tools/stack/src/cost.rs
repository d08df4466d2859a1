//! `cargo stack cost`: what a million operations cost on AWS, from
//! - a price file (`tools/stack/data/prices.json`: its region and date, and the assumptions this
//!   machine cannot measure, printed beside the figures they feed);
//! - the capacity each operation consumes (`capacity.rs`);
//! - what the release binaries measurably do per invocation here, run under the local Runtime API
//!   against the emulators: CPU time (all threads, from the scheduler) and bytes of log lines (EMF
//!   metrics included).
//!
//! Lambda's duration is modelled, not guessed: the measured CPU time, stretched by the share of a
//! vCPU Lambda gives the memory size (a full one at 1,769 MB), plus the store's round trips. The
//! cheapest memory size for the committed transfer is the one template.yaml should set ("power
//! tuning on paper").

use crate::{io_error, ms};
use std::fmt::Write as _;
use std::time::Duration;

use harness::emulators::Ports;
use harness::{EmulatedStack, Emulators, StackOptions, paths};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::capacity::{self, Operation};
use crate::functions::{self, Binary};
use crate::runtime_api::LocalFunction;

#[derive(clap::Args, Clone, Debug)]
pub struct CostArgs {
    /// Invocations measured for each operation.
    #[arg(long, default_value_t = 200)]
    pub invocations: usize,
    /// Measure the binaries in this directory (another build's) instead of building this tree's.
    #[arg(long)]
    pub prebuilt: Option<std::path::PathBuf>,
}

#[derive(Deserialize)]
pub struct Prices {
    pub region: String,
    pub as_of: String,
    pub api_gateway_http_per_million: f64,
    pub lambda_requests_per_million: f64,
    pub lambda_arm64_per_gb_second: f64,
    pub dynamodb_wru_per_million: f64,
    pub dynamodb_rru_per_million: f64,
    dynamodb_wcu_hour: f64,
    dynamodb_rcu_hour: f64,
    sqs_standard_per_million: f64,
    logs_ingestion_per_gb: f64,
    xray_traces_per_million: f64,
    custom_metric_month: f64,
    assumptions: Assumptions,
}

#[derive(Deserialize)]
struct Assumptions {
    full_vcpu_at_mb: f64,
    dynamodb_read_ms: f64,
    dynamodb_transaction_ms: f64,
    sqs_send_ms: f64,
    xray_sampled_share: f64,
    platform_log_bytes_per_invocation: f64,
    sqs_poller_requests_per_message: f64,
    autoscaling_target_utilisation: f64,
}

impl Prices {
    pub fn load() -> std::io::Result<Self> {
        let path = paths::workspace_root().join("tools/stack/data/prices.json");
        serde_json::from_str(&std::fs::read_to_string(&path)?).map_err(io_error)
    }
}

/// Memory sizes the model compares, in MB.
const MEMORY_SIZES: [u32; 5] = [128, 256, 512, 1024, 1769];
/// What the API's latency is worth: the memory size chosen is the fastest whose $ per million is
/// within this share of the cheapest.
const LATENCY_WORTH: f64 = 0.005;
/// Hours in a month, as AWS bills them.
const HOURS_A_MONTH: f64 = 730.0;
/// Transfers the worker receives a message for in one invocation (respond-async: one message
/// each; the event source's batch at a moderate rate).
const QUEUED_PER_INVOCATION: usize = 10;
/// The account whose metadata is as large as the domain allows.
const LARGE: &str = "large-metadata";
/// Transfers in a submitted batch.
const BATCH: usize = 100;

/// What one kind of invocation did here, on average.
#[derive(Clone, Copy, Default)]
struct Measured {
    cpu: Duration,
    wall: Duration,
    log_bytes: f64,
    /// Bytes of the answer handed back to Lambda (for the API: the response with its headers).
    response_bytes: f64,
}

/// Invocations of one function on an operation's path: what one does, the share of it one
/// operation takes, and the calls it waits for one after the other.
#[derive(Clone, Copy)]
struct Invocation {
    measured: Measured,
    share: f64,
    reads: f64,
    writes: f64,
    sqs_sends: f64,
}

impl Invocation {
    /// One invocation per operation (a request), waiting for `reads` and `writes` in turn.
    fn each(measured: Measured, reads: f64, writes: f64) -> Self {
        Self { measured, share: 1.0, reads, writes, sqs_sends: 0.0 }
    }
}

/// An operation as a caller sees it: the invocations it takes and the capacity it consumes.
struct Priced {
    name: &'static str,
    api: Invocation,
    worker: Option<Invocation>,
    rcu: f64,
    wcu: f64,
    /// SQS messages per operation.
    sqs_messages: f64,
}

pub async fn run(args: CostArgs) -> std::io::Result<String> {
    let prices = Prices::load()?;
    let dir = functions::binaries(args.prebuilt)?;
    let emulators = Emulators::start(Ports::default())?;
    let stack = EmulatedStack::create(&emulators, "cost", StackOptions::default()).await?;
    functions::open_sample_accounts(&stack).await?;
    let env = functions::environment(&emulators, &stack);
    let n = args.invocations;

    let mut api =
        LocalFunction::start(&dir.join(Binary::Api.package()), Binary::Api.memory_mb()?, &env).await?;
    api.ready().await?;
    // The JVM under DynamoDB Local compiles its hot paths first; the get-transfer sample's id exists.
    measure(&mut api, 300, |i| transfer_event(&format!("warm-{i}"), false)).await?;
    measure(&mut api, 1, |_| functions::api_event("create-transfer.json", &[])).await?;

    let committed = measure(&mut api, n, |i| transfer_event(&format!("sync-{i}"), false)).await?;
    let claimed = measure(&mut api, n, |i| transfer_event(&format!("async-{i}"), true)).await?;
    let batched = measure(&mut api, n.div_ceil(10), |i| batch_event(&format!("batch-{i}"))).await?;
    let account_created = measure(&mut api, n, |i| {
        functions::api_event("create-account.json", &[("id", json!(format!("acc-{i}")))])
    })
    .await?;
    let account_read = measure(&mut api, n, |_| functions::api_event("get-account.json", &[])).await?;
    let tag = etag(&api_response(&mut api, account_event("alice", None)?).await?)?;
    let not_modified = measure(&mut api, n, |_| account_event("alice", Some(&tag))).await?;
    let transfer_read = measure(&mut api, n, |_| functions::api_event("get-transfer.json", &[])).await?;
    // Repeated reads of an account with the largest metadata the domain allows.
    let metadata = serde_json::to_value(capacity::largest_metadata()).map_err(io_error)?;
    api_response(
        &mut api,
        functions::api_event("create-account.json", &[("id", json!(LARGE)), ("metadata", metadata)])?,
    )
    .await?;
    let large_read = measure(&mut api, n, |_| account_event(LARGE, None)).await?;
    let large_tag = etag(&api_response(&mut api, account_event(LARGE, None)?).await?)?;
    let large_not_modified = measure(&mut api, n, |_| account_event(LARGE, Some(&large_tag))).await?;
    let statement = measure(&mut api, n, |_| functions::api_event("get-statement.json", &[])).await?;
    let rss = peak_rss(&api);
    api.stop().await;

    let mut worker =
        LocalFunction::start(&dir.join(Binary::Worker.package()), Binary::Worker.memory_mb()?, &env).await?;
    worker.ready().await?;
    let mut queued_events = Vec::new();
    for i in 0..n.div_ceil(QUEUED_PER_INVOCATION) {
        queued_events.push(queued_event(&stack, &format!("wq-{i}")).await?);
    }
    let queued = measure(&mut worker, queued_events.len(), |i| Ok(queued_events[i].clone())).await?;
    let mut batch_events = Vec::new();
    for i in 0..n.div_ceil(10) {
        batch_events.push(functions::worker_event(&stack, &format!("wb-{i}"), BATCH).await?);
    }
    let batch_applied = measure(&mut worker, batch_events.len(), |i| Ok(batch_events[i].clone())).await?;
    let worker_rss = peak_rss(&worker);
    worker.stop().await;

    let typical = capacity::sample_items(16, &Default::default());
    let operations = capacity::operations(&typical);
    let units = |name: &str| -> std::io::Result<(f64, f64)> {
        operations
            .iter()
            .find(|o: &&Operation| o.name == name)
            .map(|o| (o.rcu, o.wcu as f64))
            .ok_or_else(|| io_error(format!("no capacity row {name}")))
    };
    // Every API request first waits for its tenant's request bucket (one conditional write),
    // counted as a write like the others.
    let limit_waits = |row: &str| capacity::limit_spends(row) as f64;
    let sync = |name: &'static str, measured: Measured, row: &str, reads: f64, writes: f64| {
        units(row).map(|(rcu, wcu)| Priced {
            name,
            api: Invocation::each(measured, reads, writes + limit_waits(row)),
            worker: None,
            rcu,
            wcu,
            sqs_messages: 0.0,
        })
    };
    let (claim_rcu, claim_wcu) = units(capacity::CLAIMED)?;
    let (apply_rcu, apply_wcu) = units(capacity::QUEUED_COMMITTED)?;
    let (batch_rcu, batch_wcu) = units(capacity::BATCH_CLAIMED)?;
    let per_batch = 1.0 / BATCH as f64;
    let priced = vec![
        sync("POST /v1/transfers (committed)", committed, capacity::COMMITTED, 1.0, 1.0)?,
        Priced {
            name: "queued transfer: POST /v1/transfers + respond-async, then the worker",
            // The claim (a conditional PutItem), then SendMessage.
            api: Invocation {
                sqs_sends: 1.0,
                ..Invocation::each(claimed, 0.0, 1.0 + limit_waits(capacity::CLAIMED))
            },
            // The claims and balances read, one transaction for the invocation's transfers.
            worker: Some(Invocation {
                share: 1.0 / QUEUED_PER_INVOCATION as f64,
                ..Invocation::each(queued, 2.0, 1.0)
            }),
            rcu: claim_rcu + apply_rcu,
            wcu: claim_wcu + apply_wcu,
            sqs_messages: 1.0,
        },
        Priced {
            name: "queued transfer in a batch of 100: POST /v1/transfer-batches, then the worker",
            // The record's PutItem, the ids' BatchGetItem, 7 rounds of 16 concurrent claims, the
            // ids' transaction, SendMessage, the status' BatchGetItem.
            api: Invocation {
                share: per_batch,
                sqs_sends: 1.0,
                ..Invocation::each(batched, 2.0, 9.0 + limit_waits(capacity::BATCH_CLAIMED))
            },
            // The ids and cursor, then per window of 96 transfers a read of claims and balances,
            // and transactions of up to 99 items (about 19 transfers of accounts of their own).
            worker: Some(Invocation { share: per_batch, ..Invocation::each(batch_applied, 4.0, 6.0) }),
            rcu: batch_rcu * per_batch + apply_rcu,
            wcu: batch_wcu * per_batch + apply_wcu,
            sqs_messages: per_batch,
        },
        sync("POST /v1/accounts (new)", account_created, capacity::ACCOUNT_CREATED, 0.0, 1.0)?,
        sync("GET /v1/accounts/{id}", account_read, capacity::ACCOUNT_READ, 1.0, 0.0)?,
        sync(
            "GET /v1/accounts/{id}, If-None-Match: 304",
            not_modified,
            capacity::ACCOUNT_NOT_MODIFIED,
            1.0,
            0.0,
        )?,
        sync("GET /v1/transfers/{id}", transfer_read, capacity::TRANSFER_READ, 1.0, 0.0)?,
        // Its two Queries run at once.
        sync("GET /v1/accounts/{id}/statement (25 a page)", statement, capacity::STATEMENT_PAGE, 1.0, 0.0)?,
    ];
    let mut report = String::new();
    let configured = (Binary::Api.memory_mb()?, Binary::Worker.memory_mb()?);
    render(&mut report, &prices, &priced, (rss, worker_rss), n, configured);
    let largest = capacity::operations(&capacity::sample_items(16, &capacity::largest_metadata()));
    let rcu_of =
        |rows: &[Operation], name: &str| rows.iter().find(|o| o.name == name).map_or(f64::NAN, |o| o.rcu);
    let reads = [
        ("typical (16-character id, one metadata key)", account_read, not_modified, &operations),
        ("largest metadata (50 keys × 500 characters)", large_read, large_not_modified, &largest),
    ];
    let _ = writeln!(
        report,
        "\nRepeated reads of one account, answered in full (200) or revalidated with If-None-Match (304): \
         means over {n} reads each\n"
    );
    let _ = writeln!(
        report,
        "| account | RCU 200 → 304 | API wall ms 200 → 304 | API CPU ms 200 → 304 | bytes back 200 → 304 |"
    );
    let _ = writeln!(report, "|---|---|---|---|---|");
    for (label, full, revalidated, rows) in reads {
        let _ = writeln!(
            report,
            "| {label} | {} → {} | {:.2} → {:.2} | {:.3} → {:.3} | {:.0} → {:.0} |",
            rcu_of(rows, capacity::ACCOUNT_READ),
            rcu_of(rows, capacity::ACCOUNT_NOT_MODIFIED),
            ms(full.wall),
            ms(revalidated.wall),
            ms(full.cpu),
            ms(revalidated.cpu),
            full.response_bytes,
            revalidated.response_bytes
        );
    }
    Ok(report)
}

/// `GET /v1/accounts/{id}`, revalidating `tag` if given.
fn account_event(id: &str, tag: Option<&str>) -> std::io::Result<Value> {
    let mut event = functions::api_event("get-account.json", &[])?;
    let path = format!("/v1/accounts/{id}");
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    event["pathParameters"]["id"] = json!(id);
    if let Some(tag) = tag {
        event["headers"]["if-none-match"] = json!(tag);
    }
    Ok(event)
}

fn transfer_event(id: &str, respond_async: bool) -> std::io::Result<Value> {
    let mut event = functions::api_event("create-transfer.json", &[("id", json!(id)), ("amount", json!(1))])?;
    if respond_async {
        event["headers"]["prefer"] = json!("respond-async");
    }
    Ok(event)
}

fn batch_event(id: &str) -> std::io::Result<Value> {
    let mut event = functions::api_event("create-transfer.json", &[])?;
    let transfers: Vec<Value> = (0..BATCH)
        .map(|i| {
            json!({"id": format!("{id}-{i}"), "debit_account_id": "bank", "credit_account_id": "bob",
                   "amount": 1, "currency": "EUR"})
        })
        .collect();
    event["routeKey"] = json!("POST /v1/transfer-batches");
    event["rawPath"] = json!("/v1/transfer-batches");
    event["requestContext"]["routeKey"] = json!("POST /v1/transfer-batches");
    event["requestContext"]["http"]["path"] = json!("/v1/transfer-batches");
    event["body"] = json!(json!({"id": id, "transfers": transfers}).to_string());
    Ok(event)
}

/// An SQS event of `QUEUED_PER_INVOCATION` respond-async messages, each transfer claimed first as
/// the API would have.
async fn queued_event(stack: &EmulatedStack, prefix: &str) -> std::io::Result<Value> {
    let tenant = ledger::TenantId::parse(functions::TENANT).map_err(io_error)?;
    let sample = functions::sample("sqs-transfers.json")?;
    let mut records = Vec::new();
    for i in 0..QUEUED_PER_INVOCATION {
        let id = format!("{prefix}-{i}");
        let (payer, payee) = functions::pair(i);
        let transfer = ledger::fixtures::transfer(&id, &payer, &payee, 1);
        stack
            .store
            .submit_transfer(&tenant, transfer, time::OffsetDateTime::now_utc())
            .await
            .map_err(io_error)?;
        let mut record = sample["Records"][1].clone();
        record["messageId"] = json!(uuid::Uuid::new_v4().to_string());
        record["body"] = json!(json!({"tenant": functions::TENANT, "transfer": id}).to_string());
        records.push(record);
    }
    Ok(json!({"Records": records}))
}

/// Invokes `function` `n` times with `event(i)`, each answer checked; returns the averages.
async fn measure(
    function: &mut LocalFunction,
    n: usize,
    mut event: impl FnMut(usize) -> std::io::Result<Value>,
) -> std::io::Result<Measured> {
    let binary = if function.name() == Binary::Worker.package() { Binary::Worker } else { Binary::Api };
    let logs_before = function.settled_log_bytes().await;
    let cpu_before = function.cpu_times()?;
    let mut wall = Duration::ZERO;
    let mut response_bytes = 0;
    for i in 0..n {
        let invoked = function.invoke(&serde_json::to_vec(&event(i)?).map_err(io_error)?).await?;
        response_bytes += invoked.response.len();
        if !functions::succeeded(binary, &invoked.response) && !not_modified(&invoked.response) {
            return Err(io_error(format!(
                "invocation {i} failed: {}",
                String::from_utf8_lossy(&invoked.response)
            )));
        }
        wall += invoked.took;
    }
    let cpu = function.cpu_times()?.since(&cpu_before);
    let logs = function.settled_log_bytes().await.saturating_sub(logs_before);
    let n32 = n.max(1) as u32;
    let per = |total: f64| total / n.max(1) as f64;
    Ok(Measured {
        cpu: cpu / n32,
        wall: wall / n32,
        log_bytes: per(logs as f64),
        response_bytes: per(response_bytes as f64),
    })
}

fn not_modified(response: &[u8]) -> bool {
    serde_json::from_slice::<Value>(response).is_ok_and(|r| r["statusCode"] == 304)
}

async fn api_response(function: &mut LocalFunction, event: Value) -> std::io::Result<Value> {
    let invoked = function.invoke(&serde_json::to_vec(&event).map_err(io_error)?).await?;
    serde_json::from_slice(&invoked.response).map_err(io_error)
}

fn etag(response: &Value) -> std::io::Result<String> {
    response["headers"]["etag"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| io_error("no ETag on GET /v1/accounts/{id}"))
}

/// The process's peak resident memory (VmHWM), in MB.
fn peak_rss(function: &LocalFunction) -> f64 {
    function.status_kb("VmHWM").map_or(f64::NAN, |kb| kb as f64 / 1024.0)
}

/// Billed Lambda duration (1 ms granularity) of one invocation at `memory_mb`.
fn billed_ms(cpu: Duration, waits_ms: f64, memory_mb: u32, a: &Assumptions) -> f64 {
    let stretch = (a.full_vcpu_at_mb / f64::from(memory_mb)).max(1.0);
    (cpu.as_secs_f64() * 1e3 * stretch + waits_ms).ceil()
}

/// Dollars per million operations, by component, at `memory_mb`.
struct Bill {
    api_gateway: f64,
    lambda: f64,
    dynamodb: f64,
    sqs: f64,
    logs: f64,
    xray: f64,
    /// The API's modelled duration, ms.
    api_ms: f64,
}

impl Bill {
    fn total(&self) -> f64 {
        self.api_gateway + self.lambda + self.dynamodb + self.sqs + self.logs + self.xray
    }
}

fn bill(op: &Priced, api_mb: u32, p: &Prices, worker_mb: u32) -> Bill {
    let a = &p.assumptions;
    let million = 1e6;
    // Requests and billed duration of one invocation, its log lines, all times its share.
    let lambda = |i: &Invocation, memory_mb: u32| {
        let waits =
            i.reads * a.dynamodb_read_ms + i.writes * a.dynamodb_transaction_ms + i.sqs_sends * a.sqs_send_ms;
        let billed = billed_ms(i.measured.cpu, waits, memory_mb, a);
        let gb_seconds = billed / 1e3 * f64::from(memory_mb) / 1024.0;
        let dollars =
            i.share * (p.lambda_requests_per_million + gb_seconds * p.lambda_arm64_per_gb_second * million);
        let log_bytes = i.share * (i.measured.log_bytes + a.platform_log_bytes_per_invocation);
        (dollars, log_bytes, billed)
    };
    let (mut dollars, mut log_bytes, api_ms) = lambda(&op.api, api_mb);
    if let Some(worker) = &op.worker {
        let (d, l, _) = lambda(worker, worker_mb);
        dollars += d;
        log_bytes += l;
    }
    Bill {
        // One request (and its trace) per API invocation.
        api_gateway: op.api.share * p.api_gateway_http_per_million,
        lambda: dollars,
        dynamodb: op.rcu * p.dynamodb_rru_per_million + op.wcu * p.dynamodb_wru_per_million,
        sqs: op.sqs_messages * (1.0 + a.sqs_poller_requests_per_message) * p.sqs_standard_per_million,
        logs: log_bytes * million / 1e9 * p.logs_ingestion_per_gb,
        xray: op.api.share * a.xray_sampled_share * p.xray_traces_per_million,
        api_ms,
    }
}

fn render(
    out: &mut String,
    p: &Prices,
    priced: &[Priced],
    rss: (f64, f64),
    n: usize,
    configured: (u32, u32),
) {
    let a = &p.assumptions;
    let _ = writeln!(
        out,
        "cargo stack cost: prices of {} ({}), release binaries measured here over {n} invocations an \
         operation\n",
        p.region, p.as_of
    );
    let _ = writeln!(
        out,
        "Assumed, not measured: a vCPU at {} MB (Lambda's documented figure), this machine's core as fast as \
         a Graviton core, DynamoDB {} ms a read and {} ms a transaction, SQS {} ms a send, {}% of requests \
         traced (X-Ray's default rule above 1/s), {} B of platform log lines an invocation.\n",
        a.full_vcpu_at_mb,
        a.dynamodb_read_ms,
        a.dynamodb_transaction_ms,
        a.sqs_send_ms,
        a.xray_sampled_share * 100.0,
        a.platform_log_bytes_per_invocation
    );
    let _ = writeln!(out, "Measured per invocation (mean; wall: against the emulators on this machine):\n");
    let _ = writeln!(
        out,
        "| operation | API CPU ms (share) | API wall ms | API log B | worker CPU ms (share) | worker log B |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for op in priced {
        let share =
            |i: &Invocation| if i.share < 1.0 { format!(" (1/{:.0})", 1.0 / i.share) } else { String::new() };
        let api = &op.api.measured;
        let (worker_cpu, worker_logs) =
            op.worker.as_ref().map_or((String::from("-"), String::from("-")), |w| {
                (format!("{:.3}{}", ms(w.measured.cpu), share(w)), format!("{:.0}", w.measured.log_bytes))
            });
        let _ = writeln!(
            out,
            "| {} | {:.3}{} | {:.2} | {:.0} | {worker_cpu} | {worker_logs} |",
            op.name,
            ms(api.cpu),
            share(&op.api),
            ms(api.wall),
            api.log_bytes
        );
    }
    let _ = writeln!(out, "\nPeak resident memory: api {:.1} MB, worker {:.1} MB.\n", rss.0, rss.1);

    // Power tuning on paper: the committed transfer at each memory size.
    let _ = writeln!(out, "Memory size (the committed sync transfer):\n");
    let _ = writeln!(out, "| memory | modelled API duration ms | $ per million |");
    let _ = writeln!(out, "|---|---|---|");
    let bills: Vec<(u32, Bill)> = MEMORY_SIZES.iter().map(|&m| (m, bill(&priced[0], m, p, m))).collect();
    for (memory, b) in &bills {
        let _ = writeln!(out, "| {memory} MB | {:.0} | {:.3} |", b.api_ms, b.total());
    }
    let cheapest = bills.iter().map(|(_, b)| b.total()).fold(f64::INFINITY, f64::min);
    let chosen = bills
        .iter()
        .filter(|(_, b)| b.total() <= cheapest * (1.0 + LATENCY_WORTH))
        .min_by(|a, b| a.1.api_ms.total_cmp(&b.1.api_ms))
        .map_or(configured.0, |(m, _)| *m);
    let verdict = if chosen == configured.0 {
        "as template.yaml sets"
    } else {
        "template.yaml differs: change MemorySize"
    };
    let _ = writeln!(
        out,
        "\nChosen: {chosen} MB, the fastest size within {:.1}% of the cheapest ({verdict}; it sets api {} MB, \
         worker {} MB; the peak resident memory above fits either).\n",
        LATENCY_WORTH * 100.0,
        configured.0,
        configured.1
    );

    let _ = writeln!(
        out,
        "$ per million operations at the configured memory (api {} MB, worker {} MB), arm64, on-demand:\n",
        configured.0, configured.1
    );
    let _ = writeln!(out, "| operation | API Gateway | Lambda | DynamoDB | SQS | Logs | X-Ray | total |");
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    for op in priced {
        let b = bill(op, configured.0, p, configured.1);
        let _ = writeln!(
            out,
            "| {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | **{:.3}** |",
            op.name,
            b.api_gateway,
            b.lambda,
            b.dynamodb,
            b.sqs,
            b.logs,
            b.xray,
            b.total()
        );
    }

    // Provisioned DynamoDB capacity for a steady rate of committed transfers.
    let transfer = &priced[0];
    let target = a.autoscaling_target_utilisation;
    let _ = writeln!(
        out,
        "\nDynamoDB for a steady rate of committed sync transfers ({} RCU + {} WCU each), a month:\n",
        transfer.rcu, transfer.wcu
    );
    let _ =
        writeln!(out, "| transfers/s | on-demand | provisioned (auto scaling at {:.0}%) |", target * 100.0);
    let _ = writeln!(out, "|---|---|---|");
    let on_demand_per_s = |rate: f64| {
        rate * 3600.0
            * HOURS_A_MONTH
            * (transfer.rcu * p.dynamodb_rru_per_million + transfer.wcu * p.dynamodb_wru_per_million)
            / 1e6
    };
    let provisioned_per_s = |rate: f64| {
        rate / target
            * (transfer.rcu * p.dynamodb_rcu_hour + transfer.wcu * p.dynamodb_wcu_hour)
            * HOURS_A_MONTH
    };
    for rate in [1.0, 10.0, 100.0, 1000.0] {
        let _ = writeln!(out, "| {rate} | ${:.2} | ${:.2} |", on_demand_per_s(rate), provisioned_per_s(rate));
    }
    let ratio = provisioned_per_s(1.0) / on_demand_per_s(1.0);
    let _ = writeln!(
        out,
        "\nProvisioned, kept at {:.0}% utilisation, costs {:.2}× on-demand. Capacity provisioned for a peak \
         breaks even when the average rate is {:.0}% of that peak: above, provisioned is cheaper; below, \
         and for spikes auto scaling cannot follow in time, on-demand is.",
        target * 100.0,
        ratio,
        ratio * target * 100.0
    );
    let series = metric_series();
    let _ = writeln!(
        out,
        "\nFixed a month, whatever the traffic: {series} EMF metric series × ${} = ${:.2}.",
        p.custom_metric_month,
        series as f64 * p.custom_metric_month
    );
}

/// Metric series the catalogue produces: one per metric, more for the dimensioned ones.
pub fn metric_series() -> usize {
    use ledger_telemetry::metrics::CATALOG;
    CATALOG
        .iter()
        .map(|m| match m.dimensions {
            [] => 1,
            // One series per function (api, worker, sweeper).
            ["function"] => 3,
            // One per rule code a transfer can be refused for.
            _ => ledger::RuleViolation::CODES.len(),
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn priced(cpu_us: u64) -> Priced {
        let measured = Measured {
            cpu: Duration::from_micros(cpu_us),
            wall: Duration::ZERO,
            log_bytes: 1000.0,
            response_bytes: 0.0,
        };
        Priced {
            name: "test",
            api: Invocation::each(measured, 1.0, 1.0),
            worker: None,
            rcu: 3.0,
            wcu: 10.0,
            sqs_messages: 0.0,
        }
    }

    #[test]
    fn the_price_file_says_where_and_when_its_prices_are_from() {
        let prices = Prices::load().unwrap();
        assert_eq!(prices.region, "us-east-1");
        assert!(prices.as_of.starts_with("20"), "{}", prices.as_of);
        assert!(prices.assumptions.full_vcpu_at_mb > 1000.0);
    }

    #[test]
    fn below_a_full_vcpu_cpu_time_stretches_with_less_memory() {
        let a = Prices::load().unwrap().assumptions;
        let cpu = Duration::from_micros(900);
        assert_eq!(billed_ms(cpu, 14.0, 1769, &a), 15.0);
        // No faster above one vCPU: the handler runs on one thread at a time.
        assert_eq!(billed_ms(cpu, 14.0, 3008, &a), 15.0);
        assert_eq!(billed_ms(cpu, 14.0, 128, &a), (0.9 * 1769.0 / 128.0 + 14.0_f64).ceil());
    }

    #[test]
    fn a_bill_is_the_sum_of_what_each_service_charges() {
        let p = Prices::load().unwrap();
        let b = bill(&priced(900), 256, &p, 256);
        assert!(
            (b.dynamodb - (3.0 * p.dynamodb_rru_per_million + 10.0 * p.dynamodb_wru_per_million)).abs()
                < 1e-9
        );
        assert_eq!(b.api_gateway, p.api_gateway_http_per_million);
        let logs = (1000.0 + p.assumptions.platform_log_bytes_per_invocation) / 1e3 * p.logs_ingestion_per_gb;
        assert!((b.logs - logs).abs() < 1e-9);
        let sum = b.api_gateway + b.lambda + b.dynamodb + b.sqs + b.logs + b.xray;
        assert!((b.total() - sum).abs() < 1e-12);
        // More CPU costs more Lambda time, nothing else.
        let dearer = bill(&priced(20_000), 256, &p, 256);
        assert!(dearer.lambda > b.lambda && dearer.dynamodb == b.dynamodb);
    }

    #[test]
    fn an_invocation_shared_by_a_batch_bills_each_transfer_its_share() {
        let p = Prices::load().unwrap();
        let whole = bill(&priced(900), 256, &p, 256);
        let mut shared = priced(900);
        shared.api.share = 0.01;
        let part = bill(&shared, 256, &p, 256);
        assert!((part.api_gateway - whole.api_gateway / 100.0).abs() < 1e-12);
        assert!((part.lambda - whole.lambda / 100.0).abs() < 1e-12);
        assert!((part.xray - whole.xray / 100.0).abs() < 1e-12);
        assert!(part.dynamodb == whole.dynamodb, "capacity is per operation already");
    }
}
