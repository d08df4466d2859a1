//! A tenant flooding the API far past its request limit with synchronous transfers and batches,
//! each client on a fixed beat whatever the answers (every `429` ignored): the noisy neighbour of
//! `tests/emulated/tests/noisy_neighbour.rs` and of `cargo stack bench noisy-neighbour`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::backend::Backend;
use crate::client::{Api, Reply, transfer_body};

/// The flood's shape. Its transfers move 1 among the tenant's accounts `a0` to `a7`.
#[derive(Clone, Copy, Debug)]
pub struct FloodPlan {
    pub sync_clients: usize,
    pub sync_every: Duration,
    pub batch_clients: usize,
    pub batch_every: Duration,
    pub batch_size: usize,
}

/// What the flood got back.
#[derive(Debug, Default)]
pub struct Flood {
    pub sent: AtomicU32,
    /// Answered `429`.
    pub limited: AtomicU32,
    /// Operations of the requests answered 2xx (a batch counts its transfers).
    pub admitted_operations: AtomicU32,
    /// Answered anything else.
    pub failed: AtomicU32,
}

impl Flood {
    /// (sent, limited, admitted operations, failed), as counted so far.
    pub fn counts(&self) -> (u32, u32, u32, u32) {
        let load = |n: &AtomicU32| n.load(Ordering::Relaxed);
        (load(&self.sent), load(&self.limited), load(&self.admitted_operations), load(&self.failed))
    }
}

type Request = Box<dyn Fn(usize) -> (&'static str, Value, u32) + Send>;

/// Starts `plan`'s clients for `tenant` until `until`, counting into `flood`.
pub fn flood<B: Backend + 'static>(
    api: Arc<Api<B>>,
    tenant: &'static str,
    plan: FloodPlan,
    flood: Arc<Flood>,
    until: Instant,
) -> Vec<JoinHandle<()>> {
    let account = |n: usize| format!("a{}", n % 8);
    let client = move |every: Duration, request: Request| {
        let (api, flood) = (api.clone(), flood.clone());
        tokio::spawn(async move {
            let mut beat = tokio::time::interval(every);
            beat.set_missed_tick_behavior(MissedTickBehavior::Skip);
            let mut i = 0;
            while Instant::now() < until {
                beat.tick().await;
                let (path, body, operations) = request(i);
                let status = api.post(path, tenant, body).await.status;
                flood.sent.fetch_add(1, Ordering::Relaxed);
                match status {
                    StatusCode::TOO_MANY_REQUESTS => flood.limited.fetch_add(1, Ordering::Relaxed),
                    s if s.is_success() => flood.admitted_operations.fetch_add(operations, Ordering::Relaxed),
                    _ => flood.failed.fetch_add(1, Ordering::Relaxed),
                };
                i += 1;
            }
        })
    };
    let sync = (0..plan.sync_clients).map(|c| {
        let request: Request = Box::new(move |i| {
            ("/v1/transfers", transfer_body(&format!("a{c}-{i}"), &account(i), &account(i + 3), 1), 1)
        });
        client(plan.sync_every, request)
    });
    let batches = (0..plan.batch_clients).map(|c| {
        let request: Request = Box::new(move |i| {
            let transfers: Vec<_> = (0..plan.batch_size)
                .map(|n| transfer_body(&format!("ab{c}-{i}-{n}"), &account(n), &account(n + 5), 1))
                .collect();
            let batch = json!({"id": format!("ab{c}-{i}"), "transfers": transfers});
            ("/v1/transfer-batches", batch, plan.batch_size as u32)
        });
        client(plan.batch_every, request)
    });
    sync.chain(batches).collect::<Vec<_>>()
}

/// A POST as a client keeping to its limit sends it: again after each `429`'s `Retry-After`.
pub async fn paced<B: Backend>(api: &Api<B>, path: &str, tenant: &str, body: Value) -> Reply {
    loop {
        let reply = api.post(path, tenant, body.clone()).await;
        if reply.status != StatusCode::TOO_MANY_REQUESTS {
            return reply;
        }
        let seconds = reply.headers.get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok());
        tokio::time::sleep(Duration::from_secs(seconds.unwrap_or(1))).await;
    }
}
