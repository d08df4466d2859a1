//! `cargo stack bench`: the queued path's throughput against the local emulator, next to the
//! emulator's own raw TransactWriteItems rate measured in the same run, so the ratio shows the
//! ledger's overhead (or, with netting, its gain).

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use axum::body::Body;
use futures::stream::{self, StreamExt};
use http::{Request, StatusCode};
use ledger::{AccountId, Currency, Metadata, NewAccount, NewTransfer, TenantId};

fn other(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}
use serde_json::json;
use time::OffsetDateTime;
use tower::ServiceExt;

use crate::{DevAuth, Emulator, Stack};

pub struct BenchFigures {
    pub raw_transactions_per_s: f64,
    pub accepted_per_s: f64,
    pub applied_per_s: f64,
    pub transfers: usize,
}

const ACCOUNTS: usize = 16;

/// Raw: transactions of 5 puts (the shape of one transfer's write), one at a time, for `window`.
async fn raw_transactions(emulator: &Emulator, table: &str, window: Duration) -> std::io::Result<f64> {
    let client = emulator.dynamodb().await;
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed() < window {
        let items = (0..5).map(|i| {
            let put = Put::builder()
                .table_name(table)
                .item("pk", AttributeValue::S(format!("raw#{count}#{i}")))
                .item("sk", AttributeValue::S("X".into()))
                .item("amount", AttributeValue::N("100".into()))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(std::io::Error::other)?;
            Ok::<_, std::io::Error>(TransactWriteItem::builder().put(put).build())
        });
        let items: Vec<_> = items.collect::<Result<_, _>>()?;
        client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(std::io::Error::other)?;
        count += 1;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

pub async fn run(emulator: &Emulator, transfers: usize) -> std::io::Result<BenchFigures> {
    let stack = Stack::create(emulator, "bench", Some(300)).await?;
    let raw_transactions_per_s =
        raw_transactions(emulator, stack.store.table(), Duration::from_secs(5)).await?;

    let tenant = TenantId::parse("bench").map_err(other)?;
    let now = OffsetDateTime::now_utc();
    let ids: Vec<String> =
        std::iter::once("bank".to_owned()).chain((0..ACCOUNTS).map(|i| format!("c{i}"))).collect();
    for id in &ids {
        let account = NewAccount {
            id: AccountId::parse(id.as_str()).map_err(other)?,
            currency: Currency::parse("EUR").map_err(other)?,
            allow_overdraft: id == "bank",
            metadata: Metadata::default(),
        };
        stack.store.create_account(&tenant, account, now).await.map_err(other)?;
        if id != "bank" {
            // Funded generously: the bench measures throughput, not rejections.
            let fund = json!({"id": format!("fund-{id}"), "debit_account_id": "bank", "credit_account_id": id,
                "amount": 1_000_000_000u64, "currency": "EUR"});
            let fund: NewTransfer = serde_json::from_value(fund).map_err(other)?;
            stack.store.create_transfer(&tenant, fund, now).await.map_err(other)?;
        }
    }

    let auth = DevAuth::new(b"bench-key".to_vec(), ledger_http::DEFAULT_TENANT_CLAIM);
    let token = auth.token("bench", Duration::from_secs(3600));
    let router = crate::local_router(stack.state(), auth);
    // A third of the transfers pay one hot account (bank), the rest move between customers.
    let bodies: Vec<String> = (0..transfers.div_ceil(1000))
        .map(|b| {
            let batch: Vec<serde_json::Value> = (0..1000.min(transfers - b * 1000))
                .map(|i| {
                    let credit =
                        if i % 3 == 0 { "bank".to_owned() } else { format!("c{}", (i + 1) % ACCOUNTS) };
                    json!({"id": format!("b{b}-{i}"), "debit_account_id": format!("c{}", i % ACCOUNTS),
                        "credit_account_id": credit, "amount": 1 + i % 500, "currency": "EUR"})
                })
                .collect();
            json!({"id": format!("bench-{b}"), "transfers": batch}).to_string()
        })
        .collect();
    let started = Instant::now();
    let posts = bodies.into_iter().map(|body| {
        let request = Request::post("/v1/transfer-batches")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::from(body));
        let router = router.clone();
        async move {
            let response = router
                .oneshot(request.map_err(std::io::Error::other)?)
                .await
                .map_err(std::io::Error::other)?;
            if response.status() == StatusCode::ACCEPTED {
                Ok(())
            } else {
                Err(std::io::Error::other(format!("batch answered {}", response.status())))
            }
        }
    });
    let results: Vec<std::io::Result<()>> = stream::iter(posts).buffer_unordered(4).collect().await;
    results.into_iter().collect::<std::io::Result<Vec<()>>>()?;
    let accepted_per_s = transfers as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    let workers = (0..2).map(|_| {
        let stack = stack.clone();
        tokio::spawn(async move { stack.worker().drain(&stack.store, 3).await })
    });
    for worker in workers.collect::<Vec<_>>() {
        worker.await.map_err(std::io::Error::other)??;
    }
    // The drain ends after 3 empty polls (~0.3 s), not counted as work.
    let applied_per_s = transfers as f64 / (started.elapsed().as_secs_f64() - 0.3).max(0.001);
    Ok(BenchFigures { raw_transactions_per_s, accepted_per_s, applied_per_s, transfers })
}
