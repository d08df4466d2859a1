//! The noisy neighbour: tenant A floods the API with synchronous transfers and batches far beyond
//! its limit, ignoring every `429`, while quiet tenants keep to theirs, with the worker running as
//! the event source mapping runs it. What must hold, whatever the machine's speed:
//!
//! - the quiet tenants are never refused (every request answered 201 or 202);
//! - A is admitted at most its limit: a full bucket plus its rate over the flood;
//! - all the quiet tenants' work completes, exactly (every queued transfer committed, every
//!   balance the sum of its transfers);
//! - the quiet tenants' queued work is delivered before A's backlog (the fair queue).
//!
//! How much the flood slows the quiet tenants (their p99s alone and beside it) is a figure, not an
//! assertion: `cargo stack bench noisy-neighbour` prints it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::MessageSystemAttributeName;
use harness::client::transfer_body as t;
use harness::flood::{Flood, FloodPlan, flood, paced};
use harness::{Api, StackOptions, fresh_stack_with};
use http::StatusCode;
use ledger::{AccountId, RateLimit, TenantId, TransferId, TransferStatus};
use serde_json::json;
use tokio::time::MissedTickBehavior;

/// Every tenant's limit: operations a second, burst.
const PER_SECOND: u32 = 6;
const BURST: u32 = 12;
const FLOOD: Duration = Duration::from_secs(10);
/// The quiet tenants, each well within its limit.
const QUIET: [&str; 3] = ["globex", "initech", "umbrella"];
const QUIET_EVERY: Duration = Duration::from_millis(500);
/// A's flood: clients each sending on a fixed beat, whatever the answers.
const A_FLOOD: FloodPlan = FloodPlan {
    sync_clients: 4,
    sync_every: Duration::from_millis(20),
    batch_clients: 2,
    batch_every: Duration::from_millis(100),
    batch_size: 5,
};

fn open(id: &str, overdraft: bool) -> serde_json::Value {
    json!({"id": id, "currency": "EUR", "allow_overdraft": overdraft})
}

