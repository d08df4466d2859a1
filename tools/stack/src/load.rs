//! The load generator (`cargo stack load`): open-loop traffic at a set rate against any base URL, the
//! local stack or a deployed API Gateway URL. It creates its own accounts, funds them, then sends
//! transfers between accounts picked with a Zipf skew (a few hot accounts, a long tail), with one in
//! ten a hold (two-phase transfer, 60 s timeout) that the request five later posts or voids, one in
//! ten a partial reversal of the transfer four before, one in ten a linked payment and fee, one in
//! twenty a search of an account's transfers, mixing in bad requests (overdrafts, invalid fields,
//! replays) and an optional spike, and summarises rates, latency percentiles and status counts.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use ledger::{
    AccountId, Amount, Currency, Metadata, Movement, NewAccount, NewTransfer, TransferId, TransferKind,
};
use ledger_client::{Call, Client, ClientError, Retry, routes};
use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::dashboard::percentile;

#[derive(Clone, Debug)]
pub struct Spike {
    /// Seconds after the start.
    pub at: Duration,
    pub lasts: Duration,
    /// Rate multiplier while it lasts.
    pub factor: f64,
}

#[derive(Clone, Debug)]
pub struct LoadPlan {
    /// Base URL of the API (`http://127.0.0.1:3000`, or the stack's `ApiUrl` output).
    pub base_url: String,
    pub token: String,
    /// Transfers per second outside the spike.
    pub rate: f64,
    pub duration: Duration,
    pub accounts: usize,
    /// Zipf exponent of account choice: 0 is uniform, 1.2 makes a few accounts hot.
    pub skew: f64,
    /// Share of requests that are bad on purpose.
    pub error_mix: f64,
    /// Share of transfers sent with `Prefer: respond-async` (through the queue and the worker).
    pub async_share: f64,
    pub spike: Option<Spike>,
    /// Requests in flight at most; beyond it a request is counted as `skipped`.
    pub concurrency: usize,
    pub progress: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub elapsed: Duration,
    pub sent: u64,
    pub skipped: u64,
    pub transport_errors: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub latencies_ms: Vec<f64>,
}

impl Summary {
    pub fn rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn render(&self) -> String {
        let p = |q| percentile(&self.latencies_ms, q).map_or("-".to_owned(), |v| format!("{v:.1} ms"));
        let mut out = format!(
            "sent {} in {:.1} s ({:.1}/s); skipped {} (client at its concurrency limit); transport errors {}\n",
            self.sent,
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.skipped,
            self.transport_errors
        );
        out += &format!("latency p50 {}  p90 {}  p99 {}  max {}\n", p(0.5), p(0.9), p(0.99), p(1.0));
        out += "status  count\n";
        for (status, count) in &self.statuses {
            out += &format!("{status:>6}  {count}\n");
        }
        out
    }
}

/// Picks account indexes with probability proportional to 1 / (rank + 1)^skew.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, skew: f64) -> Self {
        let mut total = 0.0;
        let cumulative = (0..n)
            .map(|i| {
                total += 1.0 / ((i + 1) as f64).powf(skew);
                total
            })
            .collect();
        Self { cumulative }
    }

    fn pick(&self, rng: &mut impl Rng) -> usize {
        let target = rng.random::<f64>() * self.cumulative.last().copied().unwrap_or(0.0);
        self.cumulative.partition_point(|c| *c < target).min(self.cumulative.len() - 1)
    }
}

/// The API as the run sees it: one try per request, so what is measured is what was answered.
struct Target {
    once: Client,
    careful: Client,
}

impl Target {
    /// Sends one request of the mix, as it is: the status and how long its answer took.
    async fn send(&self, call: &Call) -> Result<(u16, Duration), ClientError> {
        let started = Instant::now();
        let answer = self.once.execute(call).await?;
        Ok((answer.status, started.elapsed()))
    }
}

