//! Hash-chained history (`ledger::chain`) on DynamoDB Local: every route's entries chain on each
//! shard, and each way of rewriting the table behind the ledger's back is found where it was made.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use harness::{EmulatedStack, fresh_stack};
use ledger::chain::ChainFault;
use ledger::fixtures::{account, hold, post, reversal, transfer, void};
use ledger::{AccountId, NewAccount, ShardCount, TenantId};
use ledger_dynamodb::keys::{self, BALANCE_SK, ENTRY_SK_PREFIX, PK, SK};
use time::OffsetDateTime;

type Item = HashMap<String, AttributeValue>;

fn id(raw: &str) -> AccountId {
    AccountId::parse(raw).unwrap()
}

async fn faults(
    stack: &EmulatedStack,
    tenant: &TenantId,
    account: &str,
) -> (Vec<(u16, ChainFault)>, usize, usize) {
    let report = stack.chain_faults(tenant, &id(account)).await.unwrap();
    (report.faults, report.shards, report.entries)
}

/// The items of `account`'s main shard: its entries, oldest first, and its balance.
async fn items(stack: &EmulatedStack, tenant: &TenantId, account: &str) -> (Vec<Item>, Item) {
    let out = stack
        .dynamodb
        .query()
        .table_name(&stack.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(keys::shard_pk(tenant, &id(account), 0)))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let sk = |item: &Item| item[SK].as_s().unwrap().clone();
    let entries = out.items().iter().filter(|i| sk(i).starts_with(ENTRY_SK_PREFIX)).cloned().collect();
    let balance = out.items().iter().find(|i| sk(i) == BALANCE_SK).cloned().unwrap();
    (entries, balance)
}

async fn put(stack: &EmulatedStack, item: Item) {
    stack.dynamodb.put_item().table_name(&stack.table).set_item(Some(item)).send().await.unwrap();
}

async fn delete(stack: &EmulatedStack, item: &Item) {
    let key = [PK, SK].map(|k| (k.to_owned(), item[k].clone())).into_iter().collect();
    stack.dynamodb.delete_item().table_name(&stack.table).set_key(Some(key)).send().await.unwrap();
}

fn with(item: &Item, name: &str, value: AttributeValue) -> Item {
    let mut item = item.clone();
    item.insert(name.to_owned(), value);
    item
}

#[tokio::test]
async fn every_routes_entries_chain_and_each_rewrite_is_found_where_it_was_made() {
    let stack = fresh_stack().await;
    let t = TenantId::parse("acme").unwrap();
    let store = &stack.store;
    let now = OffsetDateTime::now_utc;
    store.create_account(&t, account("bank", true), now()).await.unwrap();
    store.create_account(&t, account("alice", false), now()).await.unwrap();
    let hot = NewAccount { shards: ShardCount::new(4).unwrap(), ..account("fees", false) };
    store.create_account(&t, hot, now()).await.unwrap();
    // Posted, held, posted from a hold, released, reversed; into a hot account and out of it.
    let steps = [
        transfer("fund", "bank", "alice", 100),
        transfer("pay", "alice", "fees", 10),
        hold("h1", "alice", "bank", 30, None),
        post("p1", "h1", Some(20)),
        hold("h2", "alice", "bank", 5, None),
        void("v2", "h2"),
        reversal("r1", "pay", Some(4)),
        transfer("fee2", "alice", "fees", 7),
    ];
    for step in steps {
        store.create_transfer(&t, step, now()).await.unwrap();
    }
    assert_eq!(faults(&stack, &t, "bank").await, (vec![], 1, 5));
    assert_eq!(faults(&stack, &t, "alice").await, (vec![], 1, 8));
    let (none, shards, entries) = faults(&stack, &t, "fees").await;
    assert_eq!((none, shards, entries), (vec![], 4, 3));

    let (original, balance) = items(&stack, &t, "alice").await;
    assert_eq!(original.len(), 8);
    let sequence = |item: &Item| item["sequence"].as_n().unwrap().parse::<u64>().unwrap();

    // An amount edited: that entry, and no other.
    put(&stack, with(&original[1], "amount", AttributeValue::N("11".into()))).await;
    let found = faults(&stack, &t, "alice").await.0;
    assert!(found.contains(&(0, ChainFault::Modified { sequence: 2 })), "{found:?}");
    assert!(
        !found.iter().any(|(_, f)| matches!(f, ChainFault::Modified { sequence: s } if *s != 2)),
        "{found:?}"
    );
    put(&stack, original[1].clone()).await;
    assert_eq!(faults(&stack, &t, "alice").await.0, vec![]);

    // The newest entry deleted.
    delete(&stack, &original[7]).await;
    let found = faults(&stack, &t, "alice").await.0;
    assert!(found.contains(&(0, ChainFault::CountMismatch { balance: 8, entries: 7 })), "{found:?}");
    assert!(found.contains(&(0, ChainFault::HeadMismatch)), "{found:?}");
    put(&stack, original[7].clone()).await;

    // Two entries swapped: each keeps its key, takes the other's content.
    let swap = |from: &Item, to: &Item| {
        let mut swapped = from.clone();
        swapped.insert(PK.to_owned(), to[PK].clone());
        swapped.insert(SK.to_owned(), to[SK].clone());
        swapped
    };
    put(&stack, swap(&original[2], &original[3])).await;
    put(&stack, swap(&original[3], &original[2])).await;
    let found = faults(&stack, &t, "alice").await.0;
    assert!(found.contains(&(0, ChainFault::OutOfSequence { expected: 3, found: 4 })), "{found:?}");
    put(&stack, original[2].clone()).await;
    put(&stack, original[3].clone()).await;

    // An entry inserted between two others.
    let sk = original[4][SK].as_s().unwrap().clone();
    let inserted = with(&original[4], SK, AttributeValue::S(format!("{}0", &sk[..sk.len() - 1])));
    assert!(inserted[SK].as_s().unwrap() < original[4][SK].as_s().unwrap());
    put(&stack, inserted.clone()).await;
    let found = faults(&stack, &t, "alice").await.0;
    assert!(found.contains(&(0, ChainFault::CountMismatch { balance: 8, entries: 9 })), "{found:?}");
    assert!(found.iter().any(|(_, f)| matches!(f, ChainFault::OutOfSequence { .. })), "{found:?}");
    delete(&stack, &inserted).await;

    // The balance edited.
    put(&stack, with(&balance, "credits_posted", AttributeValue::N("1000".into()))).await;
    assert_eq!(faults(&stack, &t, "alice").await.0, vec![(0, ChainFault::BalanceMismatch)]);
    put(&stack, balance).await;

    // Every item put back as it was: the history verifies again.
    assert_eq!(faults(&stack, &t, "alice").await.0, vec![]);
    assert_eq!(original.iter().map(sequence).collect::<Vec<_>>(), (1..=8).collect::<Vec<_>>());
}