/// One quiet tenant for the flood's length: a synchronous and a queued transfer every beat, each
/// of 1 from its bank to one of its accounts. Returns how many of each it sent (all accepted).
async fn quiet_tenant(api: Arc<Api>, tenant: &'static str) -> u64 {
    let mut beat = tokio::time::interval(QUIET_EVERY);
    beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let started = Instant::now();
    let mut i = 0;
    while started.elapsed() < FLOOD {
        beat.tick().await;
        let sync = api.post("/v1/transfers", tenant, t(&format!("s{i}"), "bank", "b0", 1)).await;
        assert_eq!(sync.status, StatusCode::CREATED, "{tenant} refused: {}", sync.body);
        let queued = api.post_async("/v1/transfers", tenant, &t(&format!("q{i}"), "bank", "b1", 1)).await;
        assert_eq!(queued.status, StatusCode::ACCEPTED, "{tenant} refused: {}", queued.body);
        i += 1;
    }
    i
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flooding_tenant_never_refuses_delays_or_overtakes_another_tenants_work() {
    let options = StackOptions {
        visibility_timeout: Some(10),
        tenant_limit: Some(RateLimit::new(PER_SECOND, BURST).unwrap()),
        ..StackOptions::default()
    };
    let api = Arc::new(Api::on(fresh_stack_with(options).await));
    for (tenant, prefix, accounts) in [("acme", "a", 8)].into_iter().chain(QUIET.map(|t| (t, "b", 2))) {
        assert_eq!(paced(&api, "/v1/accounts", tenant, open("bank", true)).await.status, StatusCode::CREATED);
        for i in 0..accounts {
            let account = open(&format!("{prefix}{i}"), false);
            assert_eq!(paced(&api, "/v1/accounts", tenant, account).await.status, StatusCode::CREATED);
        }
    }
    for i in 0..8 {
        let fund = t(&format!("fund-a{i}"), "bank", &format!("a{i}"), 1_000_000);
        assert_eq!(paced(&api, "/v1/transfers", "acme", fund).await.status, StatusCode::CREATED);
    }
    // Let every bucket fill again before the flood.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let worker = tokio::spawn(api.stack.event_source.clone().run(api.stack.worker()));

    let counts = Arc::new(Flood::default());
    let started = Instant::now();
    let flooding = flood(api.clone(), "acme", A_FLOOD, counts.clone(), started + FLOOD);
    let quiet = QUIET.map(|tenant| tokio::spawn(quiet_tenant(api.clone(), tenant)));
    let mut sent = Vec::new();
    for tenant in futures::future::join_all(quiet).await {
        sent.push(tenant.expect("a quiet tenant was refused"));
    }
    for client in futures::future::join_all(flooding).await {
        client.expect("a flood client failed");
    }
    let flooded = started.elapsed().as_secs_f64();
    worker.abort();
    api.stack.drain().await.unwrap();

    // A got no more than its limit: at most a full bucket, then its rate, over the whole flood.
    let (a_sent, limited, admitted, failed) = counts.counts();
    assert_eq!(failed, 0, "the flood's requests are answered 2xx or 429");
    let most = f64::from(BURST) + f64::from(PER_SECOND) * flooded + 1.0;
    assert!(f64::from(admitted) <= most, "A got {admitted} operations in {flooded:.1} s, at most {most:.0}");
    assert!(limited > 0, "the flood never met the limit: {a_sent} sent");
    // Every quiet tenant's work is done, exactly (read from the store: a check spends no limit).
    let store = api.stack.store.clone();
    let now = time::OffsetDateTime::now_utc();
    for (tenant, sent) in QUIET.into_iter().zip(sent) {
        assert!(sent > 0);
        let t = TenantId::parse(tenant).unwrap();
        for (account, what) in [("b0", "synchronous"), ("b1", "queued")] {
            let balance =
                store.get_account(&t, &AccountId::parse(account).unwrap()).await.unwrap().balances.balance();
            assert_eq!(balance, i128::from(sent), "{tenant}'s {what} transfers");
        }
        for i in 0..sent {
            let queued =
                store.get_transfer(&t, &TransferId::parse(format!("q{i}")).unwrap(), now).await.unwrap();
            assert_eq!(queued.status, TransferStatus::Committed, "{tenant} q{i}");
        }
    }
}

/// With A's backlog being worked on, a quiet tenant's queued transfers, sent after it, are
/// delivered before the rest of it: what the transfer queue's fair-queue grouping (by tenant) buys.
#[tokio::test]
async fn a_quiet_tenants_queued_work_is_delivered_before_a_floods_backlog() {
    let api = Api::on(
        fresh_stack_with(StackOptions { visibility_timeout: Some(30), ..StackOptions::default() }).await,
    );
    for tenant in ["acme", "globex"] {
        api.open_account(tenant, "bank", true).await;
        api.open_account(tenant, "b0", false).await;
    }
    for i in 0..60 {
        let reply = api.post_async("/v1/transfers", "acme", &t(&format!("a{i}"), "bank", "b0", 1)).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED);
    }
    let receive = |n: i32| {
        api.stack
            .sqs
            .receive_message()
            .queue_url(api.stack.queue.url())
            .max_number_of_messages(n)
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .send()
    };
    let group = |m: &aws_sdk_sqs::types::Message| {
        m.attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
            .cloned()
            .unwrap_or_default()
    };
    // A's first 20 are in flight (being worked on); then the quiet tenant sends 5.
    let mut in_flight = 0;
    while in_flight < 20 {
        in_flight += receive(10).await.unwrap().messages.unwrap_or_default().len();
    }
    for i in 0..5 {
        let reply = api.post_async("/v1/transfers", "globex", &t(&format!("g{i}"), "bank", "b0", 1)).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED);
    }
    let next = receive(10).await.unwrap().messages.unwrap_or_default();
    let groups: Vec<String> = next.iter().map(group).collect();
    assert_eq!(groups[..5], ["globex"; 5], "{groups:?}");
    assert!(groups[5..].iter().all(|g| g == "acme"), "{groups:?}");
}