/// Creates the run's accounts (a bank that may overdraw, and customers funded from it), as a
/// careful client does: each waited out until it is definite.
async fn set_up(target: &Target, run: &str, accounts: usize) -> Result<Vec<String>, String> {
    let id = |raw: String| AccountId::parse(raw).map_err(|e| e.to_string());
    let currency = Currency::parse("EUR").map_err(|e| e.to_string())?;
    // Customers have a credit line of 500 and a maximum far above what the mix moves: both bounds
    // are checked on every transfer, and the maximum never refuses one.
    let limit = |n: u64| ledger::Limit::new(n).map_err(|e| e.to_string());
    let bounds =
        ledger::Bounds { overdraft_limit: Some(limit(500)?), max_balance: Some(limit(1_000_000_000_000)?) };
    let open = |id: AccountId, allow_overdraft: bool| NewAccount {
        id,
        currency,
        allow_overdraft,
        metadata: Metadata::default(),
        bounds: if allow_overdraft { ledger::Bounds::default() } else { bounds },
        effective_at: None,
        shards: ledger::ShardCount::ONE,
    };
    let bank = id(format!("{run}-bank"))?;
    let opened = target.careful.create_account(&open(bank.clone(), true)).await;
    opened.map_err(|e| format!("create the bank account: {e}"))?;
    let customers: Vec<String> = (0..accounts).map(|i| format!("{run}-c{i}")).collect();
    for customer in &customers {
        let account = id(customer.clone())?;
        target
            .careful
            .create_account(&open(account.clone(), false))
            .await
            .map_err(|e| format!("create an account: {e}"))?;
        let fund = NewTransfer {
            id: TransferId::parse(format!("{customer}-funding")).map_err(|e| e.to_string())?,
            kind: TransferKind::Immediate(Movement {
                debit_account_id: bank.clone(),
                credit_account_id: account,
                amount: Amount::new(1_000_000).map_err(|e| e.to_string())?,
                currency,
            }),
            metadata: Metadata::default(),
            linked: false,
            effective_at: None,
        };
        target.careful.create_transfer(&fund).await.map_err(|e| format!("fund an account: {e}"))?;
    }
    Ok(customers)
}

/// One request of the mix, with its path: a good transfer (immediate; a hold, every tenth; the post
/// or void of the hold five requests back; a partial reversal of the transfer four back; a linked
/// payment and fee; now and then an imported one, `effective_at` a second ago, mostly refused as
/// before its accounts' latest entries), one of the bad kinds, a dry run, a search of an account's
/// transfers, or a governance change (a transfer's or an account's metadata under `If-Match: *`,
/// a customer frozen for debits and unfrozen two requests later).
fn next_request(plan: &LoadPlan, zipf: &Zipf, customers: &[String], run: &str, n: u64) -> Call {
    let customer = || customers[zipf.pick(&mut rand::rng())].clone();
    match n % 100 {
        19 | 59 | 99 => {
            return Call::new(routes::SEARCH_TRANSFERS).query("account", customer()).query("limit", 25);
        }
        39 => {
            let patch = json!({"metadata": {"load": n.to_string()}});
            return Call::new(routes::UPDATE_TRANSFER)
                .id(format!("{run}-t{}", n - 3))
                .body(patch)
                .if_match("*");
        }
        79 => {
            let patch = json!({"metadata": {"load": n.to_string()}});
            return Call::new(routes::UPDATE_ACCOUNT).id(customer()).body(patch).if_match("*");
        }
        61 => return Call::new(routes::FREEZE_ACCOUNT).id(&customers[0]).body(json!({"mode": "debits"})),
        63 => return Call::new(routes::UNFREEZE_ACCOUNT).id(&customers[0]),
        _ => {}
    }
    if n % 20 == 9 {
        let (body, _) = next_transfer(plan, zipf, customers, run, n);
        return Call::new(routes::CREATE_TRANSFER).body(body).query("dry_run", true);
    }
    let (body, asynchronous) = next_transfer(plan, zipf, customers, run, n);
    let call = if n % 10 == 8 {
        // A payment and its fee, linked: both or neither.
        let mut fee = body.clone();
        fee["id"] = json!(format!("{run}-t{n}-fee"));
        fee["amount"] = json!(1);
        fee["credit_account_id"] = json!(format!("{run}-bank"));
        Call::new(routes::CREATE_LINKED).body(json!({"transfers": [body, fee]}))
    } else {
        Call::new(routes::CREATE_TRANSFER).body(body)
    };
    if asynchronous { call.prefer("respond-async") } else { call }
}

