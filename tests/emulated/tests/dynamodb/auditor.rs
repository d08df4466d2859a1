//! The auditor on the emulators (DynamoDB Local, moto's KMS and S3): each tenant's books checked
//! from its checkpoint, the digest signed by a KMS key and kept in a bucket under Object Lock, the
//! checkpoint moved with its event; a table edited behind the ledger's back found on every run;
//! overlapping runs never skip nor repeat a run.

use aws_sdk_dynamodb::types::AttributeValue;
use harness::{EmulatedStack, fresh_stack};
use ledger::audit::DigestDocument;
use ledger::books::{BooksFault, Checkpoint};
use ledger::chain::ChainFault;
use ledger::fixtures::{account, hold, transfer};
use ledger::port::{Archive, EventFilter, Notary, TenantBooks};
use ledger::{AccountId, EventType, TenantId};
use ledger_dynamodb::keys::{self, BALANCE_SK};
use time::OffsetDateTime;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

async fn open(stack: &EmulatedStack, t: &TenantId) {
    for (id, overdraft) in [("bank", true), ("alice", false), ("bob", false)] {
        stack.store.create_account(t, account(id, overdraft), now()).await.unwrap();
    }
}

async fn latest(stack: &EmulatedStack, t: &TenantId) -> (TenantBooks, Checkpoint) {
    let books = stack.store.tenants().await.unwrap().into_iter().find(|b| &b.tenant == t).unwrap();
    let key = &books.latest.as_ref().expect("a checkpoint").key;
    let checkpoint = stack.archive.get(key).await.unwrap();
    (books, checkpoint)
}

