//! Hot accounts (`ledger::shard`) on DynamoDB Local: a balance spread over shards, written by
//! several store instances at once (each its own warm container, with its own cache and drawn
//! shard), read as one account; the escrow of a bounded one, its gathers, and its policy on every
//! shard.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use harness::{EmulatedStack, fresh_stack};
use ledger::fixtures::{account, hold, post, transfer};
use ledger::port::{Created, Store, StoreError};
use ledger::{
    Account, AccountChange, AccountId, AccountUpdate, Entry, LedgerError, NewAccount, ShardCount, TenantId,
    Transfer, TransferStatus,
};
use time::OffsetDateTime;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn id(raw: &str) -> AccountId {
    AccountId::parse(raw).unwrap()
}

/// `count` stores over the stack's table, as many Lambda instances.
fn instances(stack: &EmulatedStack, count: usize) -> Vec<Arc<dyn Store>> {
    (0..count).map(|_| stack.instance().store).collect()
}

fn hot(name: &str, shards: u16) -> NewAccount {
    NewAccount { shards: ShardCount::new(shards).unwrap(), ..account(name, false) }
}

/// Each shard's balance item as stored: (shard, balance, entries, moved).
async fn shard_items(
    stack: &EmulatedStack,
    tenant: &TenantId,
    account: &str,
    count: u16,
) -> Vec<(u16, i128, u64, i128)> {
    let mut out = Vec::new();
    for shard in 0..count {
        let pk = ledger_dynamodb::keys::shard_pk(tenant, &id(account), shard);
        let item = stack
            .dynamodb
            .get_item()
            .table_name(&stack.table)
            .set_key(Some(ledger_dynamodb::keys::key(pk, ledger_dynamodb::keys::BALANCE_SK)))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .unwrap_or_else(|| panic!("shard {shard} of {account} has no balance item"));
        let num = |name: &str| match item.get(name) {
            Some(AttributeValue::N(n)) => n.parse::<i128>().unwrap(),
            _ => 0,
        };
        let balance = num("credits_posted") - num("debits_posted");
        out.push((shard, balance, num("entry_count") as u64, num("moved")));
    }
    out
}

fn committed(outcome: &Created<Transfer>) -> bool {
    matches!(outcome, Created::New(t) if t.status == TransferStatus::Committed)
}

