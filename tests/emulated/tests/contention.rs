//! Contention is not failure. 16 clients send transfers among the same 8 accounts at once, with no
//! fault injected: every transfer commits and none is answered 503 (contention is waited out within
//! the engine's budget, not refused). The clients share one store, as a local server's requests do:
//! they take turns at the accounts (storage.md, "Turns within one container"). With a store per
//! request (`Api::fleet`, as Lambda's instances), a CI run answered 2 of the 640 with 503 after the
//! contention budget (docs/limits.md); the bank and model tests run there and send those again.

use std::sync::Arc;

use harness::Api;
use harness::client::transfer_body;
use http::StatusCode;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CLIENTS: usize = 16;
const ACCOUNTS: usize = 8;
const PER_CLIENT: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_clients_over_eight_accounts_get_no_503() {
    let api = Arc::new(Api::new().await);
    api.open_account("acme", "bank", true).await;
    for i in 0..ACCOUNTS {
        api.open_account("acme", &format!("k{i}"), false).await;
        let fund = transfer_body(&format!("fund-{i}"), "bank", &format!("k{i}"), 1_000_000);
        assert_eq!(api.post("/v1/transfers", "acme", fund).await.status, StatusCode::CREATED);
    }
    let started = std::time::Instant::now();
    let clients = (0..CLIENTS).map(|c| {
        let api = api.clone();
        tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(c as u64);
            let mut statuses = Vec::new();
            for n in 0..PER_CLIENT {
                let from = rng.random_range(0..ACCOUNTS);
                let to = (from + rng.random_range(1..ACCOUNTS)) % ACCOUNTS;
                let body = transfer_body(&format!("c{c}-{n}"), &format!("k{from}"), &format!("k{to}"), 1);
                statuses.push(api.post("/v1/transfers", "acme", body).await.status);
            }
            statuses
        })
    });
    let mut statuses = Vec::new();
    for client in clients.collect::<Vec<_>>() {
        statuses.extend(client.await.unwrap());
    }
    let elapsed = started.elapsed();
    let refused = statuses.iter().filter(|s| **s != StatusCode::CREATED).count();
    println!(
        "contention: {} transfers from {CLIENTS} clients over {ACCOUNTS} accounts in {:.1} s, {refused} not committed",
        statuses.len(),
        elapsed.as_secs_f64()
    );
    assert_eq!(
        refused,
        0,
        "{:?}",
        statuses.iter().filter(|s| **s != StatusCode::CREATED).collect::<Vec<_>>()
    );
    let total: i64 = {
        let mut sum = 0;
        for i in 0..ACCOUNTS {
            sum += api.balance("acme", &format!("k{i}")).await;
        }
        sum
    };
    assert_eq!(total, 1_000_000 * ACCOUNTS as i64);
}
