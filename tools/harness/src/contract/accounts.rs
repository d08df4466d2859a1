//! Accounts: opened once, read with their version, listed, and their past read back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ledger::chain::Hash256;
use ledger::digest::HeadLeaf;
use ledger::fixtures::{account, transfer};
use ledger::notarize::take_digest;
use ledger::port::{Created, Notary, StatementRange, Store, StoreError};
use ledger::{Direction, LedgerError, Metadata};
use ledger_kms::LocalNotary;

use super::{account_id, balance, funded, now, tenant};

pub async fn opening_an_account_twice_replays_and_other_fields_conflict(store: Arc<dyn Store>) {
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
    let opened = store.list_events(&t, &Default::default(), 10, None, now()).await.unwrap().items;
    assert_eq!(opened.iter().map(|e| e.id.to_string()).collect::<Vec<_>>(), ["account.opened:alice"]);
}

pub async fn an_account_reads_back_with_its_version(store: Arc<dyn Store>) {
    let t = funded(store.as_ref(), 100).await;
    let alice = store.get_account(&t, &account_id("alice")).await.unwrap();
    assert_eq!((alice.balances.balance(), alice.entry_count), (100, 1));
    let version = |entries| ledger::AccountVersion { entries, revision: 0 };
    assert_eq!(store.account_balance(&t, &account_id("alice")).await.unwrap().version(), version(1));
    store.create_transfer(&t, transfer("t1", "alice", "bob", 30), now()).await.unwrap();
    assert_eq!(store.account_balance(&t, &account_id("alice")).await.unwrap().version(), version(2));
    for missing in [
        store.get_account(&t, &account_id("ghost")).await.err(),
        store.account_balance(&t, &account_id("ghost")).await.err(),
    ] {
        assert!(missing.is_some_and(|e| e.is_not_found()));
    }
}

