//! `cargo stack bench cold-start`: init and first-invoke time of each function against a hello-world
//! `lambda_runtime` binary (the floor), all built with the release profile and measured in the same
//! run, as fresh processes under a local Runtime API. Runs are interleaved (floor, api, worker,
//! sweeper, floor, …) so the machine's drift falls on all of them alike.
//!
//! Init is the time from spawning the process to its first request for an event; on Lambda that is
//! the billed `Init Duration` (minus the sandbox's own start). First invoke is the time from handing
//! over the first event to its answer, the first store call included: the api a transfer, the
//! worker a queued batch of 2, the sweeper a sweep.

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

    let mut samples: Vec<(Binary, Vec<Duration>, Vec<Duration>)> =
        Binary::ALL.iter().map(|b| (*b, Vec::new(), Vec::new())).collect();
    // Every event is made before the first timing, so no store write of the set-up runs beside one.
    let mut events = Vec::new();
    for run in 0..args.runs {
        for binary in Binary::ALL {
            events.push(
                serde_json::to_vec(&first_event(binary, &stack, usize::from(run)).await?)
                    .map_err(io_error)?,
            );
        }
    }
    let mut events = events.into_iter();
    for _ in 0..args.runs {
        for (binary, inits, firsts) in &mut samples {
            let event = events.next().unwrap_or_default();
            // Lets the emulator finish what the previous first invoke set off.
            tokio::time::sleep(SETTLE).await;
            let mut function = LocalFunction::start(&path(*binary), binary.memory_mb()?, &env).await?;
            let init = function.ready().await?;
            let first = function.invoke(&event).await?;
            function.stop().await;
            if !functions::succeeded(*binary, &first.response) {
                return Err(io_error(format!(
                    "{binary:?} failed its first event: {}",
                    String::from_utf8_lossy(&first.response)
                )));
            }
            inits.push(init);
            firsts.push(first.took);
        }
    }
    let floor = median(&samples[0].1);
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
    let _ = writeln!(report, "| binary | size | init | × floor (medians) | first invoke |");
    let _ = writeln!(report, "|---|---|---|---|---|");
    for (binary, inits, firsts) in &samples {
        let size = std::fs::metadata(path(*binary)).map(|m| m.len()).unwrap_or(0);
        let _ = writeln!(
            report,
            "| {} | {:.1} MB | {} | {:.2} | {} |",
            binary.package(),
            size as f64 / 1e6,
            spread(inits),
            ms(median(inits)) / ms(floor),
            spread(firsts),
        );
    }
    Ok(report)
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
    api.stop().await;
    Ok(())
}

async fn first_event(binary: Binary, stack: &EmulatedStack, run: usize) -> std::io::Result<Value> {
    match binary {
        Binary::Floor => Ok(json!({"hello": "world"})),
        Binary::Api => functions::api_event("create-transfer.json", &[("id", json!(format!("cold-{run}")))]),
        Binary::Worker => functions::worker_event(stack, &format!("cold-batch-{run}"), 2).await,
        Binary::Sweeper => {
            Ok(json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}))
        }
        Binary::Publisher => functions::publisher_event(&format!("cold-{run}")),
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
