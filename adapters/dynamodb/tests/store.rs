//! The store against DynamoDB Local, through the real aws-sdk-dynamodb client over HTTP (and, for
//! the fault tests, through the fault proxy in front of it).

use std::collections::BTreeMap;

use harness::faults::DynamoDbFault;
use harness::{FaultPlan, StackOptions, fresh_stack, fresh_stack_with};
use ledger::fixtures::{account, transfer};
use ledger::{
    AccountId, Currency, Direction, LedgerError, Metadata, RuleViolation, TenantId, TransferStatus,
};
use std::sync::Arc;

use ledger::port::{Created, Store, StoreError};
use ledger_dynamodb::client::MAX_ATTEMPTS;
use time::OffsetDateTime;

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

async fn fresh_store() -> Arc<dyn Store> {
    fresh_stack().await.store
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// bank (overdraft) and alice, bob (no overdraft) in tenant acme; alice funded with `funds`.
async fn setup(funds: u64) -> (Arc<dyn Store>, TenantId) {
    let store = fresh_store().await;
    let t = tenant("acme");
    for (id, overdraft) in [("bank", true), ("alice", false), ("bob", false)] {
        store.create_account(&t, account(id, overdraft), now()).await.unwrap();
    }
    if funds > 0 {
        let funded =
            store.create_transfer(&t, transfer("fund", "bank", "alice", funds), now()).await.unwrap();
        assert!(matches!(funded, Created::New(_)));
    }
    (store, t)
}

fn id(raw: &str) -> AccountId {
    AccountId::parse(raw).unwrap()
}

#[tokio::test]
async fn creating_an_account_twice_replays_and_other_fields_conflict() {
    let store = fresh_store().await;
    let t = tenant("acme");
    let first = store.create_account(&t, account("alice", false), now()).await.unwrap();
    assert!(matches!(first, Created::New(_)));
    let again = store.create_account(&t, account("alice", false), now()).await.unwrap();
    assert_eq!(again, Created::Replayed(first.value().clone()));

    let mut other = account("alice", true);
    other.metadata = Metadata::parse(BTreeMap::from([("k".into(), "v".into())])).unwrap();
    match store.create_account(&t, other, now()).await {
        Err(StoreError::Ledger(LedgerError::IdempotencyConflict { fields })) => {
            assert_eq!(fields, vec!["allow_overdraft", "metadata"])
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[tokio::test]
async fn a_transfer_moves_money_once_and_writes_both_entries() {
    let (store, t) = setup(1_000).await;
    let outcome = store.create_transfer(&t, transfer("t1", "alice", "bob", 300), now()).await.unwrap();
    assert!(matches!(outcome, Created::New(ref tr) if tr.status == TransferStatus::Committed));
    let replay = store.create_transfer(&t, transfer("t1", "alice", "bob", 300), now()).await.unwrap();
    assert_eq!(replay, Created::Replayed(outcome.value().clone()));

    let alice = store.get_account(&t, &id("alice")).await.unwrap();
    let bob = store.get_account(&t, &id("bob")).await.unwrap();
    let bank = store.get_account(&t, &id("bank")).await.unwrap();
    assert_eq!(
        (alice.balances.balance(), bob.balances.balance(), bank.balances.balance()),
        (700, 300, -1_000)
    );

    let entries = store.list_entries(&t, &id("alice"), 10, None).await.unwrap();
    let seen: Vec<_> = entries.items.iter().map(|e| (e.sequence, e.direction, e.balance_after())).collect();
    assert_eq!(seen, vec![(2, Direction::Debit, 700), (1, Direction::Credit, 1_000)]);
    assert_eq!(entries.next, None);
    let bob_entries = store.list_entries(&t, &id("bob"), 10, None).await.unwrap();
    assert_eq!(bob_entries.items.len(), 1);
    assert_eq!(bob_entries.items[0].transfer_id.as_str(), "t1");
    assert_eq!(bob_entries.items[0].counterparty_account_id.as_str(), "alice");
}

#[tokio::test]
async fn reusing_a_transfer_id_with_other_fields_conflicts_and_moves_nothing() {
    let (store, t) = setup(1_000).await;
    store.create_transfer(&t, transfer("t1", "alice", "bob", 300), now()).await.unwrap();
    match store.create_transfer(&t, transfer("t1", "alice", "bob", 301), now()).await {
        Err(StoreError::Ledger(LedgerError::IdempotencyConflict { fields })) => {
            assert_eq!(fields, vec!["amount"])
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.get_account(&t, &id("bob")).await.unwrap().balances.balance(), 300);
}

#[tokio::test]
async fn a_rejected_transfer_id_is_spent() {
    let (store, t) = setup(100).await;
    let rejected = store.create_transfer(&t, transfer("t1", "alice", "bob", 101), now()).await.unwrap();
    let reason = RuleViolation::InsufficientFunds { account_id: id("alice") };
    assert!(
        matches!(&rejected, Created::New(tr) if tr.status == TransferStatus::Rejected { reason: reason.clone() })
    );
    // Funds arrive; a retry of the same request still gets the recorded rejection.
    store.create_transfer(&t, transfer("top-up", "bank", "alice", 1_000), now()).await.unwrap();
    let retried = store.create_transfer(&t, transfer("t1", "alice", "bob", 101), now()).await.unwrap();
    assert_eq!(retried, Created::Replayed(rejected.value().clone()));
    assert_eq!(store.get_account(&t, &id("bob")).await.unwrap().balances.balance(), 0);
    // The same id with other fields is a conflict, not a second chance.
    let other = store.create_transfer(&t, transfer("t1", "alice", "bob", 50), now()).await;
    assert!(matches!(other, Err(StoreError::Ledger(LedgerError::IdempotencyConflict { .. }))));
}

#[tokio::test]
async fn every_rule_is_enforced_by_the_store() {
    let (store, t) = setup(100).await;
    let mut usd = account("usd", true);
    usd.currency = Currency::parse("USD").unwrap();
    store.create_account(&t, usd, now()).await.unwrap();
    let cases = [
        (transfer("r1", "alice", "alice", 1), "same_account"),
        (transfer("r2", "alice", "ghost", 1), "account_not_found"),
        (transfer("r3", "usd", "alice", 1), "currency_mismatch"),
        (transfer("r4", "bob", "alice", 1), "insufficient_funds"),
    ];
    for (request, code) in cases {
        let outcome = store.create_transfer(&t, request, now()).await.unwrap();
        match &outcome.value().status {
            TransferStatus::Rejected { reason } => assert_eq!(reason.code(), code),
            other => panic!("expected {code}, got {other:?}"),
        }
    }
    let alice = store.get_account(&t, &id("alice")).await.unwrap();
    assert_eq!((alice.balances.balance(), alice.entry_count), (100, 1));
}

#[tokio::test]
async fn concurrent_duplicates_apply_exactly_once() {
    let (store, t) = setup(1_000).await;
    let attempts = (0..8).map(|_| {
        let (store, t) = (store.clone(), t.clone());
        tokio::spawn(
            async move { store.create_transfer(&t, transfer("dup", "alice", "bob", 10), now()).await },
        )
    });
    let outcomes: Vec<_> = futures_join(attempts).await;
    let new = outcomes.iter().filter(|o| matches!(o, Ok(Created::New(_)))).count();
    let replayed = outcomes.iter().filter(|o| matches!(o, Ok(Created::Replayed(_)))).count();
    assert_eq!((new, replayed), (1, 7), "{outcomes:?}");
    assert_eq!(store.get_account(&t, &id("bob")).await.unwrap().balances.balance(), 10);
}

#[tokio::test]
async fn concurrent_spends_never_overdraw() {
    let (store, t) = setup(100).await;
    // Twenty spends of 10 from an account holding 100: exactly ten may commit.
    let attempts = (0..20).map(|i| {
        let (store, t) = (store.clone(), t.clone());
        tokio::spawn(async move {
            store.create_transfer(&t, transfer(&format!("s{i}"), "alice", "bob", 10), now()).await
        })
    });
    let outcomes = futures_join(attempts).await;
    let committed = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(c) if c.value().status == TransferStatus::Committed))
        .count();
    assert_eq!(committed, 10, "{outcomes:?}");
    let alice = store.get_account(&t, &id("alice")).await.unwrap();
    assert_eq!(alice.balances.balance(), 0);
    assert_eq!(alice.entry_count, 11);
}

async fn futures_join<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<Result<T, StoreError>>>,
) -> Vec<Result<T, StoreError>> {
    let mut out = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test]
async fn tenants_cannot_see_each_other() {
    let (store, acme) = setup(100).await;
    let globex = tenant("globex");
    let missing = store.get_account(&globex, &id("alice")).await;
    assert!(matches!(missing, Err(StoreError::Ledger(LedgerError::NotFound { .. }))));
    assert!(store.list_accounts(&globex, 100, None).await.unwrap().items.is_empty());
    // The same ids in another tenant are other accounts altogether.
    store.create_account(&globex, account("alice", true), now()).await.unwrap();
    assert!(store.get_account(&globex, &id("alice")).await.unwrap().allow_overdraft);
    assert!(!store.get_account(&acme, &id("alice")).await.unwrap().allow_overdraft);
    let cross = store.create_transfer(&globex, transfer("x", "alice", "bank", 1), now()).await.unwrap();
    assert!(
        matches!(&cross.value().status, TransferStatus::Rejected { reason } if reason.code() == "account_not_found")
    );
}

#[tokio::test]
async fn lists_page_through_every_item_exactly_once() {
    let (store, t) = setup(0).await;
    for i in 0..7 {
        store.create_account(&t, account(&format!("c{i}"), false), now()).await.unwrap();
        store
            .create_transfer(&t, transfer(&format!("f{i}"), "bank", &format!("c{i}"), 5), now())
            .await
            .unwrap();
    }
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_accounts(&t, 3, after.as_ref()).await.unwrap();
        assert!(page.items.len() <= 3);
        ids.extend(page.items.into_iter().map(|a| a.id.to_string()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let mut expected: Vec<String> = ["alice", "bank", "bob"].map(String::from).to_vec();
    expected.extend((0..7).map(|i| format!("c{i}")));
    expected.sort();
    assert_eq!(ids, expected);

    let mut sequences = Vec::new();
    let mut before = None;
    loop {
        let page = store.list_entries(&t, &id("bank"), 2, before).await.unwrap();
        sequences.extend(page.items.iter().map(|e| (e.sequence, e.balance_after())));
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    let expected: Vec<(u64, i128)> = (1..=7).rev().map(|s| (s, -5 * s as i128)).collect();
    assert_eq!(sequences, expected);
}

#[tokio::test]
async fn entries_of_an_unknown_account_are_not_found_but_an_empty_history_is_empty() {
    let (store, t) = setup(0).await;
    assert!(store.list_entries(&t, &id("bob"), 10, None).await.unwrap().items.is_empty());
    let missing = store.list_entries(&t, &id("ghost"), 10, None).await;
    assert!(matches!(missing, Err(StoreError::Ledger(LedgerError::NotFound { .. }))));
}

#[tokio::test]
async fn throttling_is_retried_with_backoff_then_reported_unavailable() {
    let plan = FaultPlan { throttle: 1.0, ..FaultPlan::none() };
    let stack = fresh_stack_with(StackOptions { faults: plan, ..StackOptions::default() }).await;
    let result = stack.store.get_account(&tenant("acme"), &id("alice")).await;
    assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");
    assert_eq!(stack.faults.counts().throttled, u64::from(MAX_ATTEMPTS));
}

/// A store behind the fault proxy (for one-off faults and call counts), with bank and alice open.
async fn proxied_bank_and_alice() -> (harness::Stack, Arc<dyn Store>, TenantId) {
    let stack = fresh_stack_with(StackOptions { dynamodb_proxy: true, ..StackOptions::default() }).await;
    let (store, t) = (stack.store.clone(), tenant("acme"));
    for (id, overdraft) in [("bank", true), ("alice", false)] {
        store.create_account(&t, account(id, overdraft), now()).await.unwrap();
    }
    (stack, store, t)
}

#[tokio::test]
async fn a_transfer_whose_answer_was_lost_is_retried_with_its_token_and_applies_once() {
    let (stack, store, t) = proxied_bank_and_alice().await;
    // The transaction lands, its answer is lost; the SDK retries it with the same ClientRequestToken
    // and DynamoDB answers the first outcome instead of failing the retry's conditions.
    stack.faults.inject_next("TransactWriteItems", DynamoDbFault::LostReply);
    let outcome = store.create_transfer(&t, transfer("t1", "bank", "alice", 40), now()).await.unwrap();
    assert_eq!(stack.faults.counts().lost_replies, 1);
    assert!(matches!(&outcome, Created::New(tr) if tr.status == TransferStatus::Committed), "{outcome:?}");
    let alice = store.get_account(&t, &id("alice")).await.unwrap();
    assert_eq!((alice.balances.balance(), alice.entry_count), (40, 1));
}

#[tokio::test]
async fn a_cancelled_or_failed_transaction_is_redone_and_applies_once() {
    let (stack, store, t) = proxied_bank_and_alice().await;
    for fault in [DynamoDbFault::Conflict, DynamoDbFault::Error, DynamoDbFault::Throttle] {
        stack.faults.inject_next("TransactWriteItems", fault);
    }
    let outcome = store.create_transfer(&t, transfer("t1", "bank", "alice", 40), now()).await.unwrap();
    let counts = stack.faults.counts();
    assert_eq!((counts.conflicts, counts.errors, counts.throttled), (1, 1, 1));
    assert!(matches!(&outcome, Created::New(tr) if tr.status == TransferStatus::Committed), "{outcome:?}");
    let alice = store.get_account(&t, &id("alice")).await.unwrap();
    assert_eq!((alice.balances.balance(), alice.entry_count), (40, 1));
}

#[tokio::test]
async fn a_transfer_between_accounts_just_written_is_one_request() {
    let (stack, store, t) = proxied_bank_and_alice().await;
    store.create_transfer(&t, transfer("t1", "bank", "alice", 40), now()).await.unwrap();
    let (reads, writes) = (stack.faults.calls("BatchGetItem"), stack.faults.calls("TransactWriteItems"));
    for i in 2..=5 {
        store.create_transfer(&t, transfer(&format!("t{i}"), "bank", "alice", 10), now()).await.unwrap();
    }
    assert_eq!(stack.faults.calls("BatchGetItem"), reads, "no read for accounts this store just wrote");
    assert_eq!(stack.faults.calls("TransactWriteItems"), writes + 4);
    // A replay of an id still answers the first outcome (the write's condition on the id fails).
    let replay = store.create_transfer(&t, transfer("t5", "bank", "alice", 10), now()).await.unwrap();
    assert!(replay.is_replay());
    let alice = store.get_account(&t, &id("alice")).await.unwrap();
    assert_eq!((alice.balances.balance(), alice.entry_count), (80, 5));
}

#[tokio::test]
async fn a_stale_cached_balance_never_commits_nor_refuses_a_transfer() {
    // Two stores on one table: two warm containers, each with its own cache.
    let stack = fresh_stack().await;
    let (first, t) = (stack.store.clone(), tenant("acme"));
    let second: Arc<dyn Store> =
        Arc::new(ledger_dynamodb::DynamoStore::new(stack.dynamodb.clone(), &stack.table));
    for (id, overdraft) in [("bank", true), ("alice", false), ("bob", false)] {
        first.create_account(&t, account(id, overdraft), now()).await.unwrap();
    }
    first.create_transfer(&t, transfer("f1", "bank", "alice", 100), now()).await.unwrap();
    first.create_transfer(&t, transfer("p1", "alice", "bob", 10), now()).await.unwrap();
    // The other container moves alice's money: the first one's cache is now stale.
    second.create_transfer(&t, transfer("f2", "bank", "alice", 100), now()).await.unwrap();
    // Cached, alice holds 90 and this would be refused; fresh, she holds 190.
    let spent = first.create_transfer(&t, transfer("p2", "alice", "bob", 150), now()).await.unwrap();
    assert!(matches!(&spent, Created::New(tr) if tr.status == TransferStatus::Committed), "{spent:?}");
    second.create_transfer(&t, transfer("p3", "alice", "bob", 5), now()).await.unwrap();
    // Cached, alice holds 40 at version 4; she is at version 5: the write must not commit on it.
    first.create_transfer(&t, transfer("p4", "alice", "bob", 35), now()).await.unwrap();
    let alice = first.get_account(&t, &id("alice")).await.unwrap();
    assert_eq!((alice.balances.balance(), alice.entry_count), (0, 6));
    let entries = first.list_entries(&t, &id("alice"), 10, None).await.unwrap().items;
    let sequences: Vec<(u64, i128)> = entries.iter().map(|e| (e.sequence, e.balance_after())).collect();
    assert_eq!(sequences, vec![(6, 0), (5, 35), (4, 40), (3, 190), (2, 90), (1, 100)]);
}

#[tokio::test]
async fn a_total_that_would_pass_the_storable_limit_is_rejected() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let stack = fresh_stack().await;
    let (store, t) = (stack.store.clone(), tenant("acme"));
    for (id, overdraft) in [("bank", true), ("bob", false)] {
        store.create_account(&t, account(id, overdraft), now()).await.unwrap();
    }
    // Bring bob to the limit directly in the table: no sequence of valid transfers gets there in a test.
    stack
        .dynamodb
        .update_item()
        .table_name(&stack.table)
        .key("pk", AttributeValue::S("T#acme#A#bob".into()))
        .key("sk", AttributeValue::S("B".into()))
        .update_expression("SET credits_posted = :max")
        .expression_attribute_values(":max", AttributeValue::N(ledger::money::POSTED_LIMIT.to_string()))
        .send()
        .await
        .unwrap();
    let outcome = store.create_transfer(&t, transfer("over", "bank", "bob", 1), now()).await.unwrap();
    assert!(
        matches!(&outcome.value().status, TransferStatus::Rejected { reason } if reason.code() == "balance_limit_exceeded")
    );
    let bob = store.get_account(&t, &id("bob")).await.unwrap();
    assert_eq!(bob.balances.credits_posted, ledger::money::POSTED_LIMIT);
}

/// Issue 9: the worker's transactions were cut by items only, so transfers with large metadata could
/// pass DynamoDB's 4 MB per transaction and send a whole round to the DLQ. 60 respond-async
/// transfers with the largest metadata the domain allows (~77 KB each here), all refused (a rejection
/// is one item, so 60 fit in 100 items but not in 4 MB), settled in one call: cut by bytes as well,
/// every one settles.
#[tokio::test]
async fn transfers_with_the_largest_metadata_settle_within_the_transaction_size_limit() {
    let (store, t) = setup(0).await;
    let big: BTreeMap<String, String> =
        (0..ledger::metadata::MAX_KEYS).map(|i| (format!("{i:0>40}"), "€".repeat(500))).collect();
    let mut ids = Vec::new();
    for i in 0..60 {
        let mut request = transfer(&format!("big-{i}"), "alice", "bob", 1);
        request.metadata = Metadata::parse(big.clone()).unwrap();
        ids.push(ledger::Submission::Transfer(request.id.clone()));
        assert!(matches!(store.submit_transfer(&t, request, now()).await.unwrap(), Created::New(_)));
    }
    let settled = store.settle_transfers(&t, &ids, now()).await.unwrap();
    let refused = Some(ledger::port::Settled::Rejected("insufficient_funds".into()));
    assert!(settled.iter().all(|s| *s == refused), "{settled:?}");
}

/// The planner decides a batch in order, and the cursor applies it so: "fund, then spend" commits
/// whole, through the store, when the batch is settled in several runs at once.
#[tokio::test]
async fn concurrent_runs_of_one_batch_settle_it_once_in_order() {
    let (store, t) = setup(0).await;
    let mut transfers = vec![transfer("fund", "bank", "alice", 50)];
    transfers.extend((0..150).map(|i| transfer(&format!("s{i}"), "alice", "bob", 1)));
    let batch = ledger::TransferBatch::new(ledger::BatchId::parse("b").unwrap(), transfers).unwrap();
    store.submit_batch(&t, &batch, now()).await.unwrap();
    let runs = (0..6).map(|_| {
        let (store, t, id) = (store.clone(), t.clone(), batch.id().clone());
        tokio::spawn(async move { store.settle_batch(&t, &id, now()).await.unwrap() })
    });
    let mut settled = 0;
    for run in runs.collect::<Vec<_>>() {
        settled += run.await.unwrap().settled.len();
    }
    let status = store.batch_status(&t, batch.id()).await.unwrap();
    assert_eq!((status.counts.committed, status.counts.rejected, status.counts.queued), (51, 100, 0));
    // Each transfer settled by exactly one of the runs.
    assert_eq!(settled, 151);
    for i in 0..150 {
        let stored = store
            .get_transfer(&t, &ledger::TransferId::parse(format!("s{i}")).unwrap(), now())
            .await
            .unwrap();
        match stored.status {
            TransferStatus::Committed => assert!(i < 50, "s{i} committed"),
            TransferStatus::Rejected { .. } => assert!(i >= 50, "s{i} rejected"),
            other => panic!("s{i} {other:?}"),
        }
    }
}

/// Posts of one batch race while one of its ids is queued by another batch that settles meanwhile:
/// some posts are refused (`InFlight`) and withdraw, others are accepted. Whatever the interleaving,
/// a refused post never undoes an accepted one: the batch then settles whole, each transfer once.
#[tokio::test]
async fn a_refused_post_never_undoes_a_concurrent_accepted_post_of_the_same_batch() {
    let (store, t) = setup(0).await;
    for round in 0..6 {
        let (x, y) = (format!("x{round}"), format!("y{round}"));
        let other = ledger::TransferBatch::new(
            ledger::BatchId::parse(format!("c{round}")).unwrap(),
            vec![transfer(&y, "bank", "alice", 1)],
        )
        .unwrap();
        store.submit_batch(&t, &other, now()).await.unwrap();
        let batch = ledger::TransferBatch::new(
            ledger::BatchId::parse(format!("b{round}")).unwrap(),
            vec![transfer(&x, "bank", "alice", 1), transfer(&y, "bank", "alice", 1)],
        )
        .unwrap();
        let posts = (0..6).map(|i| {
            let (store, t, batch) = (store.clone(), t.clone(), batch.clone());
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(i * 3)).await;
                store.submit_batch(&t, &batch, now()).await
            })
        });
        let settle = {
            let (store, t, id) = (store.clone(), t.clone(), other.id().clone());
            tokio::spawn(async move { store.settle_batch(&t, &id, now()).await.unwrap() })
        };
        for post in posts.collect::<Vec<_>>() {
            match post.await.unwrap() {
                Ok(_) | Err(StoreError::Ledger(LedgerError::InFlight { .. })) => {}
                Err(StoreError::Unavailable(why)) => assert!(why.contains("withdrawn"), "{why}"),
                Err(other) => panic!("round {round}: {other:?}"),
            }
        }
        assert!(settle.await.unwrap().done);
        // Posted once more (a replay if a post was accepted), it settles whole.
        store.submit_batch(&t, &batch, now()).await.unwrap();
        let run = store.settle_batch(&t, batch.id(), now()).await.unwrap();
        assert!(run.done, "round {round}");
        let status = store.batch_status(&t, batch.id()).await.unwrap();
        assert_eq!((status.counts.committed, status.counts.queued), (2, 0), "round {round}");
    }
    let alice = store.get_account(&t, &id("alice")).await.unwrap();
    assert_eq!(alice.balances.balance(), 12, "each x and y applied once");
}

/// Eight API instances (each its own `TenantLimits`, sharing only the table) spend one tenant's
/// bucket at once for 1.5 s, on several threads: between them they never admit more than the burst
/// plus the rate over the time taken, they admit at least the burst, and another tenant's bucket is
/// untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_at_once_never_admit_more_than_a_tenants_limit() {
    use ledger::RateLimit;
    use ledger_http::rate_limit::{Admission, TenantLimits};
    use std::time::{Duration, Instant};

    let store = fresh_store().await;
    let limit = RateLimit::new(40, 20).unwrap();
    let noisy = tenant("noisy");
    let started = Instant::now();
    let instances = (0..8).map(|_| {
        let (limits, noisy) = (TenantLimits::new(store.clone(), limit), noisy.clone());
        tokio::spawn(async move {
            let (mut admitted, mut limited) = (0u32, 0u32);
            while started.elapsed() < Duration::from_millis(1_500) {
                match limits.admit(&noisy, 1, now()).await.unwrap() {
                    Admission::Admitted => admitted += 1,
                    Admission::Limited { retry_after } => {
                        assert!(retry_after <= Duration::from_millis(500), "{retry_after:?}");
                        limited += 1;
                    }
                }
                // A local refusal does not wait on anything: let the other instances run.
                tokio::task::yield_now().await;
            }
            (admitted, limited)
        })
    });
    let outcomes: Vec<(u32, u32)> =
        futures::future::join_all(instances).await.into_iter().map(Result::unwrap).collect();
    let elapsed = started.elapsed().as_secs_f64();
    let admitted: u32 = outcomes.iter().map(|o| o.0).sum();
    let limited: u32 = outcomes.iter().map(|o| o.1).sum();
    let most = 20.0 + 40.0 * elapsed + 1.0;
    assert!(f64::from(admitted) <= most, "admitted {admitted} in {elapsed:.2} s, at most {most:.0}");
    assert!(admitted >= 20, "admitted only {admitted}");
    assert!(limited > 0, "the flood was never limited");
    let quiet = TenantLimits::new(store.clone(), limit);
    for _ in 0..20 {
        assert_eq!(quiet.admit(&tenant("quiet"), 1, now()).await.unwrap(), Admission::Admitted);
    }
}