/// Heads page through every account once, each its balance's count and its newest entry's hash;
/// a digest over them is signed, and each account's proof checks against it, another tenant's not.
pub async fn a_digest_commits_to_every_head_and_each_account_proves_its_own(store: Arc<dyn Store>) {
    let t = funded(store.as_ref(), 1_000).await;
    for i in 0..5 {
        store.create_account(&t, account(&format!("c{i}"), false), now()).await.unwrap();
        store
            .create_transfer(&t, transfer(&format!("p{i}"), "alice", &format!("c{i}"), 1), now())
            .await
            .unwrap();
    }
    let globex = tenant("globex");
    store.create_account(&globex, account("outsider", true), now()).await.unwrap();
    let (mut heads, mut after) = (Vec::new(), None);
    loop {
        let page = store.shard_balances(&t, 3, after.as_ref()).await.unwrap();
        assert!(page.items.len() <= 3);
        heads.extend(page.items.iter().map(HeadLeaf::of));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let ids: Vec<_> = heads.iter().map(|h| h.account_id.to_string()).collect();
    assert_eq!(ids, ["alice", "bank", "bob", "c0", "c1", "c2", "c3", "c4"]);
    for head in &heads {
        let newest = store.list_entries(&t, &head.account_id, 1, None).await.unwrap().items;
        let balance = store.account_balance(&t, &head.account_id).await.unwrap();
        assert_eq!(head.entry_count, balance.entry_count, "{}", head.account_id);
        assert_eq!(head.head, newest.first().map_or(Hash256::GENESIS, |e| e.hash), "{}", head.account_id);
    }
    assert_eq!(heads.iter().find(|h| h.account_id.as_str() == "alice").map(|h| h.entry_count), Some(6));

    let notary = LocalNotary::new();
    let (signed, tree) = take_digest(store.as_ref(), &notary, &t, now()).await.unwrap();
    assert_eq!(signed.verify(&notary.public_key().await.unwrap()), Ok(()));
    assert_eq!(signed.digest.size, 8);
    assert_eq!(tree.leaves(), heads.as_slice());
    for head in &heads {
        let proofs = tree.proofs(&head.account_id);
        assert_eq!(proofs.len(), 1);
        assert!(proofs[0].verify(&signed.digest));
    }
    let (theirs, their_tree) = take_digest(store.as_ref(), &notary, &globex, now()).await.unwrap();
    assert_eq!(theirs.digest.size, 1);
    assert!(tree.proofs(&account_id("outsider")).is_empty());
    assert!(!their_tree.proofs(&account_id("outsider"))[0].verify(&signed.digest));
}

pub async fn lists_page_through_every_account_and_entry_exactly_once(store: Arc<dyn Store>) {
    let t = funded(store.as_ref(), 1_000).await;
    for i in 0..7 {
        store.create_account(&t, account(&format!("c{i}"), false), now()).await.unwrap();
        store.create_transfer(&t, transfer(&format!("p{i}"), "alice", "bob", 1), now()).await.unwrap();
    }
    let (mut ids, mut after) = (Vec::new(), None);
    loop {
        let page = store.list_accounts(&t, &Default::default(), 3, after.as_ref()).await.unwrap();
        assert!(page.items.len() <= 3);
        ids.extend(page.items.iter().map(|a| a.id.to_string()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "by id");
    assert_eq!(ids.len(), 10, "{ids:?}");
    let (mut sequences, mut before) = (Vec::new(), None);
    loop {
        let page = store.list_entries(&t, &account_id("alice"), 3, before).await.unwrap();
        sequences.extend(page.items.iter().map(|e| e.sequence));
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    assert_eq!(sequences, (1..=8).rev().collect::<Vec<u64>>(), "newest first, gapless");
    let bob = store.list_entries(&t, &account_id("bob"), 100, None).await.unwrap().items;
    assert!(
        bob.iter().all(|e| e.direction == Direction::Credit && e.counterparty_account_id.as_str() == "alice")
    );
    let empty = store.list_entries(&t, &account_id("c0"), 10, None).await.unwrap();
    assert!(empty.items.is_empty() && empty.next.is_none());
    let missing = store.list_entries(&t, &account_id("ghost"), 10, None).await.unwrap_err();
    assert!(missing.is_not_found());
}

pub async fn balances_as_of_instants_and_statements_page_by_page(store: Arc<dyn Store>) {
    let t = funded(store.as_ref(), 0).await;
    let opened = now();
    let mut marks = Vec::new();
    for (i, amount) in [100u64, 50, 25].into_iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(3)).await;
        store.create_transfer(&t, transfer(&format!("f{i}"), "bank", "alice", amount), now()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await;
        marks.push(now());
    }
    let alice = account_id("alice");
    let at = |i: usize| store.balance_at(&t, &alice, marks[i], now());
    assert_eq!(at(0).await.unwrap().balances.balance(), 100);
    assert_eq!(at(1).await.unwrap().balances.balance(), 150);
    let last = at(2).await.unwrap();
    assert_eq!((last.balances.balance(), last.entry_count), (175, 3));
    let first_page = StatementRange { from: Some(marks[0]), to: marks[2], page_size: 1, after: None };
    let page = store.statement(&t, &alice, first_page, now()).await.unwrap();
    assert_eq!((page.opening.balances.balance(), page.entries.len(), page.closing), (100, 1, None));
    let rest = StatementRange { after: page.next, ..first_page };
    let page = store.statement(&t, &alice, rest, now()).await.unwrap();
    assert_eq!(page.entries.iter().map(|e| e.sequence).collect::<Vec<_>>(), [3]);
    assert_eq!(page.closing.map(|c| c.balances.balance()), Some(175));
    let whole = StatementRange { from: None, to: marks[2], page_size: 10, after: None };
    let page = store.statement(&t, &alice, whole, now()).await.unwrap();
    assert_eq!((page.opening.balances.balance(), page.entries.len()), (0, 3));
    assert!(opened <= page.entries[0].created_at);
}

pub async fn instants_a_history_cannot_state_are_typed_refusals(store: Arc<dyn Store>) {
    let before = now() - time::Duration::seconds(5);
    let t = funded(store.as_ref(), 10).await;
    let alice = account_id("alice");
    let field = |err: StoreError| match err {
        StoreError::Ledger(LedgerError::InvalidField { field, .. }) => field,
        other => panic!("expected an invalid field, got {other:?}"),
    };
    let later = now() + time::Duration::minutes(5);
    assert_eq!(field(store.balance_at(&t, &alice, later, now()).await.unwrap_err()), "at");
    assert_eq!(field(store.balance_at(&t, &alice, before, now()).await.unwrap_err()), "at");
    let future = StatementRange { from: None, to: later, page_size: 10, after: None };
    assert_eq!(field(store.statement(&t, &alice, future, now()).await.unwrap_err()), "to");
    let upside_down = StatementRange { from: Some(now()), to: before, page_size: 10, after: None };
    assert_eq!(field(store.statement(&t, &alice, upside_down, now()).await.unwrap_err()), "from");
    let page = store.list_entries(&t, &alice, 1, None).await.unwrap().items;
    let outside = StatementRange {
        from: Some(now()),
        to: now(),
        page_size: 10,
        after: page.first().map(ledger::port::EntryPosition::of),
    };
    assert_eq!(field(store.statement(&t, &alice, outside, now()).await.unwrap_err()), "cursor");
    assert!(store.balance_at(&t, &account_id("ghost"), now(), now()).await.unwrap_err().is_not_found());
}

pub async fn tenants_never_see_each_others_accounts(store: Arc<dyn Store>) {
    let acme = funded(store.as_ref(), 100).await;
    let globex = tenant("globex");
    store.create_account(&globex, account("alice", false), now()).await.unwrap();
    assert_eq!(balance(store.as_ref(), &acme, "alice").await, 100);
    assert_eq!(balance(store.as_ref(), &globex, "alice").await, 0);
    assert!(store.get_account(&globex, &account_id("bob")).await.unwrap_err().is_not_found());
    let listed = store.list_accounts(&globex, &Default::default(), 100, None).await.unwrap().items;
    assert_eq!(listed.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["alice"]);
    let t = store.get_transfer(&globex, &super::transfer_id("fund"), now()).await;
    assert!(t.unwrap_err().is_not_found());
}

/// Accounts found by metadata: every pair must hold, page by page in id order, for the tenant's
/// own accounts only; an account whose creation was refused (its id held other metadata) is not
/// found under the metadata it asked for.
pub async fn accounts_are_found_by_their_metadata_across_pages(store: Arc<dyn Store>) {
    let (t, other) = (tenant("acme"), tenant("globex"));
    let with = |id: &str, pairs: &[(&str, String)]| {
        let mut a = account(id, false);
        a.metadata =
            Metadata::parse(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()).unwrap();
        a
    };
    for i in 0..30 {
        let pairs = [("segment", (i % 3).to_string()), ("region", (i % 2).to_string())];
        store.create_account(&t, with(&format!("a{i:02}"), &pairs), now()).await.unwrap();
    }
    store.create_account(&other, with("a01", &[("segment", "1".into())]), now()).await.unwrap();
    let refused = store.create_account(&t, with("a00", &[("segment", "2".into())]), now()).await;
    assert!(matches!(refused, Err(StoreError::Ledger(LedgerError::IdempotencyConflict { .. }))));
    let find = |pairs: &[(&str, &str)]| {
        let store = store.clone();
        let (t, pairs) = (t.clone(), pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        async move {
            let filter = ledger::MetadataMatch::parse(pairs).unwrap();
            let (mut ids, mut after) = (Vec::new(), None);
            loop {
                let page = store.list_accounts(&t, &filter, 4, after.as_ref()).await.unwrap();
                assert!(page.items.len() <= 4);
                ids.extend(page.items.iter().map(|a| a.id.to_string()));
                match page.next {
                    Some(next) => after = Some(next),
                    None => return ids,
                }
            }
        }
    };
    let expected = |keep: &dyn Fn(usize) -> bool| -> Vec<String> {
        (0..30).filter(|i| keep(*i)).map(|i| format!("a{i:02}")).collect()
    };
    assert_eq!(find(&[("segment", "1")]).await, expected(&|i| i % 3 == 1));
    assert_eq!(find(&[("segment", "2")]).await, expected(&|i| i % 3 == 2), "a00 kept its own metadata");
    assert_eq!(find(&[("segment", "1"), ("region", "0")]).await, expected(&|i| i % 3 == 1 && i % 2 == 0));
    assert_eq!(find(&[("segment", "9")]).await, Vec::<String>::new());
}
