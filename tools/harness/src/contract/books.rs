//! The books checked run after run (`ledger::books`): each run reads only the entries written since
//! its checkpoint, finds the books balanced while transfers race its reads, and moves the tenant's
//! checkpoint only from the one it started from.

use std::sync::Arc;

use ledger::LedgerError;
use ledger::audit::DigestDocument;
use ledger::books::{BooksChecked, BooksReport, Checkpoint};
use ledger::digest::DigestTree;
use ledger::fixtures::{account, hold, post, transfer, void};
use ledger::port::{CheckpointRef, EventFilter, Notary, Store, StoreError};
use ledger::{Currency, Event, EventType, TenantId};
use ledger_kms::LocalNotary;

use super::{funded, now, tenant};

async fn run(
    store: &dyn Store,
    notary: &LocalNotary,
    t: &TenantId,
    previous: Option<&Checkpoint>,
) -> (Checkpoint, BooksReport) {
    ledger::notarize::check_books(store, notary, t, previous, 2, now()).await.expect("a run of the books")
}

fn eur() -> Currency {
    Currency::parse("EUR").unwrap()
}

pub async fn the_books_balance_run_after_run_reading_only_what_is_new(store: Arc<dyn Store>) {
    let t = funded(store.as_ref(), 1_000).await;
    for request in [
        transfer("t1", "alice", "bob", 30),
        hold("h1", "alice", "bob", 50, None),
        post("p1", "h1", Some(20)),
        hold("h2", "alice", "bob", 10, None),
        void("v2", "h2"),
    ] {
        store.create_transfer(&t, request, now()).await.unwrap();
    }
    let globex = tenant("globex");
    store.create_account(&globex, account("outsider", true), now()).await.unwrap();
    let notary = LocalNotary::new();

    let (first, report) = run(store.as_ref(), &notary, &t, None).await;
    assert_eq!(report.faults, vec![], "an untouched ledger balances");
    assert_eq!((report.run, report.shards, report.open), (1, 3, 0));
    // fund 2 entries, t1 2, h1 2, its post 2, h2 2, its void 2.
    assert_eq!(report.entries, 12, "the first run reads every entry");
    let totals = report.totals[&eur()];
    assert_eq!((totals.debits_posted, totals.credits_posted), (1_050, 1_050));
    assert_eq!((totals.debits_pending, totals.credits_pending), (0, 0));
    assert_eq!(first.signed.verify(&notary.public_key().await.unwrap()), Ok(()));
    assert_eq!(first.leaves.len(), 3);

    let first_ref = CheckpointRef { run: 1, key: "first".into() };
    let checked = |checkpoint: &Checkpoint, report: &BooksReport, key: &str| {
        Event::books_checked(&t, BooksChecked::new(checkpoint, report, key.to_owned()))
    };
    store.advance(&t, None, &first_ref, &checked(&first, &report, "first")).await.unwrap();
    let racer = CheckpointRef { run: 1, key: "racer".into() };
    match store.advance(&t, None, &racer, &checked(&first, &report, "racer")).await {
        Err(StoreError::Ledger(LedgerError::PreconditionFailed { .. })) => {}
        other => panic!("a second run from the same checkpoint must not move it, got {other:?}"),
    }
    let filter = EventFilter { kind: Some(EventType::BooksChecked), ..Default::default() };
    let events = store.list_events(&t, &filter, 10, None, now()).await.unwrap().items;
    assert_eq!(events.iter().map(|e| e.id.to_string()).collect::<Vec<_>>(), ["books.checked:1"]);
    let body: serde_json::Value = serde_json::from_str(&events[0].body).unwrap();
    assert_eq!(body["data"]["object"]["archive_key"], "first", "the winner's event, alone");
    assert_eq!(body["data"]["object"]["root"], first.signed.digest.root.to_string());
    let tenants = store.tenants().await.unwrap();
    let listed: Vec<_> = tenants.iter().map(|b| (b.tenant.to_string(), b.latest.clone())).collect();
    assert_eq!(listed, [("acme".to_owned(), Some(first_ref.clone())), ("globex".to_owned(), None)]);

    store.create_transfer(&t, transfer("t2", "alice", "bob", 5), now()).await.unwrap();
    store.create_transfer(&t, hold("h3", "alice", "bob", 7, None), now()).await.unwrap();
    let (second, report) = run(store.as_ref(), &notary, &t, Some(&first)).await;
    assert_eq!(report.faults, vec![]);
    assert_eq!((report.run, report.entries), (2, 4), "only the entries since the checkpoint");
    let totals = report.totals[&eur()];
    assert_eq!((totals.debits_pending, totals.credits_pending), (7, 7), "the open hold, both sides");
    let second_ref = CheckpointRef { run: 2, key: "second".into() };
    store.advance(&t, Some(&first_ref), &second_ref, &checked(&second, &report, "second")).await.unwrap();

    let (third, report) = run(store.as_ref(), &notary, &t, Some(&second)).await;
    assert_eq!((report.faults.len(), report.entries), (0, 0), "nothing new, nothing read");
    assert_eq!(third.leaves, second.leaves);
    assert_eq!(third.signed.digest.root, second.signed.digest.root);

    // A checkpoint is a digest document: the offline verifier reads it as one.
    let document: DigestDocument = serde_json::from_value(serde_json::to_value(&third).unwrap()).unwrap();
    let tree = DigestTree::new(document.leaves.clone());
    assert_eq!(tree.digest(t.clone(), document.signed.digest.taken_at), third.signed.digest);
}

/// Runs read pages of two accounts while two clients move money among eight: a transfer lands
/// between the reads of its two accounts, leaving a side open for a run, never a fault; once the
/// clients stop, the next runs close every side.
pub async fn runs_racing_transfers_find_no_fault_and_close_every_side(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let ids: Vec<String> = (0..8).map(|i| format!("c{i}")).collect();
    for id in &ids {
        store.create_account(&t, account(id, true), now()).await.unwrap();
    }
    let clients = (0..2).map(|client| {
        let (store, t, ids) = (store.clone(), t.clone(), ids.clone());
        tokio::spawn(async move {
            for i in 0..16usize {
                let (from, to) = (&ids[(i * 3 + client) % 8], &ids[(i * 5 + client + 1) % 8]);
                if from != to {
                    let id = format!("m{client}-{i}");
                    store.create_transfer(&t, transfer(&id, from, to, 1 + i as u64), now()).await.unwrap();
                }
            }
        })
    });
    let clients = futures::future::join_all(clients);
    let notary = LocalNotary::new();
    let runs = async {
        let (mut previous, mut reports) = (None::<Checkpoint>, Vec::new());
        for _ in 0..4 {
            let (next, report) = run(store.as_ref(), &notary, &t, previous.as_ref()).await;
            reports.push(report);
            previous = Some(next);
        }
        (previous, reports)
    };
    let (results, (mut previous, reports)) = tokio::join!(clients, runs);
    for result in results {
        result.expect("a client ran to the end");
    }
    for report in &reports {
        assert_eq!(report.faults, vec![], "run {}", report.run);
    }
    let mut entries: usize = reports.iter().map(|r| r.entries).sum();
    for _ in 0..2 {
        let (next, report) = run(store.as_ref(), &notary, &t, previous.as_ref()).await;
        assert_eq!(report.faults, vec![], "run {}", report.run);
        entries += report.entries;
        previous = Some(next);
    }
    let last = previous.expect("runs ran");
    assert_eq!(last.open, vec![], "every side met its other");
    let written: u64 = last.leaves.iter().map(|m| m.leaf.entry_count).sum();
    assert_eq!(entries as u64, written, "each entry read once, by one run");
}
