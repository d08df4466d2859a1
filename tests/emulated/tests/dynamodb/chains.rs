//! Hash-chained history (`ledger::chain`) on DynamoDB Local: every route's entries chain on each
//! shard, and each way of rewriting the table behind the ledger's back is found where it was made.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use clap::Parser;
use harness::{EmulatedStack, Emulators, fresh_stack};
use ledger::audit::DigestDocument;
use ledger::chain::{ChainFault, Hash256, extends};
use ledger::digest::SignedDigest;
use ledger::fixtures::{account, hold, post, reversal, transfer, void};
use ledger::notarize::take_digest;
use ledger::port::Notary;
use ledger::{AccountId, NewAccount, ShardCount, TenantId};
use ledger_dynamodb::DynamoStore;
use ledger_dynamodb::chains::ShardChain;
use ledger_dynamodb::export::write_export;
use ledger_dynamodb::keys::{self, BALANCE_SK, ENTRY_SK_PREFIX, PK, SK};
use ledger_kms::KmsNotary;
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

/// `bank` (with overdraft), `alice` and `fees`, hot on `fee_shards` shards.
async fn open_accounts(stack: &EmulatedStack, t: &TenantId, fee_shards: u16) {
    let now = OffsetDateTime::now_utc();
    stack.store.create_account(t, account("bank", true), now).await.unwrap();
    stack.store.create_account(t, account("alice", false), now).await.unwrap();
    let hot = NewAccount { shards: ShardCount::new(fee_shards).unwrap(), ..account("fees", false) };
    stack.store.create_account(t, hot, now).await.unwrap();
}

/// The auditor's files for `document`, signed by the holder of `public_key`: the document and the
/// key, in a directory of their own (the export is written there by [`audit_offline`]).
fn auditors_files(stack: &EmulatedStack, document: &DigestDocument, public_key: &[u8]) -> std::path::PathBuf {
    let dir = harness::paths::test_output().join(format!("audit-{}", stack.table));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("digest.json"), serde_json::to_vec(document).unwrap()).unwrap();
    std::fs::write(dir.join("key.der"), public_key).unwrap();
    dir
}

/// `ledger audit` on a new export of the table, with the files in `dir`: its result and output.
async fn audit_offline(
    stack: &EmulatedStack,
    dir: &std::path::Path,
    args: &[&str],
) -> (Result<(), ledger_cli::CliError>, String) {
    let mut export = std::fs::File::create(dir.join("table.jsonl")).unwrap();
    write_export(&stack.dynamodb, &stack.table, &mut export).await.unwrap();
    let (export, digest, key) = (dir.join("table.jsonl"), dir.join("digest.json"), dir.join("key.der"));
    let mut line = vec!["ledger".to_owned(), "audit".to_owned()];
    for (flag, path) in [("--export", &export), ("--digest", &digest), ("--public-key", &key)] {
        line.extend([flag.to_owned(), path.display().to_string()]);
    }
    line.extend(args.iter().map(|a| a.to_string()));
    let mut out = Vec::new();
    let result = ledger_cli::run(ledger_cli::Cli::parse_from(line), &mut out).await;
    (result, String::from_utf8(out).unwrap())
}

