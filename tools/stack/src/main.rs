//! `cargo stack …`: the whole backend on this machine, and the test suite, each in one command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use harness::emulators::Ports;
use harness::install::{self, Requirements};
use harness::{DevAuth, EmulatedStack, Emulators, FaultPlan, StackOptions, paths};
use ledger_config::{Environment, TelemetryConfig};
use ledger_http::Scope;
use stack::{bench, browser, cold_start, cost, dashboard, load, local};

#[derive(Parser)]
#[command(about = "The ledger's local tooling")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Clone, Copy)]
enum DlqAction {
    /// List what sits in the dead-letter queue, with why each message failed.
    List,
    /// Move every dead letter back to the transfer queue (after the fix); the worker applies each once.
    Redrive,
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Init and first-invoke time of each function and of a hello-world `lambda_runtime` binary (the
    /// floor), release builds started as fresh processes under a local Runtime API.
    ColdStart(cold_start::ColdStartArgs),
    /// Events out end to end: events published and delivered per second, and the latency from a
    /// commit to its event on the bus and to its webhook at a receiver on this machine.
    Events(stack::events_bench::EventsArgs),
    /// Quiet tenants' latencies alone and beside a tenant flooding the API far beyond its limit.
    NoisyNeighbour(stack::noisy_neighbour::NoisyArgs),
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the whole backend locally: DynamoDB Local and moto, the table and queues from
    /// template.yaml, concurrent worker invocations, the API and its dashboard.
    Up {
        /// Port of the API on 127.0.0.1.
        #[arg(long, default_value_t = 3000)]
        port: u16,
        /// Port of DynamoDB Local on 127.0.0.1 (0: any free port).
        #[arg(long, default_value_t = 0)]
        dynamodb_port: u16,
        /// Port of moto (SQS) on 127.0.0.1 (0: any free port).
        #[arg(long, default_value_t = 0)]
        moto_port: u16,
        /// Faults to inject: `mixed`, `mixed:SEED`, or `throttle=0.05,error=0.01,slow=0.05,slow-ms=300,
        /// conflict=0.05,lost-reply=0.01,duplicate=0.05,kill=0.05,gave-up=0.01,seed=7`.
        #[arg(long)]
        faults: Option<FaultPlan>,
        /// Run an optimised build of the stack (profile `measure`; the first build takes minutes):
        /// in the debug build, debug code, not the emulators, bounds the throughput.
        #[arg(long)]
        optimised: bool,
    },
    /// Install what the tests need (first run only), start the emulators once, then run every test
    /// of the workspace against them.
    Test {
        /// Passed on to `cargo test`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Install the pinned emulators (moto, DynamoDB Local, a Java runtime), schemathesis (the API
    /// fuzzer) and Chromium (for the dashboard test), or also SAM CLI, cfn-lint, cargo-lambda and
    /// checkov.
    Setup {
        #[arg(long)]
        tools: bool,
    },
    /// The dead-letter queue of the running local stack (or, with --queue-url and --dlq-url, of a
    /// deployed stack, with the default AWS credentials).
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
        #[arg(long, requires = "dlq_url")]
        queue_url: Option<String>,
        #[arg(long, requires = "queue_url")]
        dlq_url: Option<String>,
    },
    /// Rehearse a restore: the running local stack's table exported and imported into a new table
    /// (or, with --table, a deployed table restored with point-in-time recovery), then every
    /// tenant's books checked on it from the first entry and against its latest signed checkpoint;
    /// prints the recovery point and time. Fails if the restored table is not whole.
    Drill {
        /// A deployed table to restore (with the default AWS credentials); the new table is
        /// `{table}-drill-{unix seconds}`, left for you to inspect and delete.
        #[arg(long)]
        table: Option<String>,
        /// With --table: the instant to restore to (RFC 3339); default: the latest restorable.
        #[arg(long, requires = "table")]
        to: Option<String>,
        /// With --table: the books archive (the stack's ArchiveBucketName output), to check each
        /// tenant against its latest signed checkpoint.
        #[arg(long, requires = "table")]
        archive_bucket: Option<String>,
    },
    /// Measure against fresh emulators: both emulators' raw transactions side by side, synchronous
    /// transfers at 1, 4 and 16 clients, queued transfers with 1 and N worker invocations; or, with
    /// `cold-start`, each function's init time against a hello-world floor.
    #[command(args_conflicts_with_subcommands = true)]
    Bench {
        #[command(subcommand)]
        which: Option<BenchCmd>,
        #[command(flatten)]
        args: bench::BenchArgs,
    },
    /// Drive realistic traffic at an API (the running local stack by default) and summarise it.
    Load(LoadArgs),
    /// Print each operation's DynamoDB calls and capacity units, computed from item sizes.
    Capacity,
    /// Print $ per million operations on AWS: prices from tools/stack/data/prices.json, capacity
    /// from the item sizes, CPU time and log bytes measured on the release binaries.
    Cost(cost::CostArgs),
    /// Print what each tenant cost, from the API function's JSON log lines (a file, or `-` for
    /// stdin) and the cost model.
    TenantCost { logs: std::path::PathBuf },
    /// Print a development token for a tenant (valid against `cargo stack up`).
    Token {
        #[arg(default_value = "acme")]
        tenant: String,
        /// A scope the token grants (read, write, admin; repeat for several); default: all three.
        #[arg(long = "scope", value_parser = parse_scope)]
        scopes: Vec<Scope>,
    },
    /// Refresh docs/dashboard.png: a fresh local stack under load, photographed in Chromium.
    Screenshot,
    /// Receive the ledger's webhooks here, as `stripe listen` does: adds an endpoint pointing at
    /// this command, prints each delivery and whether its signature verifies, optionally forwards
    /// it, and removes the endpoint on Ctrl-C.
    Listen {
        /// Forward each delivery (headers and body unchanged) to this URL and answer with its status.
        #[arg(long)]
        forward_to: Option<String>,
        /// Event types to receive (repeatable); default: every type.
        #[arg(long = "events")]
        events: Vec<String>,
        /// Port to listen on (0: any free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Tenant whose events to receive (a dev token of the local stack is made for it).
        #[arg(long, default_value = "acme")]
        tenant: String,
        /// Base URL of the API; default: the running `cargo stack up`.
        #[arg(long)]
        url: Option<String>,
        /// Bearer token; default: $LEDGER_TOKEN, else a dev token of the running local stack.
        #[arg(long)]
        token: Option<String>,
    },
}

#[derive(clap::Args)]
struct LoadArgs {
    /// Base URL of the API; default: the running `cargo stack up`. For AWS, the stack's ApiUrl output.
    #[arg(long)]
    url: Option<String>,
    /// Bearer token; default: $LEDGER_TOKEN, else a dev token of the running local stack.
    #[arg(long)]
    token: Option<String>,
    /// Transfers per second outside the spike.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Seconds to run.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Customer accounts to create and fund.
    #[arg(long, default_value_t = 50)]
    accounts: usize,
    /// Zipf exponent of account choice (0: uniform; 1.2: a few hot accounts).
    #[arg(long, default_value_t = 1.1)]
    skew: f64,
    /// Share of bad requests (overdrafts, invalid fields, replays).
    #[arg(long, default_value_t = 0.05)]
    errors: f64,
    /// Share of transfers sent with `Prefer: respond-async` (queue and worker).
    #[arg(long, default_value_t = 0.5)]
    async_share: f64,
    /// Start of a spike, in seconds from the start (no spike if absent).
    #[arg(long)]
    spike_at: Option<u64>,
    /// Length of the spike in seconds.
    #[arg(long, default_value_t = 10)]
    spike_for: u64,
    /// Rate multiplier during the spike.
    #[arg(long, default_value_t = 5.0)]
    spike_factor: f64,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
}

type AnyError = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new()
}