fn next_transfer(plan: &LoadPlan, zipf: &Zipf, customers: &[String], run: &str, n: u64) -> (Value, bool) {
    let mut rng = rand::rng();
    if n % 10 == 7 {
        let body = json!({"id": format!("{run}-t{n}"), "reverses_transfer_id": format!("{run}-t{}", n - 4),
            "amount": 1});
        return (body, rng.random::<f64>() < plan.async_share);
    }
    if n % 10 == 5 {
        let pending = format!("{run}-t{}", n - 5);
        let body = if (n / 10) % 2 == 0 {
            json!({"id": format!("{run}-t{n}"), "post_pending_id": pending})
        } else {
            json!({"id": format!("{run}-t{n}"), "void_pending_id": pending})
        };
        return (body, rng.random::<f64>() < plan.async_share);
    }
    let from = zipf.pick(&mut rng);
    let mut to = zipf.pick(&mut rng);
    if to == from {
        to = (from + 1) % customers.len();
    }
    let asynchronous = rng.random::<f64>() < plan.async_share;
    let mut body = json!({"id": format!("{run}-t{n}"), "debit_account_id": customers[from],
        "credit_account_id": customers[to], "amount": rng.random_range(1..=1_000), "currency": "EUR"});
    if n % 10 == 0 {
        body["pending"] = json!(true);
        body["timeout_seconds"] = json!(60);
    }
    if n % 50 == 23 {
        let second_ago = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
        let at = second_ago.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        body["effective_at"] = json!(at);
    }
    if rng.random::<f64>() < plan.error_mix {
        match n % 3 {
            0 => body["amount"] = json!(1_000_000_000_000u64), // insufficient funds: 422
            1 => body["currency"] = json!("euro"),             // invalid field: 400
            _ => body["id"] = json!(format!("{run}-t{}", n / 2)), // a replay (or a conflict): 200 / 409
        }
    }
    (body, asynchronous)
}

fn rate_at(plan: &LoadPlan, elapsed: Duration) -> f64 {
    match &plan.spike {
        Some(spike) if elapsed >= spike.at && elapsed < spike.at + spike.lasts => plan.rate * spike.factor,
        _ => plan.rate,
    }
}

/// Runs the plan. Set-up failures (unreachable URL, bad token) are returned; request failures are
/// counted in the summary.
pub async fn run(plan: LoadPlan) -> Result<Summary, String> {
    let careful =
        Client::new(&plan.base_url, &plan.token).map_err(|e| format!("cannot build the client: {e}"))?;
    let target = Arc::new(Target { once: careful.clone().with_retry(Retry::NONE), careful });
    let run = format!("load-{}", uuid::Uuid::new_v4().simple().to_string().get(..8).unwrap_or("run"));
    let customers = Arc::new(set_up(&target, &run, plan.accounts.max(2)).await?);
    let zipf = Zipf::new(customers.len(), plan.skew);
    let summary = Arc::new(Mutex::new(Summary::default()));
    let in_flight = Arc::new(Semaphore::new(plan.concurrency.max(1)));
    let sent = Arc::new(AtomicU64::new(0));
    let bar = progress_bar(&plan);
    let started = Instant::now();
    let mut due = 0.0_f64; // requests owed so far (fractional)
    let mut n = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    while started.elapsed() < plan.duration {
        tick.tick().await;
        let elapsed = started.elapsed();
        due += rate_at(&plan, elapsed) * 0.010;
        while due >= 1.0 {
            due -= 1.0;
            n += 1;
            let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                summary.lock().unwrap_or_else(|e| e.into_inner()).skipped += 1;
                continue;
            };
            let call = next_request(&plan, &zipf, &customers, &run, n);
            let (target, summary, sent) = (target.clone(), summary.clone(), sent.clone());
            tokio::spawn(async move {
                let result = target.send(&call).await;
                sent.fetch_add(1, Ordering::Relaxed);
                let mut summary = summary.lock().unwrap_or_else(|e| e.into_inner());
                match result {
                    Ok((status, latency)) => {
                        *summary.statuses.entry(status).or_default() += 1;
                        summary.latencies_ms.push(latency.as_secs_f64() * 1000.0);
                    }
                    Err(_) => summary.transport_errors += 1,
                }
                drop(permit);
            });
        }
        if let Some(bar) = &bar {
            bar.set_position(elapsed.as_secs().min(plan.duration.as_secs()));
            bar.set_message(format!(
                "{:.0}/s target, {} sent",
                rate_at(&plan, elapsed),
                sent.load(Ordering::Relaxed)
            ));
        }
    }
    // Let the requests in flight finish.
    let _ = in_flight.acquire_many(plan.concurrency.max(1) as u32).await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let mut summary = summary.lock().unwrap_or_else(|e| e.into_inner()).clone();
    summary.elapsed = started.elapsed();
    summary.sent = sent.load(Ordering::Relaxed);
    Ok(summary)
}

