//! Search listings on DynamoDB: written before the transaction that records a transfer, so a
//! listing may outlive a transaction that never landed. A read skips it: only a listing at the
//! instant the record holds finds a transfer, and each transfer is found once.

use harness::faults::DynamoDbFault;
use harness::{StackOptions, fresh_stack, fresh_stack_with};
use ledger::fixtures::{account, transfer};
use ledger::port::Store;
use ledger::{AccountId, TenantId, TransferQuery};
use std::sync::Arc;
use time::OffsetDateTime;

async fn found(store: &Arc<dyn Store>, t: &TenantId, query: &TransferQuery) -> Vec<String> {
    let page = store.search_transfers(t, query, 100, None, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(page.next, None);
    page.items.iter().map(|tr| tr.request.id.to_string()).collect()
}

#[tokio::test]
async fn listings_of_transfers_never_recorded_or_recorded_at_another_instant_are_skipped() {
    let stack = fresh_stack().await;
    let (store, t, now) = (stack.store.clone(), TenantId::parse("acme").unwrap(), OffsetDateTime::now_utc());
    for (id, overdraft) in [("bank", true), ("alice", false)] {
        store.create_account(&t, account(id, overdraft), now).await.unwrap();
    }
    let paid = store.create_transfer(&t, transfer("t1", "bank", "alice", 5), now).await.unwrap().into_value();
    // What a transaction that never landed leaves: listings of a transfer never recorded, and of
    // t1 at another instant (an earlier attempt of the same id).
    let ghost = transfer("ghost", "bank", "alice", 7);
    let ghost = ghost.clone().applied(ghost.kind.movement().unwrap().clone(), now);
    let mut earlier = paid.clone();
    earlier.created_at -= time::Duration::seconds(1);
    for stale in [&ghost, &earlier] {
        for item in ledger_dynamodb::search::listings(&t, stale, None) {
            stack.dynamodb.put_item().table_name(&stack.table).set_item(Some(item)).send().await.unwrap();
        }
    }
    let alice =
        TransferQuery { account: Some(AccountId::parse("alice").unwrap()), ..TransferQuery::default() };
    for query in [TransferQuery::default(), alice] {
        assert_eq!(found(&store, &t, &query).await, ["t1"], "{query:?}");
    }
}

#[tokio::test]
async fn a_transaction_redone_after_faults_is_listed_and_found_once() {
    let stack = fresh_stack_with(StackOptions { dynamodb_proxy: true, ..StackOptions::default() }).await;
    let (store, t, now) = (stack.store.clone(), TenantId::parse("acme").unwrap(), OffsetDateTime::now_utc());
    for (id, overdraft) in [("bank", true), ("alice", false)] {
        store.create_account(&t, account(id, overdraft), now).await.unwrap();
    }
    for fault in [DynamoDbFault::Conflict, DynamoDbFault::Error, DynamoDbFault::Throttle] {
        stack.faults.inject_next("TransactWriteItems", fault);
    }
    store.create_transfer(&t, transfer("t1", "bank", "alice", 5), now).await.unwrap();
    assert_eq!(stack.faults.counts().conflicts, 1);
    assert_eq!(found(&store, &t, &TransferQuery::default()).await, ["t1"]);
}