fn run(cli: Cli) -> Result<ExitCode, AnyError> {
    match cli.command {
        Cmd::Setup { tools } => {
            install::ensure(Requirements::Emulators)?;
            install::ensure(Requirements::Fuzzer)?;
            install::ensure_browser()?;
            if tools {
                install::ensure(Requirements::Tools)?;
                install::ensure(Requirements::Scanner)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Test { args } => {
            install::ensure(Requirements::Emulators)?;
            install::ensure(Requirements::Fuzzer)?;
            install::ensure_browser()?;
            // One pair of emulators for every test process: each test makes tables and queues of its own.
            let emulators = Emulators::start(Ports::default())?;
            // Every test of the workspace, unless packages are named.
            let picked =
                args.iter().take_while(|a| *a != "--").any(|a| a == "-p" || a.starts_with("--package"));
            let status = stack::cargo()
                .arg("test")
                .args((!picked).then_some("--workspace"))
                .args(args)
                .envs(emulators.env_vars())
                .status()?;
            drop(emulators);
            Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Cmd::Dlq { action, queue_url, dlq_url } => {
            runtime()?.block_on(dlq(action, queue_url.zip(dlq_url)))?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Drill { table, to, archive_bucket } => {
            let report = runtime()?.block_on(drill(table, to, archive_bucket))?;
            print!("{}", ledger_ops::drill::render(&report));
            Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Cmd::Bench { which: Some(BenchCmd::ColdStart(args)), .. } => {
            install::ensure(Requirements::Emulators)?;
            // The binaries measured are release builds whatever this tool's build is.
            print!("{}", runtime()?.block_on(cold_start::run(args))?);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Bench { which: Some(BenchCmd::NoisyNeighbour(args)), .. } => {
            install::ensure(Requirements::Emulators)?;
            print!("{}", runtime()?.block_on(stack::noisy_neighbour::run(args))?);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Bench { which: Some(BenchCmd::Events(args)), .. } => {
            install::ensure(Requirements::Emulators)?;
            print!("{}", runtime()?.block_on(stack::events_bench::run(args))?);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Bench { which: None, args } => {
            install::ensure(Requirements::Emulators)?;
            // Figures of debug code would measure the debug build.
            if cfg!(debug_assertions) {
                return run_optimised();
            }
            let report = runtime()?.block_on(bench::run(args))?;
            print!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Load(args) => {
            let plan = load_plan(args)?;
            eprintln!(
                "load: {:.0} transfers/s for {} s against {} ({} accounts, skew {}, {:.0}% bad, {:.0}% async)",
                plan.rate,
                plan.duration.as_secs(),
                plan.base_url,
                plan.accounts,
                plan.skew,
                plan.error_mix * 100.0,
                plan.async_share * 100.0
            );
            let summary = runtime()?.block_on(load::run(plan))?;
            print!("{}", summary.render());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Cost(args) => {
            install::ensure(Requirements::Emulators)?;
            print!("{}", runtime()?.block_on(cost::run(args))?);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::TenantCost { logs } => {
            let text = if logs.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&logs)?
            };
            print!("{}", stack::tenant_cost::report(&text, &stack::cost::Prices::load()?));
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Capacity => {
            print_capacity();
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Listen { forward_to, events, port, tenant, url, token } => {
            let url = match url {
                Some(url) => url,
                None => running()?["url"].as_str().ok_or("the running stack's file has no url")?.to_owned(),
            };
            let token = match token.or_else(|| std::env::var("LEDGER_TOKEN").ok()) {
                Some(token) => token,
                None => dev_auth()?.token(&tenant, TOKEN_TTL),
            };
            runtime()?.block_on(stack::listen::listen(&url, &token, events, port, forward_to))?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Token { tenant, scopes } => {
            let scopes = if scopes.is_empty() { Scope::ALL.to_vec() } else { scopes };
            println!("{}", dev_auth()?.scoped_token(&tenant, &scopes, TOKEN_TTL));
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Up { port, dynamodb_port, moto_port, faults, optimised } => {
            install::ensure(Requirements::Emulators)?;
            if optimised && cfg!(debug_assertions) {
                return run_optimised();
            }
            let ports = Ports { dynamodb: dynamodb_port, moto: moto_port };
            runtime()?.block_on(up(port, ports, faults.unwrap_or_default()))?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Screenshot => {
            install::ensure(Requirements::Emulators)?;
            let browser = install::ensure_browser()?;
            let path = paths::workspace_root().join("docs").join("dashboard.png");
            runtime()?.block_on(screenshot(browser, path.clone()))?;
            println!("wrote {}", path.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

const TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// Runs this very command again from an optimised build (profile `measure`).
fn run_optimised() -> Result<ExitCode, AnyError> {
    eprintln!("==> running an optimised build (profile `measure`; the first build takes minutes)");
    let status = stack::cargo()
        .args(["run", "--quiet", "--profile", "measure", "--package", "stack", "--bin", "stack", "--"])
        .args(std::env::args_os().skip(1))
        .status()?;
    Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn load_plan(args: LoadArgs) -> Result<load::LoadPlan, AnyError> {
    let url = match args.url {
        Some(url) => url,
        None => running()?["url"].as_str().ok_or("the running stack's file has no url")?.to_owned(),
    };
    let token = match args.token.or_else(|| std::env::var("LEDGER_TOKEN").ok()) {
        Some(token) => token,
        None => dev_auth()?.token("acme", TOKEN_TTL),
    };
    Ok(load::LoadPlan {
        base_url: url,
        token,
        rate: args.rate,
        duration: Duration::from_secs(args.duration),
        accounts: args.accounts,
        skew: args.skew,
        error_mix: args.errors.clamp(0.0, 1.0),
        async_share: args.async_share.clamp(0.0, 1.0),
        spike: args.spike_at.map(|at| load::Spike {
            at: Duration::from_secs(at),
            lasts: Duration::from_secs(args.spike_for),
            factor: args.spike_factor,
        }),
        concurrency: args.concurrency,
        progress: true,
    })
}

fn parse_scope(name: &str) -> Result<Scope, String> {
    Scope::ALL
        .into_iter()
        .find(|s| s.name() == name || s.name().strip_prefix("ledger:") == Some(name))
        .ok_or_else(|| format!("{name}: not a scope (read, write or admin)"))
}

/// The local signing key: random, made on first use, kept in .local/ so tokens outlive restarts.
fn dev_auth() -> std::io::Result<DevAuth> {
    let path = paths::local_dir().join("dev-signing-key");
    let key = match std::fs::read(&path) {
        Ok(key) if key.len() >= 32 => key,
        _ => {
            let key: [u8; 32] = rand::random();
            let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
            std::fs::create_dir_all(paths::local_dir())?;
            std::fs::write(&path, &hex)?;
            hex.into_bytes()
        }
    };
    Ok(DevAuth::new(key, ledger_config::tenant_claim(&Environment)))
}

/// Where `cargo stack up` notes its endpoints and queues, for the other commands.
fn running_file() -> PathBuf {
    paths::local_dir().join("running-stack.json")
}

fn running() -> Result<serde_json::Value, AnyError> {
    let text = std::fs::read_to_string(running_file())
        .map_err(|_| "no local stack running (start `cargo stack up`), and no --url/--queue-url given")?;
    Ok(serde_json::from_str(&text)?)
}

async fn up(port: u16, ports: Ports, faults: FaultPlan) -> Result<(), AnyError> {
    ledger_telemetry::logs::init(&TelemetryConfig::from_env());
    dashboard::dashboard();
    // One process plays both functions: each starts cold once.
    ledger_telemetry::metrics::cold_start(ledger_telemetry::Function::Api);
    ledger_telemetry::metrics::cold_start(ledger_telemetry::Function::Worker);
    ledger_telemetry::metrics::cold_start(ledger_telemetry::Function::Publisher);
    let emulators = Emulators::start(ports)?;
    let table = "ledger-local";
    let options = StackOptions {
        visibility_timeout: None,
        faults: faults.clone(),
        dynamodb_proxy: false,
        tenant_claim: ledger_config::tenant_claim(&Environment),
        tenant_limit: ledger_config::tenant_limit(&Environment)?,
        webhook_timeout: ledger_webhooks::DEFAULT_TIMEOUT,
        events_out: true,
        clock: None,
    };
    let stack = EmulatedStack::create(&emulators, table, options).await?;
    let auth = dev_auth()?;
    local::start_background(&stack);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let running = serde_json::json!({
        "url": url,
        "dynamodb": emulators.dynamodb_endpoint(),
        "moto": emulators.moto_endpoint(),
        "table": table,
        "queue_url": stack.queue.url(),
        "dlq_url": stack.dead_letter_url,
        "event_bus": stack.bus.name(),
        "bus_tap_url": stack.bus_tap_url,
        "webhook_queue_url": stack.deliveries.url(),
        "archive_bucket": stack.archive_bucket,
    });
    std::fs::create_dir_all(paths::local_dir())?;
    std::fs::write(running_file(), running.to_string())?;
    print_banner(&url, &emulators, table, &stack, &auth, &faults);
    axum::serve(listener, local::app(&stack, auth))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
            eprintln!("\nstopping: API, worker, publisher and emulators");
        })
        .await?;
    if faults != FaultPlan::none() {
        eprintln!("faults injected: {}", stack.faults.counts());
    }
    let _ = std::fs::remove_file(running_file());
    drop(emulators);
    Ok(())
}

fn print_banner(
    url: &str,
    emulators: &Emulators,
    table: &str,
    stack: &EmulatedStack,
    auth: &DevAuth,
    faults: &FaultPlan,
) {
    let token = auth.token("acme", TOKEN_TTL);
    let other = auth.token("globex", TOKEN_TTL);
    let read_only = auth.scoped_token("acme", &[Scope::Read], TOKEN_TTL);
    let spec = stack.event_source.spec();
    println!(
        "\nLedger running locally (Ctrl-C stops everything)\n\
         \n  API        {url}\n  dashboard  {url}/dashboard (live; drive it with `cargo stack load`)\
         \n  DynamoDB   {} (DynamoDB Local, table {table}, shaped by template.yaml)\
         \n  SQS        {} (moto)\n  queue      {}\n  dead letters {}\
         \n  worker     up to {} invocations at once, batches of {}, window {} s (template.yaml's event source)\
         \n  events     table stream -> publisher -> EventBridge bus {} (moto); every event also lands in {}\
         \n  faults     {}\n\
         \n  token (tenant acme):\n    export TOKEN={token}\n  token (tenant globex):\n    export OTHER_TOKEN={other}\n\
         \n  token (tenant acme, read only: ledger:read):\n    export READ_TOKEN={read_only}\n\
         \n  try:\n    curl -s -X POST {url}/v1/accounts -H \"authorization: Bearer $TOKEN\" \\\n\
         \x20     -H 'content-type: application/json' -d '{{\"id\":\"bank\",\"currency\":\"EUR\",\"allow_overdraft\":true}}'\n",
        emulators.dynamodb_endpoint(),
        emulators.moto_endpoint(),
        stack.queue.url(),
        stack.dead_letter_url,
        spec.max_concurrency,
        spec.batch_size,
        spec.batching_window_secs,
        stack.bus.name(),
        stack.bus_tap_url,
        if *faults == FaultPlan::none() { "none".to_owned() } else { faults.to_string() },
    );
}

fn print_capacity() {
    use stack::capacity;
    let cases = [
        ("typical: 16-char ids, no metadata", capacity::sample_items(16, &Default::default())),
        (
            "largest: 64-char ids, 50 x 500-char metadata",
            capacity::sample_items(64, &capacity::largest_metadata()),
        ),
    ];
    for (label, items) in cases {
        println!(
            "\n{label}: account profile {} B, balance {} B, transfer {} B, entry {} B, transfer event {} B\n",
            items.profile, items.balance, items.transfer, items.entry, items.event
        );
        println!("| operation | DynamoDB calls | RCU | WCU |\n|---|---|---|---|");
        for op in capacity::operations(&items) {
            println!("| `{}` | {} | {} | {} |", op.name, op.calls, op.rcu, op.wcu);
        }
    }
}

async fn drill(
    table: Option<String>,
    to: Option<String>,
    archive_bucket: Option<String>,
) -> Result<ledger_ops::drill::DrillReport, AnyError> {
    use ledger_ops::drill::{self, Restore};
    let suffix = time::OffsetDateTime::now_utc().unix_timestamp();
    match table {
        Some(table) => {
            let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
            let client = aws_sdk_dynamodb::Client::new(&config);
            let at = match to {
                Some(to) => {
                    Some(time::OffsetDateTime::parse(&to, &time::format_description::well_known::Rfc3339)?)
                }
                None => None,
            };
            let archive = archive_bucket
                .map(|bucket| ledger_s3::S3Archive::new(ledger_s3::s3_client(&config, false), bucket));
            let archive = archive.as_ref().map(|a| a as &dyn ledger::port::Archive);
            let target = format!("{table}-drill-{suffix}");
            Ok(drill::run(&client, &table, &target, Restore::PointInTime { at }, archive).await?)
        }
        None => {
            let running = running()?;
            let field = |name: &str| running[name].as_str().unwrap_or_default().to_owned();
            let dynamodb = harness::emulators::sdk_config(&field("dynamodb")).await;
            let client = ledger_dynamodb::client::dynamodb_client(&dynamodb);
            let moto = harness::emulators::sdk_config(&field("moto")).await;
            let archive =
                ledger_s3::S3Archive::new(ledger_s3::s3_client(&moto, true), field("archive_bucket"));
            let (table, target) = (field("table"), format!("{}-drill-{suffix}", field("table")));
            Ok(drill::run(&client, &table, &target, Restore::ExportImport, Some(&archive)).await?)
        }
    }
}

async fn dlq(action: DlqAction, urls: Option<(String, String)>) -> Result<(), AnyError> {
    let (client, queue_url, dlq_url) = match urls {
        Some((queue, dlq)) => {
            let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
            (aws_sdk_sqs::Client::new(&config), queue, dlq)
        }
        None => {
            let running = running()?;
            let field = |name: &str| running[name].as_str().unwrap_or_default().to_owned();
            let config = harness::emulators::sdk_config(&field("moto")).await;
            (aws_sdk_sqs::Client::new(&config), field("queue_url"), field("dlq_url"))
        }
    };
    match action {
        DlqAction::List => {
            let letters = ledger_ops::dlq::list(&client, &dlq_url).await?;
            println!("{} message(s) in {dlq_url}", letters.len());
            for l in letters {
                println!("- {} (received {} times): {}\n  {}", l.message_id, l.receives, l.reason, l.body);
            }
        }
        DlqAction::Redrive => {
            let moved = ledger_ops::dlq::redrive(&client, &dlq_url, &queue_url).await?;
            println!("moved {moved} message(s) from {dlq_url} to {queue_url}");
        }
    }
    Ok(())
}

/// A fresh local stack under load for a while, its dashboard photographed into `path`.
async fn screenshot(browser: &str, path: PathBuf) -> Result<(), AnyError> {
    dashboard::dashboard();
    let emulators = Emulators::start(Ports::default())?;
    let stack = EmulatedStack::create(&emulators, "ledger-screenshot", StackOptions::default()).await?;
    let auth = DevAuth::new(b"screenshot".to_vec(), stack.tenant_claim.clone());
    local::start_background(&stack);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(axum::serve(listener, local::app(&stack, auth.clone())).into_future());
    let plan = load::LoadPlan {
        base_url: base.clone(),
        token: auth.token("acme", Duration::from_secs(600)),
        rate: 12.0,
        duration: Duration::from_secs(40),
        accounts: 10,
        skew: 1.1,
        error_mix: 0.1,
        async_share: 0.5,
        spike: Some(load::Spike { at: Duration::from_secs(20), lasts: Duration::from_secs(5), factor: 3.0 }),
        concurrency: 64,
        progress: true,
    };
    let load = tokio::spawn(load::run(plan));
    tokio::time::sleep(Duration::from_secs(35)).await;
    browser::chromium(browser, &format!("{base}/dashboard"), &format!("--screenshot={}", path.display()))
        .await?;
    load.await??;
    Ok(())
}
