//! `cargo stack bench cold-start`: init and first-invoke time of each function against a hello-world
//! `lambda_runtime` binary (the floor), all built with the release profile and measured in the same
//! run, as fresh processes under a local Runtime API. Runs are interleaved (floor, api, worker,
//! sweeper, floor, …) so the machine's drift falls on all of them alike.
//!
//! Init is the time from spawning the process to its first request for an event; on Lambda that is
//! the billed `Init Duration` (minus the sandbox's own start). First invoke is the time from handing
//! over the first event to its answer, the first store call included: the api a transfer, the
//! worker a queued batch of 2, the sweeper a sweep, the publisher a stream batch of one event, the
//! deliverer the fan-out of one event to the tenant's one webhook endpoint. A second event of the
//! same kind follows in the same process: the cold start's whole cost is init plus what the first
//! invoke took over the second, so work moved from init to a first use is still counted.
//!
//! Last, it times a GetItem over a new DynamoDB client in its own warm process, then a second over
//! the same client: what a function's first store call pays over its later ones (a connection to
//! open), which the floor's first invoke, calling nothing, never pays.

use crate::{io_error, ms};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::emulators::Ports;
use harness::{EmulatedStack, Emulators, StackOptions};
use serde_json::{Value, json};

use crate::functions::{self, Binary};
use crate::runtime_api::LocalFunction;

#[derive(clap::Args, Clone, Debug)]
pub struct ColdStartArgs {
    /// Cold starts of each binary.
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u16).range(1..))]
    pub runs: u16,
    /// Measure the binaries in this directory (e.g. another commit's release build, with a
    /// `cold-start-floor` beside them) instead of building this tree's.
    #[arg(long)]
    pub prebuilt: Option<PathBuf>,
}

/// Invocations of a warm api before measuring: DynamoDB Local runs on the JVM, whose JIT would
/// otherwise make the first runs' store calls slow.
const WARM_UP: usize = 300;
/// Pause before each cold start.
const SETTLE: Duration = Duration::from_millis(100);

pub async fn run(args: ColdStartArgs) -> std::io::Result<String> {
    let dir = functions::binaries(args.prebuilt)?;
    let path = |binary: Binary| dir.join(binary.package());
    let emulators = Emulators::start(Ports::default())?;
    let stack = EmulatedStack::create(&emulators, "cold-start", StackOptions::default()).await?;
    functions::open_sample_accounts(&stack).await?;
    let env = functions::environment(&emulators, &stack);
    warm_up(&path(Binary::Api), &env).await?;

    let mut samples: Vec<Samples> = Binary::ALL.iter().map(|b| Samples::of(*b)).collect();
    // Every event is made before the first timing, so no store write of the set-up runs beside one:
    // for each cold start, its first event and a second of the same kind (fresh ids).
    let mut events = Vec::new();
    for run in 0..usize::from(args.runs) {
        for binary in Binary::ALL {
            let mut pair = [Vec::new(), Vec::new()];
            for (slot, index) in pair.iter_mut().zip([run, usize::from(args.runs) + run]) {
                *slot = serde_json::to_vec(&first_event(binary, &stack, index).await?).map_err(io_error)?;
            }
            events.push(pair);
        }
    }
    let mut events = events.into_iter();
    for _ in 0..args.runs {
        for samples in &mut samples {
            let binary = samples.binary;
            let [first_event, second_event] = events.next().unwrap_or_default();
            // Lets the emulator finish what the previous invokes set off.
            tokio::time::sleep(SETTLE).await;
            let mut function = LocalFunction::start(&path(binary), binary.memory_mb()?, &env).await?;
            let init = function.ready().await?;
            let first = function.invoke(&first_event).await?;
            let second = function.invoke(&second_event).await?;
            function.stop().await;
            for answer in [&first, &second] {
                if !functions::succeeded(binary, &answer.response) {
                    return Err(io_error(format!(
                        "{binary:?} failed an event: {}",
                        String::from_utf8_lossy(&answer.response)
                    )));
                }
            }
            samples.inits.push(init);
            samples.firsts.push(first.took);
            // What the cold start added: init, and what the first invoke took over the second.
            samples.costs.push(init + first.took.saturating_sub(second.took));
        }
    }
    let (new_client, reused) = first_store_calls(&emulators, &stack.table, args.runs).await?;
    let floor = &samples[0];
    let (floor_init, floor_cost) = (median(&floor.inits), median(&floor.costs));
    let mut report = String::new();
    let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
    let _ = writeln!(
        report,
        "cargo stack bench cold-start on this machine ({cores} cores): {} cold starts of each release \
         binary of {}, interleaved; init = spawn to first event request, first invoke = event to answer \
         (min / median / max, ms)\n",
        args.runs,
        dir.display()
    );
    let _ = writeln!(
        report,
        "| binary | size | init | × floor (medians) | first invoke | cold start: init + first invoke − second | × floor (medians) |"
    );
    let _ = writeln!(report, "|---|---|---|---|---|---|---|");
    for samples in &samples {
        let size = std::fs::metadata(path(samples.binary)).map(|m| m.len()).unwrap_or(0);
        let _ = writeln!(
            report,
            "| {} | {:.1} MB | {} | {:.2} | {} | {} | {:.2} |",
            samples.binary.package(),
            size as f64 / 1e6,
            spread(&samples.inits),
            ms(median(&samples.inits)) / ms(floor_init),
            spread(&samples.firsts),
            spread(&samples.costs),
            ms(median(&samples.costs)) / ms(floor_cost),
        );
    }
    let _ = writeln!(
        report,
        "\nA GetItem over a new DynamoDB client in this warm process (its connection opened), then a \
         second over it: {:.2} and {:.2} ms (medians of {}). A function's first invoke pays the difference \
         for its first store call; the floor's, which calls nothing, does not.",
        ms(median(&new_client)),
        ms(median(&reused)),
        args.runs
    );
    Ok(report)
}

