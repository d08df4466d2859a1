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
    /// Install the pinned Python tools: the emulator, or also SAM CLI, cfn-lint and cargo-lambda.
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
    /// Print each operation's DynamoDB calls and capacity units, computed from item sizes.
    Capacity,
    /// Print a development token for a tenant (valid against `cargo stack up`).
    Token {
        #[arg(default_value = "acme")]
        tenant: String,
    },
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
            if tools {
                setup::ensure(Requirements::Tools)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Test { args } => {
            setup::ensure(Requirements::Emulator)?;
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
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
        .init();
    let emulator = Emulator::start(emulator_port)?;
    let table = "ledger-local";
    let stack = devkit::Stack::create(&emulator, table, None).await?;
    let auth = dev_auth()?;
    let state = stack.state().with_tenant_claim(tenant_claim());
    tokio::spawn(stack.worker().run(stack.store.clone()));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let running = serde_json::json!({
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
    axum::serve(listener, devkit::local_router(state, auth))
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
