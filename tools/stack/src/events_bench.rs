//! `cargo stack bench events`: events out, end to end, on the local stack as `cargo stack up`
//! runs it (the publisher on DynamoDB Local's stream, the deliverer on the webhook queue, both as
//! the template configures their event sources). Clients commit transfers through the router; a
//! receiver on this machine is subscribed to `transfer.committed`. Printed: events published and
//! delivered per second over the run, and the latency from each transfer's commit (its event's
//! `created`) to its event on the bus (the bus's copy in the tap queue, SQS `SentTimestamp`) and to
//! its webhook's arrival at the receiver. Then the same again with the publisher and deliverer
//! stopped while the transfers commit, and started after: how fast they work off a backlog. Last,
//! a flood: tenant `flood`, with the most endpoints a tenant may have, commits the same number of
//! transfers as a backlog, then `acme` commits 20: how long acme's webhooks wait beside the flood.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use harness::client::transfer_body;
use harness::emulators::Ports;
use harness::receiver::{Receiver, Reply};
use harness::{Api, EmulatedStack, Emulators, StackOptions};
use http::StatusCode;
use time::OffsetDateTime;

use crate::dashboard::percentile;
use crate::io_error;

#[derive(clap::Args, Clone, Debug)]
pub struct EventsArgs {
    /// Transfers to commit (one event each, besides the accounts').
    #[arg(long, default_value_t = 1_000)]
    pub transfers: usize,
    /// Clients committing at once.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
}

pub async fn run(args: EventsArgs) -> io::Result<String> {
    let emulators = Emulators::start(Ports::default())?;
    let stack = EmulatedStack::create(
        &emulators,
        "events-bench",
        StackOptions { events_out: true, ..StackOptions::default() },
    )
    .await?;
    let api = Api::on(stack);
    let receiver = Receiver::start(vec![], Reply::status(200)).await?;
    let subscribe = serde_json::json!({"url": receiver.url, "event_types": ["transfer.committed"]});
    let reply = api.post("/v1/webhook-endpoints", "acme", subscribe).await;
    if reply.status != StatusCode::CREATED {
        return Err(io_error(format!("subscribing: {}", reply.body)));
    }
    let accounts = args.clients.max(1);
    // Each client between accounts of its own: no transfer waits for another's balance.
    for c in 0..accounts {
        api.open_account("acme", &format!("s{c}"), true).await;
        api.open_account("acme", &format!("c{c}"), false).await;
    }
    let mut out = String::new();
    for backlog in [false, true] {
        out.push_str(&phase(&api, &receiver, &args, accounts, backlog).await?);
    }
    out.push_str(&flood(&api, &receiver, &args).await?);
    Ok(out)
}