/// `runs` times: a fresh client's first GetItem (a key that is never written), then its second.
async fn first_store_calls(
    emulators: &Emulators,
    table: &str,
    runs: u16,
) -> std::io::Result<(Vec<Duration>, Vec<Duration>)> {
    let key = aws_sdk_dynamodb::types::AttributeValue::S("cold-start#none".to_owned());
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        tokio::time::sleep(SETTLE).await;
        let client = emulators.dynamodb().await;
        for took in [&mut first, &mut second] {
            let started = std::time::Instant::now();
            client
                .get_item()
                .table_name(table)
                .key("pk", key.clone())
                .key("sk", key.clone())
                .send()
                .await
                .map_err(io_error)?;
            took.push(started.elapsed());
        }
    }
    Ok((first, second))
}

async fn warm_up(api: &Path, env: &[(&str, String)]) -> std::io::Result<()> {
    let mut api = LocalFunction::start(api, Binary::Api.memory_mb()?, env).await?;
    api.ready().await?;
    for i in 0..WARM_UP {
        let event = functions::api_event("create-transfer.json", &[("id", json!(format!("warm-{i}")))])?;
        let answer = api.invoke(&serde_json::to_vec(&event).map_err(io_error)?).await?;
        if !functions::succeeded(Binary::Api, &answer.response) {
            return Err(io_error(format!(
                "warm-up transfer {i}: {}",
                String::from_utf8_lossy(&answer.response)
            )));
        }
    }
    // One webhook endpoint of the tenant: the deliverer's first event fans out to it.
    let endpoint = functions::api_event("create-webhook-endpoint.json", &[])?;
    let answer = api.invoke(&serde_json::to_vec(&endpoint).map_err(io_error)?).await?;
    if !functions::succeeded(Binary::Api, &answer.response) {
        return Err(io_error(format!("webhook endpoint: {}", String::from_utf8_lossy(&answer.response))));
    }
    api.stop().await;
    Ok(())
}

async fn first_event(binary: Binary, stack: &EmulatedStack, run: usize) -> std::io::Result<Value> {
    match binary {
        Binary::Floor => Ok(json!({"hello": "world"})),
        Binary::Api => functions::api_event("create-transfer.json", &[("id", json!(format!("cold-{run}")))]),
        Binary::Worker => functions::worker_event(stack, &format!("cold-batch-{run}"), 2).await,
        Binary::Sweeper | Binary::Auditor => {
            Ok(json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}))
        }
        Binary::Publisher => functions::publisher_event(&format!("cold-{run}")),
        Binary::Deliverer => functions::deliverer_event(&format!("cold-{run}")),
    }
}

/// One binary's cold starts.
struct Samples {
    binary: Binary,
    inits: Vec<Duration>,
    firsts: Vec<Duration>,
    /// Init plus what the first invoke took over the second: the whole cost of a cold start,
    /// wherever the function does its one-time work (at init or at its first use).
    costs: Vec<Duration>,
}

impl Samples {
    fn of(binary: Binary) -> Self {
        Self { binary, inits: Vec::new(), firsts: Vec::new(), costs: Vec::new() }
    }
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn spread(samples: &[Duration]) -> String {
    let min = samples.iter().min().copied().unwrap_or_default();
    let max = samples.iter().max().copied().unwrap_or_default();
    format!("{:.2} / {:.2} / {:.2}", ms(min), ms(median(samples)), ms(max))
}
