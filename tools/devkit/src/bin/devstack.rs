//! `cargo stack …`: the whole backend on this machine, and the test suite, each in one command.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Duration;

use clap::{Parser, Subcommand};
use devkit::setup::{self, Requirements};
use devkit::{DevAuth, Emulator, paths};
use ledger_http::DEFAULT_TENANT_CLAIM;

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
enum Cmd {
    /// Run the whole backend locally: emulator, tables from template.yaml, and the API.
    Up {
        /// Port of the API on 127.0.0.1.
        #[arg(long, default_value_t = 3000)]
        port: u16,
        /// Port of the DynamoDB/SQS emulator on 127.0.0.1 (0: any free port).
        #[arg(long, default_value_t = 0)]
        emulator_port: u16,
    },
    /// Install what the tests need (first run only), then run every test of the workspace.
    Test {
        /// Passed on to `cargo test`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Install the pinned tools: the emulator and Chromium (for the dashboard test), or also SAM CLI,
    /// cfn-lint and cargo-lambda.
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
    /// Measure the queued path against a fresh local emulator: raw TransactWriteItems/s, transfers/s
    /// accepted by the API, transfers/s applied by the worker.
    Bench {
        #[arg(long, default_value_t = 10_000)]
        transfers: usize,
    },
    /// Drive realistic traffic at an API (the running local stack by default) and summarise it.
    Load(LoadArgs),
    /// Print each operation's DynamoDB calls and capacity units, computed from item sizes.
    Capacity,
    /// Print a development token for a tenant (valid against `cargo stack up`).
    Token {
        #[arg(default_value = "acme")]
        tenant: String,
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

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match cli.command {
        Cmd::Setup { tools } => {
            setup::ensure(Requirements::Emulator)?;
            setup::ensure_browser()?;
            if tools {
                setup::ensure(Requirements::Tools)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Test { args } => {
            setup::ensure(Requirements::Emulator)?;
            setup::ensure_browser()?;
            let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["test", "--workspace"])
                .args(args)
                .current_dir(paths::workspace_root())
                .status()?;
            Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Cmd::Dlq { action, queue_url, dlq_url } => {
            tokio::runtime::Runtime::new()?.block_on(dlq(action, queue_url.zip(dlq_url)))?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Bench { transfers } => {
            setup::ensure(Requirements::Emulator)?;
            let figures = tokio::runtime::Runtime::new()?.block_on(async {
                let emulator = Emulator::start(0)?;
                devkit::bench::run(&emulator, transfers).await
            })?;
            println!(
                "queued path against the local emulator ({} transfers, batches of 1,000):",
                figures.transfers
            );
            println!(
                "  emulator raw TransactWriteItems (5 puts): {:>8.0} /s",
                figures.raw_transactions_per_s
            );
            println!("  transfers accepted by the API:            {:>8.0} /s", figures.accepted_per_s);
            println!("  transfers applied by the worker (x2):     {:>8.0} /s", figures.applied_per_s);
            println!(
                "  applied transfers per raw transaction:    {:>8.2}",
                figures.applied_per_s / figures.raw_transactions_per_s
            );
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
            let summary = tokio::runtime::Runtime::new()?.block_on(devkit::load::run(plan))?;
            print!("{}", summary.render());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Capacity => {
            print_capacity();
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Token { tenant } => {
            println!("{}", dev_auth()?.token(&tenant, TOKEN_TTL));
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Up { port, emulator_port } => {
            setup::ensure(Requirements::Emulator)?;
            tokio::runtime::Runtime::new()?.block_on(up(port, emulator_port))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

const TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

fn load_plan(args: LoadArgs) -> Result<devkit::load::LoadPlan, Box<dyn std::error::Error>> {
    let running = || -> Result<serde_json::Value, Box<dyn std::error::Error>> {
        let text = std::fs::read_to_string(running_file())
            .map_err(|_| "no --url given and no local stack running (start `cargo stack up`)")?;
        Ok(serde_json::from_str(&text)?)
    };
    let url = match args.url {
        Some(url) => url,
        None => running()?["url"].as_str().ok_or("the running stack's file has no url")?.to_owned(),
    };
    let token = match args.token.or_else(|| std::env::var("LEDGER_TOKEN").ok()) {
        Some(token) => token,
        None => dev_auth()?.token("acme", TOKEN_TTL),
    };
    Ok(devkit::load::LoadPlan {
        base_url: url,
        token,
        rate: args.rate,
        duration: Duration::from_secs(args.duration),
        accounts: args.accounts,
        skew: args.skew,
        error_mix: args.errors.clamp(0.0, 1.0),
        async_share: args.async_share.clamp(0.0, 1.0),
        spike: args.spike_at.map(|at| devkit::load::Spike {
            at: Duration::from_secs(at),
            lasts: Duration::from_secs(args.spike_for),
            factor: args.spike_factor,
        }),
        concurrency: args.concurrency,
        progress: true,
    })
}

fn tenant_claim() -> String {
    std::env::var("TENANT_CLAIM").unwrap_or_else(|_| DEFAULT_TENANT_CLAIM.into())
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
    Ok(DevAuth::new(key, tenant_claim()))
}

async fn up(port: u16, emulator_port: u16) -> Result<(), Box<dyn std::error::Error>> {
    ledger_telemetry::logs::init();
    let metrics = devkit::dashboard::local_metrics();
    // One process plays both functions: each starts cold once.
    ledger_telemetry::metrics::cold_start(ledger_telemetry::Function::Api);
    ledger_telemetry::metrics::cold_start(ledger_telemetry::Function::Worker);
    let emulator = Emulator::start(emulator_port)?;
    let table = "ledger-local";
    let stack = devkit::Stack::create(&emulator, table, None).await?;
    let auth = dev_auth()?;
    let state = stack.state().with_tenant_claim(tenant_claim());
    tokio::spawn(stack.worker().run(stack.store.clone()));
    tokio::spawn(metrics.run(stack.sqs.clone(), stack.queue.url().to_owned(), stack.dead_letter_url.clone()));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let running = serde_json::json!({
        "url": url,
        "emulator": emulator.endpoint(),
        "queue_url": stack.queue.url(),
        "dlq_url": stack.dead_letter_url,
    });
    std::fs::create_dir_all(paths::local_dir())?;
    std::fs::write(running_file(), running.to_string())?;
    print_banner(&url, &emulator.endpoint(), table, &auth);
    println!(
        "  queue      {} (worker: batches of {}, window {} s, as template.yaml's event source)\n  dead letters {}\n",
        stack.queue.url(),
        stack.event_source.batch_size,
        stack.event_source.batching_window_secs,
        stack.dead_letter_url
    );
    println!("  dashboard  {url}/dashboard (live; drive it with `cargo stack load`)\n");
    axum::serve(listener, devkit::local_router(state, auth).merge(devkit::dashboard::routes()))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
            eprintln!("\nstopping: API and emulator");
        })
        .await?;
    drop(emulator);
    Ok(())
}

fn print_banner(url: &str, emulator: &str, table: &str, auth: &DevAuth) {
    let token = auth.token("acme", TOKEN_TTL);
    let other = auth.token("globex", TOKEN_TTL);
    let template = paths::template();
    println!(
        "\nLedger running locally (Ctrl-C stops everything)\n\
         \n  API        {url}\n  emulator   {emulator} (table {table}, shaped by {})\n\
         \n  token (tenant acme):\n    export TOKEN={token}\n  token (tenant globex):\n    export OTHER_TOKEN={other}\n\
         \n  try:\n    curl -s -X POST {url}/v1/accounts -H \"authorization: Bearer $TOKEN\" \\\n\
         \x20     -H 'content-type: application/json' -d '{{\"id\":\"bank\",\"currency\":\"EUR\",\"allow_overdraft\":true}}'\n",
        Path::new(&template).display()
    );
}

fn print_capacity() {
    use ledger_dynamodb::capacity;
    let cases = [
        ("typical: 16-char ids, no metadata", capacity::sample_items(16, &Default::default())),
        (
            "largest: 64-char ids, 50 x 500-char metadata",
            capacity::sample_items(64, &capacity::largest_metadata()),
        ),
    ];
    for (label, items) in cases {
        println!(
            "\n{label}: account profile {} B, balance {} B, transfer {} B, entry {} B\n",
            items.profile, items.balance, items.transfer, items.entry
        );
        println!("| operation | DynamoDB calls | RCU | WCU |\n|---|---|---|---|");
        for (op, calls, rcu, wcu) in capacity::operations(&items) {
            println!("| `{op}` | {calls} | {rcu} | {wcu} |");
        }
    }
}

/// Where `cargo stack up` notes its emulator and queues, for the other commands.
fn running_file() -> std::path::PathBuf {
    paths::local_dir().join("running-stack.json")
}

async fn dlq(action: DlqAction, urls: Option<(String, String)>) -> Result<(), Box<dyn std::error::Error>> {
    let (client, queue_url, dlq_url) = match urls {
        Some((queue, dlq)) => {
            let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
            (aws_sdk_sqs::Client::new(&config), queue, dlq)
        }
        None => {
            let text = std::fs::read_to_string(running_file()).map_err(
                |_| "no running local stack: start `cargo stack up`, or pass --queue-url and --dlq-url",
            )?;
            let running: serde_json::Value = serde_json::from_str(&text)?;
            let field = |name: &str| running[name].as_str().unwrap_or_default().to_owned();
            let config = ledger_dynamodb::client::config_loader()
                .endpoint_url(field("emulator"))
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                    "test", "test", None, None, "devstack",
                ))
                .load()
                .await;
            (aws_sdk_sqs::Client::new(&config), field("queue_url"), field("dlq_url"))
        }
    };
    match action {
        DlqAction::List => {
            let letters = devkit::dlq::list(&client, &dlq_url).await?;
            println!("{} message(s) in {dlq_url}", letters.len());
            for l in letters {
                println!("- {} (received {} times): {}\n  {}", l.message_id, l.receives, l.reason, l.body);
            }
        }
        DlqAction::Redrive => {
            let moved = devkit::dlq::redrive(&client, &dlq_url, &queue_url).await?;
            println!("moved {moved} message(s) from {dlq_url} to {queue_url}");
        }
    }
    Ok(())
}
