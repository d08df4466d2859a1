//! Drives the worker's handler with every SQS sample in events/ (sqs-*.json), as Lambda delivers
//! them, on the memory store: a batch and a respond-async transfer, a duplicate delivery, a
//! malformed record. A message names a submission, so the test first submits what the samples name,
//! as the API would have.

use std::path::PathBuf;

use aws_lambda_events::sqs::SqsEvent;
use ledger::fixtures::{account, transfer};
use ledger::{AccountId, BatchId, TenantId, TransferBatch};
use time::OffsetDateTime;

/// Each sample with the message ids the worker must report as failed.
const EXPECTED: &[(&str, &[&str])] = &[
    ("sqs-transfers.json", &[]),
    ("sqs-duplicate-delivery.json", &[]),
    ("sqs-malformed-record.json", &["0b8b0b5e-1a4e-4c1b-9d0a-000000000022"]),
];

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

#[tokio::test]
async fn every_sqs_sample_gives_its_documented_failures() {
    let mut files: Vec<String> = std::fs::read_dir(events_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("sqs-") && name.ends_with(".json"))
        .collect();
    files.sort();
    let mut expected: Vec<String> = EXPECTED.iter().map(|(f, _)| f.to_string()).collect();
    expected.sort();
    assert_eq!(files, expected, "every sqs-* event in events/ needs its expected failures here");

    let stack = harness::MemoryStack::new();
    let (store, queue) = (stack.store.clone(), stack.queues.clone());
    let tenant = TenantId::parse("acme").unwrap();
    for (id, overdraft) in [("bank", true), ("alice", false)] {
        store.create_account(&tenant, account(id, overdraft), OffsetDateTime::now_utc()).await.unwrap();
    }
    let now = OffsetDateTime::now_utc();
    let batch = TransferBatch::new(
        BatchId::parse("b-100").unwrap(),
        vec![transfer("q-1", "bank", "alice", 100), transfer("q-2", "bank", "alice", 150)],
    )
    .unwrap();
    store.submit_batch(&tenant, &batch, now).await.unwrap();
    for (id, amount) in [("q-3", 100), ("q-11", 100), ("q-21", 100)] {
        store.submit_transfer(&tenant, transfer(id, "bank", "alice", amount), now).await.unwrap();
    }
    let mut applied = 0;
    for (file, failures) in EXPECTED {
        let raw = std::fs::read_to_string(events_dir().join(file)).unwrap();
        let event: SqsEvent = serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{file}: {e}"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let response = worker::handle(store.as_ref(), &queue, event.clone(), deadline).await;
        let failed: Vec<&str> =
            response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        assert_eq!(&failed, failures, "{file}");
        // Lambda may deliver the same batch again: nothing applies twice, nothing new fails.
        let again = worker::handle(store.as_ref(), &queue, event, deadline).await;
        assert_eq!(again.batch_item_failures.len(), failures.len(), "{file} delivered again");
        applied += match *file {
            "sqs-transfers.json" => 350,
            "sqs-duplicate-delivery.json" => 100,
            _ => 100,
        };
        let alice = store.get_account(&tenant, &AccountId::parse("alice").unwrap()).await.unwrap();
        assert_eq!(alice.balances.balance(), applied, "{file}");
    }
}
