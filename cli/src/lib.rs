//! `ledger`: the ledger from a terminal. Accounts, balances, transfers (make, search, post, void,
//! reverse), events (list, tail) and webhook endpoints, against the local stack or a deployed API,
//! printed as a table or as JSON. Every call goes through `ledger-client`: a transfer's id is
//! chosen once (or given) and kept across retries, so running a command again never moves money
//! twice.

mod audit;
mod output;

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use futures::{StreamExt, TryStreamExt};
use ledger::{
    AccountId, Amount, BatchId, Currency, EndpointId, KindName, Metadata, MetadataMatch, NewAccount,
    NewTransfer, StatusName, Timeout, TransferId, TransferKind, TransferQuery,
};
use ledger_client::{Client, ClientError};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::output::{Format, Printer};

#[derive(Debug, Parser)]
#[command(name = "ledger", about = "The payments ledger from a terminal", version)]
pub struct Cli {
    /// The API's base URL (the local stack's: http://127.0.0.1:3000).
    #[arg(long, env = "LEDGER_URL", default_value = "http://127.0.0.1:3000")]
    url: String,
    /// A bearer token with the scopes the command needs (`cargo stack token` makes one locally).
    #[arg(long, env = "LEDGER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// How to print what comes back.
    #[arg(long, short, global = true, value_enum, default_value_t = OutputArg::Table)]
    output: OutputArg,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OutputArg {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Open, read and list accounts; their entries, balances and statements.
    #[command(subcommand)]
    Accounts(AccountCommand),
    /// Make, read, search, post, void and reverse transfers; submit batches.
    #[command(subcommand)]
    Transfers(TransferCommand),
    /// List the ledger's events, or follow them as they happen.
    #[command(subcommand)]
    Events(EventCommand),
    /// Manage webhook endpoints.
    #[command(subcommand)]
    Webhooks(WebhookCommand),
    /// Check a tenant's history offline, against a signed digest and the signer's public key: every
    /// chain recomputed, each account shard extending its signed head (no AWS, no token).
    Audit(audit::AuditArgs),
}

#[derive(Debug, Subcommand)]
enum AccountCommand {
    /// Open an account (running it again is a replay).
    Create {
        id: String,
        #[arg(long)]
        currency: String,
        /// May go below zero, without limit.
        #[arg(long)]
        overdraft: bool,
        /// A credit line: `available` may go down to minus this.
        #[arg(long)]
        overdraft_limit: Option<u64>,
        /// The balance (pending credits counted) may not go above this.
        #[arg(long)]
        max_balance: Option<u64>,
        /// Hot: how many shards its balance spreads over (1 to 64).
        #[arg(long, default_value_t = 1)]
        shards: u16,
        /// Metadata, as key=value (repeat for several).
        #[arg(long = "meta", value_parser = pair)]
        metadata: Vec<(String, String)>,
    },
    Get {
        id: String,
    },
    /// Stop money leaving the account (`--debits-only`) or moving at all.
    Freeze {
        id: String,
        #[arg(long)]
        debits_only: bool,
    },
    Unfreeze {
        id: String,
    },
    /// Close the account for good (at a zero balance, nothing pending).
    Close {
        id: String,
    },
    /// The accounts by id, those with every `--meta` pair given.
    List {
        #[arg(long = "meta", value_parser = pair)]
        metadata: Vec<(String, String)>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// An account's entries, newest first.
    Entries {
        id: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// An account's totals now, or as of `--at`.
    Balance {
        id: String,
        #[arg(long, value_parser = instant)]
        at: Option<OffsetDateTime>,
    },
    /// Reconcile an account that mirrors a bank account with the bank's statement (a CSV or an
    /// ISO 20022 camt.053 file); with `--adjust-with`, book each unmatched line against that
    /// account. The same statement again reads back the first reconciliation.
    Reconcile {
        id: String,
        /// The statement file.
        #[arg(long)]
        file: std::path::PathBuf,
        /// `csv` or `camt.053`; default: by the file's extension (`.xml` is camt.053).
        #[arg(long)]
        format: Option<String>,
        #[arg(long)]
        adjust_with: Option<String>,
    },
    /// An account's statement: opening balance, entries, closing balance.
    Statement {
        id: String,
        #[arg(long, value_parser = instant)]
        from: Option<OffsetDateTime>,
        #[arg(long, value_parser = instant)]
        to: Option<OffsetDateTime>,
    },
}

#[derive(Debug, Args)]
struct IdArg {
    /// The transfer's id (its idempotency key); a fresh one if not given, printed.
    #[arg(long)]
    id: Option<String>,
}

#[derive(Debug, Subcommand)]
enum TransferCommand {
    /// Move `--amount` from `--from` to `--to` (with `--hold`: reserve it until a post or void).
    Create {
        #[command(flatten)]
        id: IdArg,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        /// In the currency's minor unit.
        #[arg(long)]
        amount: u64,
        #[arg(long)]
        currency: String,
        #[arg(long)]
        hold: bool,
        /// A hold's lifetime in seconds.
        #[arg(long, requires = "hold")]
        timeout: Option<u64>,
        #[arg(long = "meta", value_parser = pair)]
        metadata: Vec<(String, String)>,
        /// Queue it (`Prefer: respond-async`) instead of waiting for it.
        #[arg(long = "async")]
        queue: bool,
    },
    Get {
        id: String,
    },
    /// Transfers by account, status, kind, creation range, batch and metadata, newest first.
    Search {
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        kind: Option<String>,
        #[arg(long, value_parser = instant)]
        from: Option<OffsetDateTime>,
        #[arg(long, value_parser = instant)]
        to: Option<OffsetDateTime>,
        #[arg(long)]
        batch: Option<String>,
        /// A linked chain, by its first member's id.
        #[arg(long)]
        chain: Option<String>,
        #[arg(long = "meta", value_parser = pair)]
        metadata: Vec<(String, String)>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Post a hold: all of it, or `--amount` of it.
    Post {
        hold: String,
        #[arg(long)]
        amount: Option<u64>,
        #[command(flatten)]
        id: IdArg,
    },
    /// Void a hold.
    Void {
        hold: String,
        #[command(flatten)]
        id: IdArg,
    },
    /// Reverse a transfer: all that is not reversed yet, or `--amount`.
    Reverse {
        transfer: String,
        #[arg(long)]
        amount: Option<u64>,
        #[command(flatten)]
        id: IdArg,
    },
    /// Submit a batch from a JSON file of transfers (an array, as `POST /v1/transfers` takes each).
    Batch {
        file: std::path::PathBuf,
        /// The batch's id (its idempotency key); a fresh one if not given, printed.
        #[arg(long)]
        id: Option<String>,
    },
    /// Where a batch stands.
    BatchStatus {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum EventCommand {
    /// The events, newest first.
    List {
        #[arg(long = "type")]
        kind: Option<String>,
        #[arg(long, value_parser = instant)]
        from: Option<OffsetDateTime>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Print events as they happen, oldest first (until `--count` of them, or Ctrl-C).
    Tail {
        #[arg(long = "type")]
        kind: Option<String>,
        #[arg(long)]
        count: Option<usize>,
        /// Milliseconds between polls.
        #[arg(long, default_value_t = 1000)]
        every: u64,
        /// Start from this instant instead of now.
        #[arg(long, value_parser = instant)]
        since: Option<OffsetDateTime>,
    },
}

#[derive(Debug, Subcommand)]
enum WebhookCommand {
    /// Add an endpoint (its signing secret is printed once).
    Create {
        url: String,
        /// An event type to receive (repeat; default: all).
        #[arg(long = "event-type")]
        event_types: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    List,
    Get {
        id: String,
    },
    Delete {
        id: String,
    },
    /// Enable or disable an endpoint.
    Enable {
        id: String,
        #[arg(long, action = clap::ArgAction::Set, default_value_t = true)]
        enabled: bool,
    },
    /// A new signing secret (printed once; the old one signs on for a day).
    Rotate {
        id: String,
    },
    /// An endpoint's deliveries and their attempts.
    Deliveries {
        id: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Deliver again the endpoint's events since `--from`.
    Replay {
        id: String,
        #[arg(long, value_parser = instant)]
        from: OffsetDateTime,
    },
}

fn pair(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{raw}: not key=value"))
}

fn instant(raw: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(raw, &Rfc3339)
        .map_err(|_| format!("{raw}: not an RFC 3339 instant (2026-12-06T10:00:00Z)"))
}

/// What went wrong, as the terminal shows it.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Api(#[from] ClientError),
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    #[error("the history is not as signed ({0} findings)")]
    AuditFailed(usize),
}

fn usage(field: &str, e: impl std::fmt::Display) -> CliError {
    CliError::Usage(format!("{field}: {e}"))
}

fn metadata(pairs: Vec<(String, String)>) -> Result<Metadata, CliError> {
    Metadata::parse(pairs.into_iter().collect()).map_err(|e| usage("--meta", e))
}

fn matching(pairs: Vec<(String, String)>) -> Result<MetadataMatch, CliError> {
    MetadataMatch::parse(pairs.into_iter().collect::<BTreeMap<_, _>>()).map_err(|e| usage("--meta", e))
}

fn transfer_id(given: IdArg) -> Result<TransferId, CliError> {
    match given.id {
        Some(id) => TransferId::parse(id).map_err(|e| usage("--id", e)),
        None => Ok(TransferId::generate()),
    }
}

fn amount(raw: Option<u64>) -> Result<Option<Amount>, CliError> {
    raw.map(Amount::new).transpose().map_err(|e| usage("--amount", e))
}

/// Runs one command line, printing to `out`.
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<(), CliError> {
    let format = match cli.output {
        OutputArg::Table => Format::Table,
        OutputArg::Json => Format::Json,
    };
    let mut print = Printer { out, format };
    let client = || {
        let token = cli
            .token
            .as_deref()
            .ok_or_else(|| usage("--token", "required (or LEDGER_TOKEN) to call the API"))?;
        Ok::<_, CliError>(Client::new(&cli.url, token)?)
    };
    match cli.command {
        Command::Accounts(command) => accounts(&client()?, command, &mut print).await,
        Command::Transfers(command) => transfers(&client()?, command, &mut print).await,
        Command::Events(command) => events(&client()?, command, &mut print).await,
        Command::Webhooks(command) => webhooks(&client()?, command, &mut print).await,
        Command::Audit(args) => audit::run(args, &mut print),
    }
}

async fn accounts(client: &Client, command: AccountCommand, print: &mut Printer<'_>) -> Result<(), CliError> {
    let account_id = |raw: String| AccountId::parse(raw).map_err(|e| usage("id", e));
    match command {
        AccountCommand::Create {
            id,
            currency,
            overdraft,
            overdraft_limit,
            max_balance,
            shards,
            metadata: pairs,
        } => {
            let limit =
                |raw: Option<u64>, name| raw.map(ledger::Limit::new).transpose().map_err(|e| usage(name, e));
            let bounds = ledger::Bounds {
                overdraft_limit: limit(overdraft_limit, "--overdraft-limit")?,
                max_balance: limit(max_balance, "--max-balance")?,
            };
            bounds.check(overdraft).map_err(|e| usage("--overdraft-limit", e))?;
            let shards = ledger::ShardCount::new(shards).map_err(|e| usage("--shards", e))?;
            bounds.check_shards(shards.get()).map_err(|e| usage("--shards", e))?;
            let request = NewAccount {
                id: account_id(id)?,
                currency: Currency::parse(&currency).map_err(|e| usage("--currency", e))?,
                allow_overdraft: overdraft,
                metadata: metadata(pairs)?,
                bounds,
                effective_at: None,
                shards,
            };
            let written = client.create_account(&request).await?;
            print.written(written.replayed)?;
            print.accounts(&[written.value])
        }
        AccountCommand::Get { id } => print.accounts(&[client.get_account(&account_id(id)?).await?]),
        AccountCommand::Freeze { id, debits_only } => {
            print.accounts(&[client.freeze_account(&account_id(id)?, debits_only).await?.value])
        }
        AccountCommand::Unfreeze { id } => {
            print.accounts(&[client.unfreeze_account(&account_id(id)?).await?.value])
        }
        AccountCommand::Close { id } => {
            print.accounts(&[client.close_account(&account_id(id)?).await?.value])
        }
        AccountCommand::List { metadata: pairs, limit } => {
            let found: Vec<_> = client.accounts(&matching(pairs)?).take(limit).try_collect().await?;
            print.accounts(&found)
        }
        AccountCommand::Entries { id, limit } => {
            let found: Vec<_> = client.entries(&account_id(id)?).take(limit).try_collect().await?;
            print.entries(&found)
        }
        AccountCommand::Reconcile { id, file, format, adjust_with } => {
            let statement = std::fs::read_to_string(&file)
                .map_err(|e| usage("--file", format!("{}: {e}", file.display())))?;
            let format = format.unwrap_or_else(|| {
                let xml = file.extension().is_some_and(|e| e.eq_ignore_ascii_case("xml"));
                if xml { "camt.053" } else { "csv" }.to_owned()
            });
            let counter = adjust_with.map(account_id).transpose()?;
            let written = client.reconcile(&account_id(id)?, &format, &statement, counter.as_ref()).await?;
            print.written(written.replayed)?;
            print.reconciliation(&written.value)
        }
        AccountCommand::Balance { id, at } => {
            let at = at.unwrap_or_else(OffsetDateTime::now_utc);
            print.balance(&client.balance_at(&account_id(id)?, at).await?)
        }
        AccountCommand::Statement { id, from, to } => {
            let id = account_id(id)?;
            let mut cursor = None;
            loop {
                let page = client.statement(&id, from, to, cursor.as_deref()).await?;
                cursor = page.next_cursor.clone();
                print.statement(&page)?;
                if cursor.is_none() {
                    return Ok(());
                }
            }
        }
    }
}

async fn transfers(
    client: &Client,
    command: TransferCommand,
    print: &mut Printer<'_>,
) -> Result<(), CliError> {
    let transfer_ref = |raw: String, name: &str| TransferId::parse(raw).map_err(|e| usage(name, e));
    let make = |id: TransferId, kind: TransferKind, metadata: Metadata| NewTransfer {
        id,
        kind,
        metadata,
        linked: false,
        effective_at: None,
    };
    let send = async |request: NewTransfer, queue: bool, print: &mut Printer<'_>| -> Result<(), CliError> {
        print.note(&format!("transfer id: {}", request.id))?;
        let written = if queue {
            client.submit_transfer(&request).await?
        } else {
            client.create_transfer(&request).await?
        };
        print.written(written.replayed)?;
        print.transfers(&[written.value])
    };
    match command {
        TransferCommand::Create {
            id,
            from,
            to,
            amount: raw,
            currency,
            hold,
            timeout,
            metadata: pairs,
            queue,
        } => {
            let movement = ledger::Movement {
                debit_account_id: AccountId::parse(from).map_err(|e| usage("--from", e))?,
                credit_account_id: AccountId::parse(to).map_err(|e| usage("--to", e))?,
                amount: Amount::new(raw).map_err(|e| usage("--amount", e))?,
                currency: Currency::parse(&currency).map_err(|e| usage("--currency", e))?,
            };
            let kind = if hold {
                let timeout = timeout.map(Timeout::new).transpose().map_err(|e| usage("--timeout", e))?;
                TransferKind::Pending { movement, timeout }
            } else {
                TransferKind::Immediate(movement)
            };
            send(make(transfer_id(id)?, kind, metadata(pairs)?), queue, print).await
        }
        TransferCommand::Get { id } => {
            print.transfers(&[client.get_transfer(&transfer_ref(id, "id")?).await?])
        }
        TransferCommand::Search { account, status, kind, from, to, batch, chain, metadata: pairs, limit } => {
            let query = TransferQuery {
                account: account.map(AccountId::parse).transpose().map_err(|e| usage("--account", e))?,
                status: status
                    .map(|s| StatusName::parse(&s))
                    .transpose()
                    .map_err(|e| usage("--status", e))?,
                kind: kind.map(|k| KindName::parse(&k)).transpose().map_err(|e| usage("--kind", e))?,
                created_from: from,
                created_to: to,
                batch: batch.map(BatchId::parse).transpose().map_err(|e| usage("--batch", e))?,
                chain: chain.map(TransferId::parse).transpose().map_err(|e| usage("--chain", e))?,
                metadata: matching(pairs)?,
            };
            let found: Vec<_> = client.search_transfers(&query).take(limit).try_collect().await?;
            print.transfers(&found)
        }
        TransferCommand::Post { hold, amount: raw, id } => {
            let kind =
                TransferKind::PostPending { pending_id: transfer_ref(hold, "hold")?, amount: amount(raw)? };
            send(make(transfer_id(id)?, kind, Metadata::default()), false, print).await
        }
        TransferCommand::Void { hold, id } => {
            let kind = TransferKind::VoidPending { pending_id: transfer_ref(hold, "hold")? };
            send(make(transfer_id(id)?, kind, Metadata::default()), false, print).await
        }
        TransferCommand::Reverse { transfer, amount: raw, id } => {
            let kind = TransferKind::Reversal {
                reversed_id: transfer_ref(transfer, "transfer")?,
                amount: amount(raw)?,
            };
            send(make(transfer_id(id)?, kind, Metadata::default()), false, print).await
        }
        TransferCommand::Batch { file, id } => {
            let text = std::fs::read_to_string(&file).map_err(|e| usage(&file.display().to_string(), e))?;
            let transfers: Vec<NewTransfer> =
                serde_json::from_str(&text).map_err(|e| usage(&file.display().to_string(), e))?;
            let id = match id {
                Some(id) => BatchId::parse(id).map_err(|e| usage("--id", e))?,
                None => BatchId::generate(),
            };
            print.note(&format!("batch id: {id}"))?;
            let written = client.submit_batch(&id, &transfers).await?;
            print.written(written.replayed)?;
            print.batch(&written.value)
        }
        TransferCommand::BatchStatus { id } => {
            print.batch(&client.get_batch(&BatchId::parse(id).map_err(|e| usage("id", e))?).await?)
        }
    }
}

async fn events(client: &Client, command: EventCommand, print: &mut Printer<'_>) -> Result<(), CliError> {
    match command {
        EventCommand::List { kind, from, limit } => {
            let found: Vec<_> = client.events(kind.as_deref(), from, None).take(limit).try_collect().await?;
            print.events(&found)
        }
        EventCommand::Tail { kind, count, every, since } => {
            // Each poll lists what was created since the newest event seen (newest first), and
            // prints the unseen ones oldest first. Events are listed a moment after they happen,
            // so each poll looks back a little before that instant.
            let mut since = since.unwrap_or_else(OffsetDateTime::now_utc);
            let mut seen: std::collections::HashMap<ledger::EventId, OffsetDateTime> = Default::default();
            let mut printed = 0;
            loop {
                let from = since - time::Duration::seconds(5);
                let mut fresh: Vec<_> =
                    client.events(kind.as_deref(), Some(from), None).try_collect().await?;
                seen.retain(|_, created| *created >= from);
                fresh.retain(|e| seen.insert(e.id.clone(), e.created).is_none());
                fresh.reverse();
                for event in fresh {
                    since = since.max(event.created);
                    print.events(std::slice::from_ref(&event))?;
                    printed += 1;
                    if count.is_some_and(|count| printed >= count) {
                        return Ok(());
                    }
                }
                tokio::time::sleep(Duration::from_millis(every)).await;
            }
        }
    }
}

async fn webhooks(client: &Client, command: WebhookCommand, print: &mut Printer<'_>) -> Result<(), CliError> {
    let endpoint = |raw: String| EndpointId::parse(raw).map_err(|e| usage("id", e));
    match command {
        WebhookCommand::Create { url, event_types, description } => {
            let types: Vec<&str> = if event_types.is_empty() {
                vec!["*"]
            } else {
                event_types.iter().map(String::as_str).collect()
            };
            print.with_secret(&client.create_endpoint(&url, &types, &description).await?)
        }
        WebhookCommand::List => {
            let found: Vec<_> = client.endpoints().try_collect().await?;
            print.endpoints(&found)
        }
        WebhookCommand::Get { id } => print.endpoints(&[client.get_endpoint(&endpoint(id)?).await?]),
        WebhookCommand::Delete { id } => {
            client.delete_endpoint(&endpoint(id)?).await?;
            print.note("deleted")
        }
        WebhookCommand::Enable { id, enabled } => {
            let changed =
                client.update_endpoint(&endpoint(id)?, serde_json::json!({"enabled": enabled})).await?;
            print.endpoints(&[changed])
        }
        WebhookCommand::Rotate { id } => print.with_secret(&client.rotate_secret(&endpoint(id)?).await?),
        WebhookCommand::Deliveries { id, limit } => {
            let found: Vec<_> = client.deliveries(&endpoint(id)?).take(limit).try_collect().await?;
            print.deliveries(&found)
        }
        WebhookCommand::Replay { id, from } => {
            let id = endpoint(id)?;
            let mut cursor: Option<String> = None;
            let mut queued = 0;
            loop {
                let answer = client.replay(&id, from, cursor.as_deref()).await?;
                queued += answer.queued;
                match answer.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => return print.note(&format!("{queued} deliveries queued")),
                }
            }
        }
    }
}
