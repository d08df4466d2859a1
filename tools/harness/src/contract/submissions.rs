//! Queued submissions and their settlement: every id claimed at once, each transfer settled once
//! whatever the deliveries, a batch in its order.

use std::sync::Arc;

use futures::future::join_all;
use ledger::fixtures::transfer;
use ledger::linked::LinkedChain;
use ledger::port::{Created, Settled, Store, StoreError};
use ledger::{BatchId, LedgerError, Submission, TransferBatch, TransferStatus};

use super::{balance, funded, later, now, transfer_id};

fn batch(id: &str, transfers: Vec<ledger::NewTransfer>) -> TransferBatch {
    TransferBatch::new(BatchId::parse(id).unwrap(), transfers).unwrap()
}

pub async fn a_queued_transfer_settles_once(store: Arc<dyn Store>) {
    let t = funded(store.as_ref(), 100).await;
    let queued = store.submit_transfer(&t, transfer("q1", "alice", "bob", 40), now()).await.unwrap();
    assert_eq!((queued.is_replay(), &queued.value().status), (false, &TransferStatus::Queued));
    let replay = store.submit_transfer(&t, transfer("q1", "alice", "bob", 40), now()).await.unwrap();
    assert!(replay.is_replay());
    let conflict = store.submit_transfer(&t, transfer("q1", "alice", "bob", 41), now()).await;
    assert!(matches!(conflict, Err(StoreError::Ledger(LedgerError::IdempotencyConflict { .. }))));
    // A synchronous request for a queued id answers it as queued.
    let sync = store.create_transfer(&t, transfer("q1", "alice", "bob", 40), now()).await.unwrap();
    assert_eq!(sync.value().status, TransferStatus::Queued);
    let submissions = [Submission::Transfer(transfer_id("q1"))];
    // Delivered twice, and at once.
    let runs = join_all((0..3).map(|_| store.settle_transfers(&t, &submissions, now()))).await;
    let settled: Vec<Option<Settled>> = runs.into_iter().flat_map(|r| r.unwrap()).collect();
    assert_eq!(settled.iter().filter(|s| **s == Some(Settled::Committed)).count(), 1, "{settled:?}");
    assert!(settled.iter().all(|s| matches!(s, Some(Settled::Committed | Settled::AlreadySettled))));
    assert_eq!(balance(store.as_ref(), &t, "bob").await, 40);
    let after = store.settle_transfers(&t, &submissions, now()).await.unwrap();
    assert_eq!(after, [Some(Settled::AlreadySettled)]);
}

pub async fn a_queued_chain_settles_whole_even_beside_its_member_sent_alone(store: Arc<dyn Store>) {
    let t = funded(store.as_ref(), 100).await;
    let members = vec![transfer("q-pay", "alice", "bob", 5_000), transfer("q-fee", "bob", "bank", 1)];
    let chain = LinkedChain::new(members.clone()).unwrap();
    let claimed = store.submit_linked(&t, chain.clone(), now()).await.unwrap();
    assert!(claimed.value().iter().all(|m| m.status == TransferStatus::Queued));
    assert!(store.submit_linked(&t, chain.clone(), now()).await.unwrap().is_replay());
    // The last member alone replays its queued claim, and settles only as the chain settles it.
    let alone = store.submit_transfer(&t, chain.transfers()[1].clone(), now()).await.unwrap();
    assert!(alone.is_replay());
    let ids: Vec<_> = chain.transfers().iter().map(|m| m.id.clone()).collect();
    let submissions = [Submission::Linked(ids), Submission::Transfer(transfer_id("q-fee"))];
    let settled = store.settle_transfers(&t, &submissions, now()).await.unwrap();
    assert_eq!(
        settled,
        [
            Some(Settled::Rejected("insufficient_funds".into())),
            Some(Settled::Rejected("linked_failed".into())),
            Some(Settled::AlreadySettled),
        ]
    );
    assert_eq!(balance(store.as_ref(), &t, "bob").await, 0);
}