fn refused_for_funds(outcome: &Created<Transfer>) -> bool {
    matches!(outcome, Created::New(t) if matches!(&t.status, TransferStatus::Rejected { reason } if reason.code() == "insufficient_funds"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_instances_paying_into_and_out_of_a_bounded_hot_account_conserve_money_and_never_cross_its_floor()
 {
    let stack = fresh_stack().await;
    let t = TenantId::parse("acme").unwrap();
    let stores = instances(&stack, 8);
    stores[0].create_account(&t, account("bank", true), now()).await.unwrap();
    stores[0].create_account(&t, hot("fees", 8), now()).await.unwrap();
    for i in 0..8 {
        stores[0].create_account(&t, account(&format!("c{i}"), false), now()).await.unwrap();
        let funded =
            stores[0].create_transfer(&t, transfer(&format!("f{i}"), "bank", &format!("c{i}"), 1_000), now());
        assert!(committed(&funded.await.unwrap()));
    }
    // Each instance pays 10 into the hot account and takes 15 out, 20 times, all at once: the
    // payouts outrun the payments, so some are refused for want of funds.
    let runs = stores.iter().enumerate().map(|(i, store)| {
        let (store, t) = (store.clone(), t.clone());
        tokio::spawn(async move {
            let (mut into, mut out, mut refused) = (0i128, 0i128, 0u64);
            let customer = format!("c{i}");
            for round in 0..20 {
                let paid = store.create_transfer(
                    &t,
                    transfer(&format!("p{i}-{round}"), &customer, "fees", 10),
                    now(),
                );
                let paid = paid.await.unwrap();
                assert!(committed(&paid), "{paid:?}");
                into += 10;
                let payout = transfer(&format!("o{i}-{round}"), "fees", &customer, 15);
                let payout = store.create_transfer(&t, payout, now()).await.unwrap();
                if committed(&payout) {
                    out += 15;
                } else {
                    assert!(refused_for_funds(&payout), "{payout:?}");
                    refused += 1;
                }
            }
            (into, out, refused)
        })
    });
    let mut totals = (0i128, 0i128, 0u64);
    for run in futures::future::join_all(runs).await {
        let (into, out, refused) = run.unwrap();
        totals = (totals.0 + into, totals.1 + out, totals.2 + refused);
    }
    let (into, out, refused) = totals;
    assert!(refused > 0 && out > 0, "payouts both committed and refused: {totals:?}");
    // Read as one account: the sum of what committed, at or above its floor.
    let fees = stores[3].get_account(&t, &id("fees")).await.unwrap();
    assert_eq!(fees.balances.balance(), into - out);
    assert!(fees.balances.balance() >= 0);
    assert_eq!(fees.entry_count as i128, 160 + out / 15);
    // Money is conserved across every account, read one by one and as one page.
    let mut sum = 0;
    for name in ["bank", "fees"].into_iter().map(str::to_owned).chain((0..8).map(|i| format!("c{i}"))) {
        sum += stores[5].get_account(&t, &id(&name)).await.unwrap().balances.balance();
    }
    assert_eq!(sum, 0);
    let page = stores[7].list_accounts(&t, &ledger::MetadataMatch::default(), 100, None).await.unwrap();
    assert_eq!(page.items.len(), 10);
    assert_eq!(page.items.iter().map(|a| a.balances.balance()).sum::<i128>(), 0);
    // Written by 8 instances at once, every shard's history chains to its head.
    for name in ["bank", "fees"].into_iter().map(str::to_owned).chain((0..8).map(|i| format!("c{i}"))) {
        assert_eq!(stack.chain_faults(&t, &id(&name)).await.unwrap().faults, vec![], "{name}");
    }
    let listed = page.items.iter().find(|a| a.id == id("fees")).unwrap();
    assert_eq!((listed.balances, listed.entry_count), (fees.balances, fees.entry_count));
    // The writes spread over the shards, each at or above its part of the floor, and the funds
    // moved between them sum to zero.
    let shards = shard_items(&stack, &t, "fees", 8).await;
    assert!(shards.iter().filter(|(_, _, entries, _)| *entries > 0).count() >= 2, "{shards:?}");
    assert_eq!(shards.iter().map(|s| s.3).sum::<i128>(), 0, "{shards:?}");
    assert!(shards.iter().all(|(_, balance, _, moved)| balance + moved >= 0), "{shards:?}");
    assert_eq!(shards.iter().map(|s| s.1).sum::<i128>(), into - out);
    assert_eq!(shards.iter().map(|s| s.2).sum::<u64>(), fees.entry_count);
    assert_history_reads_as_one_account(&stores[6], &t, "fees", &fees).await;
}

#[tokio::test]
async fn a_shard_short_of_funds_gathers_them_and_a_refusal_stands_only_when_the_whole_account_is_short() {
    let stack = fresh_stack().await;
    let t = TenantId::parse("acme").unwrap();
    let stores = instances(&stack, 9);
    stores[0].create_account(&t, account("bank", true), now()).await.unwrap();
    stores[0].create_account(&t, hot("pool", 4), now()).await.unwrap();
    stores[0].create_account(&t, account("alice", false), now()).await.unwrap();
    // Eight instances pay in 10 twice each: each one's first write lands on the main shard, its
    // second on the shard it drew.
    for (i, store) in stores[..8].iter().enumerate() {
        for round in 0..2 {
            let paid =
                store.create_transfer(&t, transfer(&format!("in{i}-{round}"), "bank", "pool", 10), now());
            assert!(committed(&paid.await.unwrap()));
        }
    }
    let before = shard_items(&stack, &t, "pool", 4).await;
    assert!(before.iter().all(|(_, balance, _, _)| *balance < 160), "no one shard holds it all: {before:?}");
    // A ninth instance takes the whole 160 out: its shard gathers the rest from the others.
    let all = stores[8].create_transfer(&t, transfer("out-all", "pool", "alice", 160), now()).await.unwrap();
    assert!(committed(&all), "{all:?}");
    let after = shard_items(&stack, &t, "pool", 4).await;
    assert!(after.iter().any(|(_, _, _, moved)| *moved != 0), "funds were moved: {after:?}");
    assert_eq!(after.iter().map(|s| s.3).sum::<i128>(), 0);
    assert!(after.iter().all(|(_, balance, _, moved)| balance + moved >= 0), "{after:?}");
    // Now the whole account is empty: one more unit is refused, from any instance.
    for (i, store) in stores.iter().enumerate().step_by(3) {
        let one =
            store.create_transfer(&t, transfer(&format!("one{i}"), "pool", "alice", 1), now()).await.unwrap();
        assert!(refused_for_funds(&one), "{one:?}");
    }
    let pool = stores[4].get_account(&t, &id("pool")).await.unwrap();
    assert_eq!((pool.balances.balance(), pool.entry_count), (0, 17));
    assert_eq!(stores[4].get_account(&t, &id("alice")).await.unwrap().balances.balance(), 160);
}

#[tokio::test]
async fn a_hot_accounts_policy_holds_on_every_shard_its_holds_live_on_the_main_one_and_it_can_be_unmarked() {
    let stack = fresh_stack().await;
    let t = TenantId::parse("acme").unwrap();
    let stores = instances(&stack, 6);
    stores[0].create_account(&t, account("bank", true), now()).await.unwrap();
    stores[0].create_account(&t, hot("hub", 4), now()).await.unwrap();
    for (i, store) in stores.iter().enumerate() {
        for round in 0..2 {
            let paid =
                store.create_transfer(&t, transfer(&format!("in{i}-{round}"), "bank", "hub", 10), now());
            assert!(committed(&paid.await.unwrap()));
        }
    }
    // Frozen whole: no instance, whatever shard it writes, moves money into it.
    let frozen = AccountChange::Freeze { debits_only: false };
    stores[0].change_account(&t, &id("hub"), &frozen, None, now()).await.unwrap();
    for (i, store) in stores.iter().enumerate() {
        let paid = store
            .create_transfer(&t, transfer(&format!("frozen{i}"), "bank", "hub", 1), now())
            .await
            .unwrap();
        assert!(
            matches!(&paid, Created::New(tr) if matches!(&tr.status, TransferStatus::Rejected { reason } if reason.code() == "account_frozen")),
            "{paid:?}"
        );
    }
    stores[1].change_account(&t, &id("hub"), &AccountChange::Unfreeze, None, now()).await.unwrap();
    // A hold out of it is made and posted on the main shard, from instances on other shards.
    let held = stores[2].create_transfer(&t, hold("h1", "hub", "bank", 25, None), now()).await.unwrap();
    assert!(matches!(&held, Created::New(tr) if tr.status == TransferStatus::Pending), "{held:?}");
    let posted = stores[3].create_transfer(&t, post("p1", "h1", Some(20)), now()).await.unwrap();
    assert!(committed(&posted), "{posted:?}");
    let main = &shard_items(&stack, &t, "hub", 4).await[0];
    let hub = stores[4].get_account(&t, &id("hub")).await.unwrap();
    assert_eq!((hub.balances.balance(), hub.balances.debits_pending), (100, 0));
    assert!(main.2 >= 2, "the hold and its post are entries of the main shard: {main:?}");
    // A transfer conditioned on the version a client read (If-Match) stands on every shard.
    let version = stores[1].get_account(&t, &id("hub")).await.unwrap().version();
    let expected = vec![(id("hub"), version)];
    let paid = stores[4].create_transfer_if(&t, transfer("if1", "bank", "hub", 1), expected.clone(), now());
    assert!(committed(&paid.await.unwrap()));
    let stale = stores[5].create_transfer_if(&t, transfer("if2", "bank", "hub", 1), expected, now()).await;
    assert!(matches!(stale, Err(StoreError::Ledger(LedgerError::PreconditionFailed { .. }))), "{stale:?}");
    // Un-marked: new writes go to the main shard; the account still reads as one, and spends
    // what its other shards hold.
    let unmark =
        AccountChange::Update(AccountUpdate { shards: Some(ShardCount::ONE), ..AccountUpdate::default() });
    let changed = stores[0].change_account(&t, &id("hub"), &unmark, None, now()).await.unwrap();
    assert_eq!((changed.shards, changed.shard_items), (ShardCount::ONE, 4));
    let entries_before: HashMap<u16, u64> =
        shard_items(&stack, &t, "hub", 4).await.into_iter().map(|(s, _, e, _)| (s, e)).collect();
    for (i, store) in stores.iter().enumerate() {
        let paid =
            store.create_transfer(&t, transfer(&format!("after{i}"), "bank", "hub", 5), now()).await.unwrap();
        assert!(committed(&paid), "{paid:?}");
    }
    let after = shard_items(&stack, &t, "hub", 4).await;
    for (shard, _, entries, _) in &after[1..] {
        assert_eq!(*entries, entries_before[shard], "shard {shard} took no write once un-marked");
    }
    let out = stores[5].create_transfer(&t, transfer("drain", "hub", "bank", 131), now()).await.unwrap();
    assert!(committed(&out), "{out:?}");
    let hub = stores[0].get_account(&t, &id("hub")).await.unwrap();
    assert_eq!(hub.balances.balance(), 0);
    assert_history_reads_as_one_account(&stores[2], &t, "hub", &hub).await;
}

/// The account's history, read in pages through its shards, is one account's: sequences from
/// `entry_count` down to 1 without a gap, each entry's totals its predecessor's moved by it, the
/// newest's the account's; a balance as of now and a statement of all of it agree.
async fn assert_history_reads_as_one_account(
    store: &Arc<dyn Store>,
    t: &TenantId,
    name: &str,
    account: &Account,
) {
    let mut entries: Vec<Entry> = Vec::new();
    let mut before = None;
    loop {
        let page = store.list_entries(t, &id(name), 7, before).await.unwrap();
        entries.extend(page.items);
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    let sequences: Vec<u64> = entries.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=account.entry_count).rev().collect::<Vec<_>>());
    assert_eq!(entries[0].balances_after, account.balances);
    for pair in entries.windows(2) {
        let (newer, older) = (&pair[0], &pair[1]);
        let applied = older.balances_after.after(newer.direction, newer.effect, newer.amount);
        assert_eq!(applied, Some(newer.balances_after), "{older:?} then {newer:?}");
        assert!(newer.created_at >= older.created_at);
    }
    let balance = store.balance_at(t, &id(name), now(), now()).await.unwrap();
    assert_eq!((balance.balances, balance.entry_count), (account.balances, account.entry_count));
    let range = ledger::port::StatementRange { from: None, to: now(), page_size: 5, after: None };
    let mut statement = store.statement(t, &id(name), range, now()).await.unwrap();
    let mut listed = statement.entries.clone();
    while let Some(after) = statement.next {
        statement = store
            .statement(t, &id(name), ledger::port::StatementRange { after: Some(after), ..range }, now())
            .await
            .unwrap();
        listed.extend(statement.entries.clone());
    }
    listed.reverse();
    assert_eq!(listed, entries);
    let closing = statement.closing.unwrap();
    assert_eq!((closing.balances, closing.entry_count), (account.balances, account.entry_count));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_account_marked_hot_later_shares_its_funds_evenly_and_every_instance_spends_at_once() {
    let stack = fresh_stack().await;
    let t = TenantId::parse("acme").unwrap();
    let stores = instances(&stack, 8);
    stores[0].create_account(&t, account("bank", true), now()).await.unwrap();
    stores[0].create_account(&t, account("shop", false), now()).await.unwrap();
    let funded = stores[0].create_transfer(&t, transfer("fund", "bank", "shop", 163), now()).await.unwrap();
    assert!(committed(&funded));
    let mark = AccountChange::Update(AccountUpdate {
        shards: Some(ShardCount::new(8).unwrap()),
        ..AccountUpdate::default()
    });
    stores[0].change_account(&t, &id("shop"), &mark, None, now()).await.unwrap();
    // Its 163 stay on the main shard; what it may spend is shared: 20 a shard, the main one 23.
    let items = shard_items(&stack, &t, "shop", 8).await;
    let moved: Vec<i128> = items.iter().map(|(_, _, _, moved)| *moved).collect();
    assert_eq!(moved, [-140, 20, 20, 20, 20, 20, 20, 20]);
    // Eight instances, each on a shard of its own drawing, each pays out 20 at once: no refusal,
    // and the account never goes below zero.
    let paid =
        futures::future::join_all(
            stores.iter().enumerate().map(|(i, store)| {
                let store = store.clone();
                let t = t.clone();
                async move {
                    store.create_transfer(&t, transfer(&format!("out{i}"), "shop", "bank", 20), now()).await
                }
            }),
        )
        .await;
    assert!(paid.iter().all(|p| committed(p.as_ref().unwrap())), "{paid:?}");
    let shop = stores[3].get_account(&t, &id("shop")).await.unwrap();
    assert_eq!(shop.balances.balance(), 3);
    let items = shard_items(&stack, &t, "shop", 8).await;
    assert_eq!(items.iter().map(|(_, _, _, moved)| moved).sum::<i128>(), 0);
    assert_history_reads_as_one_account(&stores[5], &t, "shop", &shop).await;
}