fn progress_bar(plan: &LoadPlan) -> Option<ProgressBar> {
    if !plan.progress {
        return None;
    }
    let bar = ProgressBar::new(plan.duration.as_secs());
    let style = ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} s  {msg}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_favours_the_first_accounts_and_uniform_does_not() {
        let mut rng = rand::rng();
        let mut count = |skew: f64| {
            let zipf = Zipf::new(100, skew);
            (0..20_000).filter(|_| zipf.pick(&mut rng) < 10).count()
        };
        assert!(count(1.2) > 12_000, "the top 10 of 100 accounts take most of a 1.2 skew");
        let uniform = count(0.0);
        assert!((1_400..2_600).contains(&uniform), "uniform: about 10% ({uniform})");
    }

    #[test]
    fn the_spike_multiplies_the_rate_only_while_it_lasts() {
        let plan = LoadPlan {
            base_url: String::new(),
            token: String::new(),
            rate: 10.0,
            duration: Duration::from_secs(30),
            accounts: 2,
            skew: 0.0,
            error_mix: 0.0,
            async_share: 0.0,
            spike: Some(Spike { at: Duration::from_secs(5), lasts: Duration::from_secs(2), factor: 4.0 }),
            concurrency: 1,
            progress: false,
        };
        assert_eq!(rate_at(&plan, Duration::from_secs(4)), 10.0);
        assert_eq!(rate_at(&plan, Duration::from_secs(6)), 40.0);
        assert_eq!(rate_at(&plan, Duration::from_secs(7)), 10.0);
    }

    #[test]
    fn every_hundred_requests_reach_every_route_that_creates_or_changes_and_every_new_field() {
        let plan = LoadPlan {
            base_url: String::new(),
            token: String::new(),
            rate: 10.0,
            duration: Duration::from_secs(30),
            accounts: 4,
            skew: 0.0,
            error_mix: 0.0,
            async_share: 0.0,
            spike: None,
            concurrency: 1,
            progress: false,
        };
        let customers: Vec<String> = (0..4).map(|i| format!("c{i}")).collect();
        let zipf = Zipf::new(customers.len(), plan.skew);
        let calls: Vec<Call> = (1..=100).map(|n| next_request(&plan, &zipf, &customers, "r", n)).collect();
        let reached: std::collections::BTreeSet<(&str, &str)> =
            calls.iter().map(|c| (c.route.method, c.route.path)).collect();
        for route in [
            routes::CREATE_TRANSFER,
            routes::CREATE_LINKED,
            routes::SEARCH_TRANSFERS,
            routes::UPDATE_TRANSFER,
            routes::UPDATE_ACCOUNT,
            routes::FREEZE_ACCOUNT,
            routes::UNFREEZE_ACCOUNT,
        ] {
            assert!(reached.contains(&(route.method, route.path)), "{} {}", route.method, route.path);
        }
        let dry = calls.iter().filter(|c| c.query.iter().any(|(k, v)| k == "dry_run" && v == "true")).count();
        let imported =
            calls.iter().filter(|c| c.body.as_ref().is_some_and(|b| b["effective_at"].is_string())).count();
        let conditional = calls.iter().filter(|c| c.if_match.is_some()).count();
        assert_eq!((dry, imported, conditional), (5, 2, 2));
    }
}