async fn checked_events(stack: &EmulatedStack, t: &TenantId) -> Vec<String> {
    let filter = EventFilter { kind: Some(EventType::BooksChecked), ..Default::default() };
    let page = stack.store.list_events(t, &filter, 100, None, now()).await.unwrap();
    let mut ids: Vec<String> = page.items.iter().map(|e| e.id.to_string()).collect();
    ids.sort_by_key(|id| id.rsplit(':').next().and_then(|n| n.parse::<u64>().ok()));
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auditor_checks_signs_archives_and_tells_and_finds_an_edited_balance_every_run() {
    let stack = fresh_stack().await;
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    open(&stack, &acme).await;
    open(&stack, &globex).await;
    for (i, t) in [&acme, &globex].into_iter().enumerate() {
        stack
            .store
            .create_transfer(t, transfer("fund", "bank", "alice", 100 + i as u64), now())
            .await
            .unwrap();
        stack.store.create_transfer(t, hold("h", "alice", "bob", 10, None), now()).await.unwrap();
    }

    let tick = stack.audit(now()).await.unwrap();
    assert_eq!((tick.checked, tick.faults, tick.raced, tick.failed), (2, 0, 0, 0));
    assert_eq!(tick.entries, 8, "two transfers of two entries, per tenant");
    let (books, first) = latest(&stack, &acme).await;
    let key = books.latest.unwrap().key;
    assert!(key.starts_with("books/acme/000000000001-"), "{key}");
    // What an auditor holds: the object, as JSON, and the exported public key.
    let object = stack.s3.get_object().bucket(&stack.archive_bucket).key(&key).send().await.unwrap();
    let version = object.version_id().map(str::to_owned);
    let body = object.body.collect().await.unwrap().into_bytes();
    let document: DigestDocument = serde_json::from_slice(&body).unwrap();
    assert_eq!(document.signed.verify(&stack.notary.public_key().await.unwrap()), Ok(()));
    assert_eq!(document.leaves.len(), 3);
    assert_eq!(document.signed, first.signed);
    // Object Lock in compliance mode: the checkpoint cannot be deleted, its version neither.
    let deleted =
        stack.s3.delete_object().bucket(&stack.archive_bucket).key(&key).set_version_id(version).send().await;
    assert!(deleted.is_err(), "a locked checkpoint was deleted");
    assert_eq!(checked_events(&stack, &acme).await, ["books.checked:1"]);

    stack.store.create_transfer(&acme, transfer("pay", "alice", "bob", 7), now()).await.unwrap();
    let tick = stack.audit(now()).await.unwrap();
    assert_eq!((tick.checked, tick.faults, tick.entries), (2, 0, 2), "only what is new: acme's pay");
    let (_, second) = latest(&stack, &acme).await;
    assert_eq!(second.run, 2);

    // Someone with write access to the table raises bob's balance.
    let bob = AccountId::parse("bob").unwrap();
    stack
        .dynamodb
        .update_item()
        .table_name(&stack.table)
        .key(keys::PK, AttributeValue::S(keys::account_pk(&acme, &bob)))
        .key(keys::SK, AttributeValue::S(BALANCE_SK.to_owned()))
        .update_expression("SET credits_posted = :forged")
        .expression_attribute_values(":forged", AttributeValue::N("1007".into()))
        .send()
        .await
        .unwrap();
    for run in [3, 4] {
        let tick = stack.audit(now()).await.unwrap();
        assert_eq!(tick.checked, 2);
        assert!(tick.faults >= 2, "run {run}: {tick:?}");
        let (_, checkpoint) = latest(&stack, &acme).await;
        assert_eq!(checkpoint.run, run);
        let bob_mark = checkpoint.leaves.iter().find(|m| m.leaf.account_id == bob).unwrap();
        let before = second.leaves.iter().find(|m| m.leaf.account_id == bob).unwrap();
        assert_eq!(bob_mark, before, "run {run}: the forged balance is never signed");
    }
    let report =
        ledger::notarize::check_books(stack.store.as_ref(), &stack.notary, &acme, Some(&second), 2, now())
            .await
            .unwrap()
            .1;
    assert!(report.faults.contains(&BooksFault::Chain {
        account_id: bob.clone(),
        shard: 0,
        fault: ChainFault::BalanceMismatch
    }));
    assert!(report.faults.iter().any(|f| matches!(f, BooksFault::Unbalanced { posted: -1_000, .. })));
    let (_, globex_latest) = latest(&stack, &globex).await;
    assert_eq!(globex_latest.run, 4, "the other tenant's books go on, clean");
    assert_eq!(
        checked_events(&stack, &acme).await,
        ["books.checked:1", "books.checked:2", "books.checked:3", "books.checked:4"]
    );
}

/// Three auditors at once, as overlapping ticks would run, while a client moves money: each
/// tenant's checkpoint moves one run at a time, each run told once, and the books stay clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_auditors_move_each_checkpoint_one_run_at_a_time() {
    let stack = fresh_stack().await;
    let tenants = [tenant("acme"), tenant("globex")];
    for t in &tenants {
        open(&stack, t).await;
    }
    let client = {
        let (store, tenants) = (stack.store.clone(), tenants.clone());
        tokio::spawn(async move {
            for i in 0..12u64 {
                let t = &tenants[(i % 2) as usize];
                store
                    .create_transfer(t, transfer(&format!("m{i}"), "bank", "alice", 1 + i), now())
                    .await
                    .unwrap();
            }
        })
    };
    let mut ticks = Vec::new();
    for _ in 0..2 {
        let runs = futures::future::join_all((0..3).map(|_| stack.audit(now()))).await;
        ticks.extend(runs.into_iter().map(|r| r.unwrap()));
    }
    client.await.unwrap();
    let last = stack.audit(now()).await.unwrap();
    assert_eq!((last.checked, last.faults), (2, 0));
    ticks.push(last);
    assert_eq!(ticks.iter().map(|t| t.faults).sum::<usize>(), 0, "{ticks:?}");
    let checked: usize = ticks.iter().map(|t| t.checked).sum();
    let raced: usize = ticks.iter().map(|t| t.raced).sum();
    assert_eq!(checked + raced, 2 * ticks.len(), "each tick took up each tenant once");
    let mut runs = 0;
    for t in &tenants {
        let (_, checkpoint) = latest(&stack, t).await;
        let expected: Vec<String> = (1..=checkpoint.run).map(|run| format!("books.checked:{run}")).collect();
        assert_eq!(checked_events(&stack, t).await, expected, "{t}: every run told once, none skipped");
        assert_eq!(checkpoint.open, vec![], "{t}");
        runs += checkpoint.run as usize;
    }
    assert_eq!(runs, checked, "each run that moved a checkpoint is one of the runs counted checked");
}
