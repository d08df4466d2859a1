//! What only the DynamoDB store does, against DynamoDB Local through the real aws-sdk-dynamodb
//! client over HTTP (and, for the fault tests, through the fault proxy in front of it): the SDK's
//! retries, a lost answer replayed by its token, its balance cache, DynamoDB's limits of a number
//! and of a transaction, its batch claims raced by concurrent posts, request buckets on one item.

use std::collections::BTreeMap;

use harness::faults::DynamoDbFault;
use harness::{FaultPlan, StackOptions, fresh_stack, fresh_stack_with};
use ledger::fixtures::{account, transfer};
use ledger::{AccountId, LedgerError, Metadata, TenantId, TransferStatus};
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
async fn throttling_is_retried_with_backoff_then_reported_unavailable() {
    let plan = FaultPlan { throttle: 1.0, ..FaultPlan::none() };
    let stack = fresh_stack_with(StackOptions { faults: plan, ..StackOptions::default() }).await;
    let result = stack.store.get_account(&tenant("acme"), &id("alice")).await;
    assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");
    assert_eq!(stack.faults.counts().throttled, u64::from(MAX_ATTEMPTS));
}

/// A store behind the fault proxy (for one-off faults and call counts), with bank and alice open.
async fn proxied_bank_and_alice() -> (harness::EmulatedStack, Arc<dyn Store>, TenantId) {
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

/// A transaction is cut by bytes as well as items: transfers with large metadata must not pass
/// DynamoDB's 4 MB per transaction (which would send a whole round to the DLQ). 60 respond-async
/// transfers with the largest metadata the domain allows (~77 KB each here), all refused (a refusal
/// writes its record and its event, two items: 49 would fit in 100 items, far fewer in 4 MB),
/// settled in one call: cut by bytes as well, every one settles.
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
            tokio::spawn(async move {
                store.settle_batch(&t, &id, now(), harness::contract::later()).await.unwrap()
            })
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
        let run = store.settle_batch(&t, batch.id(), now(), harness::contract::later()).await.unwrap();
        assert!(run.done, "round {round}");
        let status = store.batch_status(&t, batch.id()).await.unwrap();
        assert_eq!((status.counts.committed, status.counts.queued), (2, 0), "round {round}");
    }
    let alice = store.get_account(&t, &id("alice")).await.unwrap();
    assert_eq!(alice.balances.balance(), 12, "each x and y applied once");
}

/// Instances at once, each with its own view of the bucket, on one tenant's real bucket: at one
/// instant they never admit more than the burst between them, and once it refills, exactly its
/// rate; another tenant's bucket is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_at_once_never_admit_more_than_a_tenants_limit() {
    use ledger::RateLimit;
    use ledger_http::tenant_limits::{Admission, TenantLimits};

    let store = fresh_store().await;
    let limit = RateLimit::new(40, 20).unwrap();
    let (noisy, start) = (tenant("noisy"), now());
    // Eight instances at one instant, each asking until it is refused.
    let instances = (0..8).map(|_| {
        let (limits, noisy) = (TenantLimits::new(store.clone(), limit), noisy.clone());
        tokio::spawn(async move {
            let mut admitted = 0u32;
            while limits.admit(&noisy, 1, start).await.unwrap() == Admission::Admitted {
                admitted += 1;
            }
            admitted
        })
    });
    let admitted: u32 = futures::future::join_all(instances).await.into_iter().map(Result::unwrap).sum();
    assert!((1..=20).contains(&admitted), "{admitted} admitted at one instant, the burst is 20");
    // A second later the bucket is full again: one instance alone gets exactly the burst.
    let alone = TenantLimits::new(store.clone(), limit);
    let later = start + time::Duration::milliseconds(1_000);
    let mut in_a_second = 0;
    while alone.admit(&noisy, 1, later).await.unwrap() == Admission::Admitted {
        in_a_second += 1;
    }
    assert_eq!(in_a_second, 20, "full again a second later: the burst, no more");
    let quiet = TenantLimits::new(store.clone(), limit);
    for _ in 0..20 {
        assert_eq!(quiet.admit(&tenant("quiet"), 1, start).await.unwrap(), Admission::Admitted);
    }
    assert!(matches!(quiet.admit(&tenant("quiet"), 1, start).await.unwrap(), Admission::Limited { .. }));
}