pub async fn a_batch_settles_in_order_and_counts_each_transfer_once(store: Arc<dyn Store>) {
    let t = funded(store.as_ref(), 0).await;
    let mut transfers = vec![transfer("fund", "bank", "alice", 100)];
    transfers.extend((0..150).map(|i| transfer(&format!("s{i}"), "alice", "bob", 1)));
    let b = batch("b1", transfers);
    let recorded = store.submit_batch(&t, &b, now()).await.unwrap();
    assert!(matches!(recorded, Created::New(ref r) if r.total == 151));
    assert!(store.submit_batch(&t, &b, now()).await.unwrap().is_replay());
    let other = batch("b1", vec![transfer("x", "bank", "alice", 1)]);
    assert!(matches!(
        store.submit_batch(&t, &other, now()).await,
        Err(StoreError::Ledger(LedgerError::IdempotencyConflict { .. }))
    ));
    let queued = store.batch_status(&t, b.id()).await.unwrap();
    assert_eq!((queued.counts.total, queued.counts.queued), (151, 151));
    let run = store.settle_batch(&t, b.id(), now(), later()).await.unwrap();
    assert!(run.done);
    assert_eq!(run.settled.iter().filter(|s| **s == Settled::Committed).count(), 101);
    let status = store.batch_status(&t, b.id()).await.unwrap();
    assert_eq!((status.counts.queued, status.counts.committed, status.counts.rejected), (0, 101, 50));
    assert_eq!(status.counts.rejected_by_reason.get("insufficient_funds"), Some(&50));
    // In order: "fund, then spend" commits the funding and the first hundred spends.
    for (id, committed) in [("s0", true), ("s99", true), ("s100", false), ("s149", false)] {
        let status = store.get_transfer(&t, &transfer_id(id), now()).await.unwrap().status;
        assert_eq!(status == TransferStatus::Committed, committed, "{id}");
    }
    assert!(store.settle_batch(&t, b.id(), now(), later()).await.unwrap().settled.is_empty());
    let settled =
        store.get_event(&t, &ledger::EventId::parse("batch.settled:b1").unwrap(), now()).await.unwrap();
    let body: serde_json::Value = serde_json::from_str(&settled.body).unwrap();
    assert_eq!(
        (body["data"]["object"]["committed"].as_u64(), body["data"]["object"]["queued"].as_u64()),
        (Some(101), Some(0))
    );
}

pub async fn concurrent_runs_of_one_batch_settle_it_once_in_order(store: Arc<dyn Store>) {
    let t = funded(store.as_ref(), 0).await;
    let mut transfers = vec![transfer("fund", "bank", "alice", 100)];
    transfers.extend((0..150).map(|i| transfer(&format!("s{i}"), "alice", "bob", 1)));
    let b = batch("b1", transfers);
    store.submit_batch(&t, &b, now()).await.unwrap();
    let runs = (0..6).map(|_| {
        let (store, t, id) = (store.clone(), t.clone(), b.id().clone());
        tokio::spawn(async move {
            loop {
                let run = store.settle_batch(&t, &id, now(), later()).await.unwrap();
                if run.done {
                    return run.settled;
                }
            }
        })
    });
    let settled: Vec<Settled> = join_all(runs).await.into_iter().flat_map(|r| r.unwrap()).collect();
    assert_eq!(settled.len(), 151, "each transfer settled by exactly one run");
    let status = store.batch_status(&t, b.id()).await.unwrap();
    assert_eq!((status.counts.committed, status.counts.rejected), (101, 50));
    assert_eq!(balance(store.as_ref(), &t, "bob").await, 100);
}

pub async fn a_batch_whose_ids_hold_other_transfers_is_refused_whole(store: Arc<dyn Store>) {
    let t = funded(store.as_ref(), 100).await;
    store.create_transfer(&t, transfer("taken", "alice", "bob", 5), now()).await.unwrap();
    let b = batch("b1", vec![transfer("new", "alice", "bob", 1), transfer("taken", "alice", "bob", 6)]);
    match store.submit_batch(&t, &b, now()).await {
        Err(StoreError::Ledger(LedgerError::IdempotencyConflict { fields })) => {
            assert_eq!(fields, ["transfers[1].amount"])
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Nothing of it stays: its other id is free, and its id may be used again.
    assert!(store.get_transfer(&t, &transfer_id("new"), now()).await.unwrap_err().is_not_found());
    assert!(store.batch_status(&t, b.id()).await.unwrap_err().is_not_found());
    let fixed = batch("b1", vec![transfer("new", "alice", "bob", 1), transfer("taken", "alice", "bob", 5)]);
    assert!(!store.submit_batch(&t, &fixed, now()).await.unwrap().is_replay());
    let run = store.settle_batch(&t, fixed.id(), now(), later()).await.unwrap();
    assert_eq!(run.settled, [Settled::Committed, Settled::AlreadySettled]);
}

pub async fn a_batch_waits_for_a_transfer_another_submission_holds(store: Arc<dyn Store>) {
    let t = funded(store.as_ref(), 100).await;
    store.submit_transfer(&t, transfer("shared", "alice", "bob", 5), now()).await.unwrap();
    let b = batch("b1", vec![transfer("shared", "alice", "bob", 5)]);
    match store.submit_batch(&t, &b, now()).await {
        Err(StoreError::Ledger(LedgerError::InFlight { id })) => assert_eq!(id, "shared"),
        other => panic!("expected in flight, got {other:?}"),
    }
    store.settle_transfers(&t, &[Submission::Transfer(transfer_id("shared"))], now()).await.unwrap();
    assert!(!store.submit_batch(&t, &b, now()).await.unwrap().is_replay());
    let run = store.settle_batch(&t, b.id(), now(), later()).await.unwrap();
    assert_eq!((run.done, run.settled), (true, vec![Settled::AlreadySettled]));
    assert_eq!(balance(store.as_ref(), &t, "bob").await, 5);
}