#[tokio::test]
async fn every_routes_entries_chain_and_each_rewrite_is_found_where_it_was_made() {
    let stack = fresh_stack().await;
    let t = TenantId::parse("acme").unwrap();
    let store = &stack.store;
    let now = OffsetDateTime::now_utc;
    open_accounts(&stack, &t, 4).await;
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

/// A digest signed by KMS (moto) and checked with the exported public key alone, as an auditor
/// would, catches what the chain cannot: a whole chain rewritten from its first entry, every hash
/// and the balance's head recomputed.
#[tokio::test]
async fn a_signed_digest_exposes_a_chain_rewritten_with_every_hash_recomputed() {
    let stack = fresh_stack().await;
    let t = TenantId::parse("acme").unwrap();
    let store = &stack.store;
    let now = OffsetDateTime::now_utc;
    open_accounts(&stack, &t, 3).await;
    for step in [
        transfer("fund", "bank", "alice", 100),
        transfer("pay", "alice", "fees", 10),
        transfer("pay2", "alice", "fees", 5),
        transfer("back", "alice", "bank", 3),
    ] {
        store.create_transfer(&t, step, now()).await.unwrap();
    }
    let kms = Emulators::shared().kms().await;
    let key = kms
        .create_key()
        .key_spec(KeySpec::EccNistP256)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap();
    let notary = KmsNotary::new(kms, key.key_metadata().unwrap().key_id());
    let (signed, tree) = take_digest(store.as_ref(), &notary, &t, now()).await.unwrap();
    // What an auditor holds: the digest as JSON and the public key, no AWS.
    let public_key = notary.public_key().await.unwrap();
    let signed: SignedDigest = serde_json::from_str(&serde_json::to_string(&signed).unwrap()).unwrap();
    assert_eq!(signed.verify(&public_key), Ok(()));
    // bank, alice, and the hot account's shards that have a balance item.
    assert!(signed.digest.size >= 3, "{:?}", tree.leaves());
    let dynamo = DynamoStore::new(stack.dynamodb.clone(), stack.table.clone());
    let against_digest = |chains: Vec<ShardChain>, account: &str| {
        let proofs = tree.proofs(&id(account));
        assert!(!proofs.is_empty() && proofs.iter().all(|p| p.verify(&signed.digest)), "{account}");
        proofs
            .iter()
            .filter_map(|proof| {
                let chain = chains.iter().find(|c| c.shard == proof.leaf.shard)?;
                extends(&proof.leaf, &chain.entries).map(|fault| (chain.shard, fault))
            })
            .collect::<Vec<_>>()
    };
    for name in ["bank", "alice", "fees"] {
        let chains = dynamo.chains(&t, &id(name)).await.unwrap().unwrap();
        assert_eq!(against_digest(chains, name), vec![], "{name}");
    }
    let dir = auditors_files(&stack, &DigestDocument::new(signed.clone(), &tree), &public_key);
    let audit = async |args: &[&str]| audit_offline(&stack, &dir, args).await;
    let (passed, printed) = audit(&["--output", "json", "--proof", "alice"]).await;
    assert!(passed.is_ok(), "{passed:?} {printed}");
    let report: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(report["passed"], true);
    assert_eq!(report["signature"], "good");
    assert_eq!(report["accounts"], 3);
    assert_eq!(report["proofs"][0]["leaf"]["account_id"], "alice");

    // Rewrite alice's history from her first entry: another counterparty, every later hash and
    // the balance's head recomputed, as someone who can write the table would.
    let (original, balance) = items(&stack, &t, "alice").await;
    let mut previous = Hash256::GENESIS;
    for (i, item) in original.iter().enumerate() {
        let mut entry = ledger_dynamodb::items::entry_from(item).unwrap();
        if i == 0 {
            entry.counterparty_account_id = id("mallory");
        }
        entry.hash = entry.hash_after(&previous);
        previous = entry.hash;
        let rewritten = with(
            item,
            "counterparty_account_id",
            AttributeValue::S(entry.counterparty_account_id.to_string()),
        );
        put(&stack, with(&rewritten, "hash", AttributeValue::S(entry.hash.to_string()))).await;
    }
    put(&stack, with(&balance, "head", AttributeValue::S(previous.to_string()))).await;
    // The chain alone cannot tell: it is whole.
    assert_eq!(faults(&stack, &t, "alice").await.0, vec![]);
    // Against the signed digest it is not, and a digest taken now proves another head.
    let chains = dynamo.chains(&t, &id("alice")).await.unwrap().unwrap();
    assert_eq!(against_digest(chains, "alice"), vec![(0, ChainFault::SignedHeadDiffers { sequence: 4 })]);
    let (_, now_tree) = take_digest(store.as_ref(), &notary, &t, now()).await.unwrap();
    assert!(!now_tree.proofs(&id("alice"))[0].verify(&signed.digest));
    // The offline verifier, on a new export, names alice's shard, and the transfer whose record
    // no longer says what her rewritten entry does, and nothing else.
    let (failed, printed) = audit(&[]).await;
    assert!(matches!(failed, Err(ledger_cli::CliError::AuditFailed(2))), "{failed:?} {printed}");
    assert!(printed.contains("alice shard 0: entry 4 is not the one the digest signed"), "{printed}");
    assert!(printed.contains("transfer fund: its record says"), "{printed}");
    // bank's history is untouched: it still extends its signed head.
    let chains = dynamo.chains(&t, &id("bank")).await.unwrap().unwrap();
    assert_eq!(against_digest(chains, "bank"), vec![]);
}

/// A transfer's record is bound to its entries: the offline verifier derives from the signed
/// entries what each record must say, so an edited amount, a reopened hold, a deleted record or a
/// refusal made to look applied is each found, on the transfer it was made to.
#[tokio::test]
async fn an_edited_transfer_record_is_found_by_the_offline_verifier() {
    let stack = fresh_stack().await;
    let t = TenantId::parse("acme").unwrap();
    let store = &stack.store;
    let now = OffsetDateTime::now_utc;
    open_accounts(&stack, &t, 2).await;
    for step in [
        transfer("fund", "bank", "alice", 100),
        transfer("pay", "alice", "fees", 10),
        hold("h1", "alice", "bank", 30, None),
        post("p1", "h1", Some(20)),
        hold("h2", "alice", "bank", 5, None),
        void("v2", "h2"),
        reversal("r1", "pay", Some(4)),
        transfer("big", "alice", "bank", 10_000),
    ] {
        store.create_transfer(&t, step, now()).await.unwrap();
    }
    let notary = ledger_kms::LocalNotary::new();
    let (signed, tree) = take_digest(store.as_ref(), &notary, &t, now()).await.unwrap();
    let public_key = notary.public_key().await.unwrap();
    let dir = auditors_files(&stack, &DigestDocument::new(signed, &tree), &public_key);
    let audit = async || {
        let (result, printed) = audit_offline(&stack, &dir, &["--output", "json"]).await;
        let report: serde_json::Value = serde_json::from_str(&printed).unwrap();
        let found: Vec<String> = report["transfer_findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| format!("{}: {}", f["transfer_id"].as_str().unwrap(), f["fault"].as_str().unwrap()))
            .collect();
        (result.is_ok(), report, found)
    };
    let (passed, report, found) = audit().await;
    assert!(passed, "{report}");
    assert_eq!((report["transfers"].as_u64(), report["entries"].as_u64()), (Some(8), Some(14)));
    assert_eq!(found, Vec::<String>::new());

    let record = async |raw: &str| {
        let key = [
            (
                PK.to_owned(),
                AttributeValue::S(keys::transfer_pk(&t, &ledger::TransferId::parse(raw).unwrap())),
            ),
            (SK.to_owned(), AttributeValue::S(keys::TRANSFER_SK.to_owned())),
        ];
        let got = stack.dynamodb.get_item().table_name(&stack.table).set_key(Some(key.into())).send().await;
        got.unwrap().item.unwrap()
    };
    let n = |v: &str| AttributeValue::N(v.to_owned());
    let s = |v: &str| AttributeValue::S(v.to_owned());

    // pay's amount edited.
    let pay = record("pay").await;
    put(&stack, with(&pay, "amount", n("1000"))).await;
    let (passed, _, found) = audit().await;
    assert!(!passed);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("pay: its record says") && found[0].contains("debit alice 1000 posted"),
        "{found:?}"
    );
    put(&stack, pay.clone()).await;

    // h1 reopened (so that it could be posted again).
    let h1 = record("h1").await;
    put(&stack, with(&h1, "status", s("pending"))).await;
    let (_, report, found) = audit().await;
    assert_eq!(found, ["p1: hold h1 and p1, which resolved it, do not name each other alike"]);
    // And alice and bank now show less pending than the holds that say so reserve.
    let pending: Vec<&str> = report["pending_findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["account_id"].as_str().unwrap())
        .collect();
    assert_eq!(pending, ["alice", "bank"]);
    put(&stack, h1).await;

    // r1's record deleted: its entries name it, and pay lists it.
    let r1 = record("r1").await;
    delete(&stack, &r1).await;
    let (_, _, found) = audit().await;
    assert_eq!(
        found,
        [
            "r1: entries name it and it has no record",
            "pay: pay and its reversal r1 do not name each other alike"
        ]
    );
    put(&stack, r1).await;

    // The refusal made to look applied.
    let big = record("big").await;
    assert_eq!(big["status"].as_s().unwrap(), "rejected");
    put(&stack, with(&big, "status", s("committed"))).await;
    let (_, _, found) = audit().await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("big: ") && found[0].ends_with("its entries say none"), "{found:?}");
    put(&stack, big).await;

    // Every record put back as it was: the audit passes again.
    let (passed, report, _) = audit().await;
    assert!(passed, "{report}");
}