/// One run: `backlog` commits everything before the publisher and deliverer start.
async fn phase(
    api: &Api,
    receiver: &Receiver,
    args: &EventsArgs,
    accounts: usize,
    backlog: bool,
) -> io::Result<String> {
    let already = receiver.received().len();
    let stream = api.stack.stream()?.clone();
    let start = || {
        (
            tokio::spawn(stream.clone().run(api.stack.publisher())),
            tokio::spawn(api.stack.delivery_source.clone().run(api.stack.deliverer())),
        )
    };
    let mut running = (!backlog).then(start);
    let prefix = if backlog { "b" } else { "t" };
    let started = OffsetDateTime::now_utc();
    let committed: usize = stream::iter(0..args.transfers)
        .map(|i| {
            let api = &api;
            async move {
                let c = i % accounts;
                let body = transfer_body(&format!("{prefix}{i}"), &format!("s{c}"), &format!("c{c}"), 1);
                usize::from(api.post("/v1/transfers", "acme", body).await.status == StatusCode::CREATED)
            }
        })
        .buffer_unordered(args.clients.max(1))
        .fold(0, |n, ok| async move { n + ok })
        .await;
    let committing = OffsetDateTime::now_utc() - started;
    // The backlog's figures count from when the pipeline starts.
    let started = if backlog { OffsetDateTime::now_utc() } else { started };
    let (publishing, delivering) = running.take().unwrap_or_else(start);
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while receiver.received().len() < already + committed && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    publishing.abort();
    delivering.abort();
    let received: Vec<_> = receiver.received().into_iter().skip(already).collect();
    // Each event once (a duplicate delivery counts at its first arrival).
    let mut delivered: BTreeMap<String, (OffsetDateTime, OffsetDateTime)> = BTreeMap::new();
    for r in &received {
        let event = r.json();
        let created = event["created"]
            .as_str()
            .and_then(|c| OffsetDateTime::parse(c, &time::format_description::well_known::Rfc3339).ok())
            .ok_or_else(|| io_error("a delivery without `created`"))?;
        delivered.entry(event["id"].as_str().unwrap_or_default().to_owned()).or_insert((created, r.wall));
    }
    let published = bus_times(api).await?;
    let ms = |d: time::Duration| d.as_seconds_f64() * 1000.0;
    let mut to_bus: Vec<f64> = Vec::new();
    let mut to_hook: Vec<f64> = Vec::new();
    for (id, (created, at)) in &delivered {
        to_hook.push(ms(*at - *created));
        if let Some(on_bus) = published.get(id) {
            to_bus.push(ms(*on_bus - *created));
        }
    }
    let span = |times: &mut dyn Iterator<Item = OffsetDateTime>| times.max().map(|last| last - started);
    let bus_span = span(&mut published.values().copied()).unwrap_or(time::Duration::ZERO);
    let hook_span = span(&mut delivered.values().map(|(_, at)| *at)).unwrap_or(time::Duration::ZERO);
    let rate = |n: usize, over: time::Duration| n as f64 / over.as_seconds_f64().max(1e-9);
    let quantiles = |values: &[f64]| {
        let q = |p| percentile(values, p).unwrap_or(f64::NAN);
        format!("p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms", q(0.5), q(0.99), q(1.0))
    };
    let mut out = String::new();
    let what = if backlog {
        "backlog (publisher and deliverer started after the commits; times from their start)"
    } else {
        "live"
    };
    let _ = writeln!(
        out,
        "events out, {what}: {committed} transfers committed by {} clients in {:.1} s ({:.0}/s)",
        args.clients,
        committing.as_seconds_f64(),
        rate(committed, committing)
    );
    let _ = writeln!(
        out,
        "  published to the bus: {} events, {:.0} events/s ({} to last on the bus: {:.1} s)",
        published.len(),
        rate(published.len(), bus_span),
        if backlog { "pipeline start" } else { "first commit" },
        bus_span.as_seconds_f64()
    );
    let _ = writeln!(out, "  commit -> on the bus:  {}", quantiles(&to_bus));
    let _ = writeln!(
        out,
        "  delivered by webhook: {} events ({} requests), {:.0} events/s ({} to last delivery: {:.1} s)",
        delivered.len(),
        received.len(),
        rate(delivered.len(), hook_span),
        if backlog { "pipeline start" } else { "first commit" },
        hook_span.as_seconds_f64()
    );
    let _ = writeln!(out, "  commit -> delivered:   {}", quantiles(&to_hook));
    Ok(out)
}

/// Transfers the quiet tenant commits after the flood's backlog.
const QUIET: usize = 20;

