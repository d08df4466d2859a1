//! The restore drill on DynamoDB Local: the table exported and imported into a fresh one, every
//! tenant's books checked there from the first entry and against the auditor's signed checkpoint;
//! a table whose newest entry was deleted behind the ledger's back restores as not whole.

use aws_sdk_dynamodb::types::AttributeValue;
use harness::fresh_stack;
use ledger::fixtures::{account, hold, post, transfer};
use ledger::{AccountId, TenantId};
use ledger_dynamodb::keys::{self, ENTRY_SK_PREFIX};
use ledger_ops::drill::{self, Restore};
use time::OffsetDateTime;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_table_is_proven_whole_and_a_tampered_one_is_not() {
    let stack = fresh_stack().await;
    let tenants = [TenantId::parse("acme").unwrap(), TenantId::parse("globex").unwrap()];
    for t in &tenants {
        for (id, overdraft) in [("bank", true), ("alice", false), ("bob", false)] {
            stack.store.create_account(t, account(id, overdraft), now()).await.unwrap();
        }
        for request in [
            transfer("fund", "bank", "alice", 100),
            hold("h", "alice", "bob", 30, None),
            post("p", "h", Some(20)),
        ] {
            stack.store.create_transfer(t, request, now()).await.unwrap();
        }
    }
    assert_eq!(stack.audit(now()).await.unwrap().checked, 2);
    // Written after the checkpoint: the drill reads them from the restored table too.
    stack.store.create_transfer(&tenants[0], transfer("late", "alice", "bob", 5), now()).await.unwrap();

    let target = format!("{}-drill", stack.table);
    let report =
        drill::run(&stack.dynamodb, &stack.table, &target, Restore::ExportImport, Some(&stack.archive))
            .await
            .unwrap();
    println!("{}", drill::render(&report));
    assert!(report.passed(), "{}", drill::render(&report));
    let scanned = stack.dynamodb.scan().table_name(&stack.table).send().await.unwrap().count() as usize;
    assert_eq!(report.items, scanned, "every item restored");
    let restored = stack.dynamodb.scan().table_name(&target).send().await.unwrap().count() as usize;
    assert_eq!(restored, scanned);
    let checked: Vec<_> = report
        .tenants
        .iter()
        .map(|t| (t.tenant.to_string(), t.entries, t.against_run, t.open_sides))
        .collect();
    // fund, hold, post: 6 entries each; acme's late transfer 2 more.
    assert_eq!(checked, [("acme".to_owned(), 8, Some(1), 0), ("globex".to_owned(), 6, Some(1), 0)]);

    // bob's newest entry deleted in the source, his balance left as it was.
    let bob = AccountId::parse("bob").unwrap();
    let entries = stack
        .dynamodb
        .query()
        .table_name(&stack.table)
        .key_condition_expression("pk = :pk AND begins_with(sk, :e)")
        .expression_attribute_values(":pk", AttributeValue::S(keys::account_pk(&tenants[0], &bob)))
        .expression_attribute_values(":e", AttributeValue::S(ENTRY_SK_PREFIX.to_owned()))
        .scan_index_forward(false)
        .limit(1)
        .send()
        .await
        .unwrap();
    let newest = entries.items()[0].clone();
    stack
        .dynamodb
        .delete_item()
        .table_name(&stack.table)
        .key(keys::PK, newest[keys::PK].clone())
        .key(keys::SK, newest[keys::SK].clone())
        .send()
        .await
        .unwrap();
    let target = format!("{}-drill-2", stack.table);
    let report =
        drill::run(&stack.dynamodb, &stack.table, &target, Restore::ExportImport, Some(&stack.archive))
            .await
            .unwrap();
    assert!(!report.passed());
    let acme = &report.tenants[0];
    assert!(
        acme.faults.iter().any(|f| f.contains("account bob") && f.contains("counts 3 entries")),
        "{:?}",
        acme.faults
    );
    assert!(report.tenants[1].faults.is_empty(), "the other tenant restores whole");
}