/// A balance item written before accounts had a policy (no `status`, no `revision`) reads as open,
/// unbounded, at revision 0, and every write conditioned on that version lands: a transfer, a
/// conditional GET, a freeze.
#[tokio::test]
async fn a_balance_item_from_before_account_policies_reads_as_open_and_takes_every_write() {
    let stack = fresh_stack().await;
    let (store, t) = (stack.store.clone(), tenant("acme"));
    for (id, overdraft) in [("bank", true), ("alice", false)] {
        store.create_account(&t, account(id, overdraft), now()).await.unwrap();
    }
    for account in ["bank", "alice"] {
        stack
            .dynamodb
            .update_item()
            .table_name(&stack.table)
            .key(
                ledger_dynamodb::keys::PK,
                ledger_dynamodb::items::s(ledger_dynamodb::keys::account_pk(&t, &id(account))),
            )
            .key(ledger_dynamodb::keys::SK, ledger_dynamodb::items::s(ledger_dynamodb::keys::BALANCE_SK))
            .update_expression("REMOVE #status, revision")
            .expression_attribute_names("#status", "status")
            .send()
            .await
            .unwrap();
    }
    let alice = store.get_account(&t, &id("alice")).await.unwrap();
    assert_eq!((alice.status, alice.revision), (ledger::AccountStatus::Open, 0));
    let funded = store.create_transfer(&t, transfer("fund", "bank", "alice", 10), now()).await.unwrap();
    assert_eq!(funded.value().status, TransferStatus::Committed);
    assert_eq!(
        store.account_balance(&t, &id("alice")).await.unwrap().version(),
        ledger::AccountVersion { entries: 1, revision: 0 }
    );
    let change = ledger::AccountChange::Freeze { debits_only: true };
    let frozen = store.change_account(&t, &id("alice"), &change, None, now()).await.unwrap();
    assert_eq!((frozen.status, frozen.revision), (ledger::AccountStatus::DebitsFrozen, 1));
    let refused = store.create_transfer(&t, transfer("out", "alice", "bank", 1), now()).await.unwrap();
    assert_eq!(
        refused.value().status,
        TransferStatus::Rejected { reason: ledger::RuleViolation::AccountFrozen { account_id: id("alice") } }
    );
}

/// A write cancelled only by balances' versions hands them back as they stand
/// (`ReturnValuesOnConditionCheckFailure`), so the synchronous path's retry plans on them without
/// reading them again; and that retry commits.
#[tokio::test]
async fn a_write_cancelled_by_balances_hands_them_back_as_they_stand() {
    use ledger::engine::{Book, Step};
    let stack = fresh_stack().await;
    let (store, t) = (stack.store.clone(), tenant("acme"));
    for (id, overdraft) in [("bank", true), ("alice", false)] {
        store.create_account(&t, account(id, overdraft), now()).await.unwrap();
    }
    let book = ledger_dynamodb::DynamoStore::new(stack.dynamodb.clone(), stack.table.clone());
    let ids = [AccountId::parse("bank").unwrap(), AccountId::parse("alice").unwrap()];
    let stale = Book::read(&book, &t, &[], &ids).await.unwrap();
    store.create_transfer(&t, transfer("moved", "bank", "alice", 5), now()).await.unwrap();

    let mut planner = ledger::Planner::new(stale.accounts.iter().cloned(), now());
    let step = Step::alone(planner.decide(&transfer("late", "bank", "alice", 7), None));
    let written = Book::write(&book, &t, &[step], &mut stale.versions(), None).await.unwrap();

    assert!(written.cancelled && written.steps == 0, "{written:?}");
    let seen = |accounts: &[ledger::AccountBalance]| {
        let mut seen: Vec<_> =
            accounts.iter().map(|a| (a.id.to_string(), a.balances.balance(), a.version())).collect();
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        seen
    };
    let current = Book::read(&book, &t, &[], &ids).await.unwrap();
    assert_eq!(seen(&written.found), seen(&current.accounts));
    assert_eq!(seen(&written.found)[0].1, 5, "alice as the other write left her");
    // The synchronous path over the same accounts commits on what it is handed back.
    let late = store.create_transfer(&t, transfer("late", "bank", "alice", 7), now()).await.unwrap();
    assert!(matches!(late, Created::New(_)));
    assert_eq!(store.get_account(&t, &ids[1]).await.unwrap().balances.balance(), 12);
}