/// Tenant `flood`, at its endpoint cap, commits `args.transfers` transfers with the pipeline
/// stopped; then acme commits `QUIET`, and the pipeline starts: acme's commit-to-webhook times
/// beside the flood, and how long the flood's deliveries took.
async fn flood(api: &Api, receiver: &Receiver, args: &EventsArgs) -> io::Result<String> {
    use ledger::webhook::MAX_ENDPOINTS;
    let flooded = Receiver::start(vec![], Reply::status(200)).await?;
    for n in 0..MAX_ENDPOINTS {
        let body =
            serde_json::json!({"url": format!("{}/{n}", flooded.url), "event_types": ["transfer.committed"]});
        let reply = api.post("/v1/webhook-endpoints", "flood", body).await;
        if reply.status != StatusCode::CREATED {
            return Err(io_error(format!("subscribing flood: {}", reply.body)));
        }
    }
    api.open_account("flood", "fs", true).await;
    api.open_account("flood", "fc", false).await;
    let commit = |tenant: &'static str, id: String, from: &'static str, to: &'static str| async move {
        usize::from(
            api.post("/v1/transfers", tenant, transfer_body(&id, from, to, 1)).await.status
                == StatusCode::CREATED,
        )
    };
    let flooding = stream::iter(0..args.transfers)
        .map(|i| commit("flood", format!("f{i}"), "fs", "fc"))
        .buffer_unordered(args.clients.max(1))
        .fold(0, |n, ok| async move { n + ok })
        .await;
    let already = receiver.received().len();
    let mut quiet = 0;
    for i in 0..QUIET {
        quiet += commit("acme", format!("q{i}"), "s0", "c0").await;
    }
    let stream = api.stack.stream()?.clone();
    let started = std::time::Instant::now();
    let publishing = tokio::spawn(stream.run(api.stack.publisher()));
    let delivering = tokio::spawn(api.stack.delivery_source.clone().run(api.stack.deliverer()));
    let deadline = started + Duration::from_secs(600);
    let flood_deliveries = flooding * MAX_ENDPOINTS;
    let (mut quiet_done, mut flood_done) = (None, None);
    while (quiet_done.is_none() || flood_done.is_none()) && std::time::Instant::now() < deadline {
        if quiet_done.is_none() && receiver.received().len() >= already + quiet {
            quiet_done = Some(started.elapsed());
        }
        if flood_done.is_none() && flooded.received().len() >= flood_deliveries {
            flood_done = Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    publishing.abort();
    delivering.abort();
    let waits: Vec<f64> = receiver
        .received()
        .iter()
        .skip(already)
        .filter_map(|r| {
            let created = r.json()["created"].as_str().and_then(|c| {
                OffsetDateTime::parse(c, &time::format_description::well_known::Rfc3339).ok()
            })?;
            Some((r.wall - created).as_seconds_f64())
        })
        .collect();
    let published = bus_times(api).await?;
    let on_bus: Vec<f64> = receiver
        .received()
        .iter()
        .skip(already)
        .filter_map(|r| {
            let event = r.json();
            let created = event["created"].as_str().and_then(|c| {
                OffsetDateTime::parse(c, &time::format_description::well_known::Rfc3339).ok()
            })?;
            Some((*published.get(event["id"].as_str()?)? - created).as_seconds_f64())
        })
        .collect();
    let q = |p| percentile(&waits, p).unwrap_or(f64::NAN);
    let bus = |p| percentile(&on_bus, p).unwrap_or(f64::NAN);
    let secs = |d: Option<Duration>| {
        d.map_or("not within 600 s".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()))
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "events out beside a flood: tenant flood, {MAX_ENDPOINTS} endpoints, {flooding} transfers committed as a \
         backlog ({flood_deliveries} deliveries); then acme commits {quiet}; pipeline started after both"
    );
    let _ = writeln!(
        out,
        "  acme's {} webhooks: all delivered {} after the start; commit -> on the bus p50 {:.1} s, max {:.1} s; \
         commit -> delivered p50 {:.1} s, max {:.1} s",
        waits.len(),
        secs(quiet_done),
        bus(0.5),
        bus(1.0),
        q(0.5),
        q(1.0)
    );
    let _ = writeln!(
        out,
        "  the flood's {flood_deliveries} deliveries: all delivered {} after the start",
        secs(flood_done)
    );
    Ok(out)
}

/// When each `transfer.committed` event reached the bus (its copy's `SentTimestamp` in the tap).
async fn bus_times(api: &Api) -> io::Result<BTreeMap<String, OffsetDateTime>> {
    let mut times = BTreeMap::new();
    for event in api.stack.on_the_bus().await? {
        if let Some(sent) = event.sent_at.filter(|_| event.envelope["detail-type"] == "transfer.committed") {
            times.entry(event.event_id().to_owned()).or_insert(sent);
        }
    }
    Ok(times)
}
