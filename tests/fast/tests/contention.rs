//! Queued paths under contention that never lets a large write land: the engine's window shrinks
//! until its writes land, so a batch (and a delivery of queued submissions) keeps progressing
//! instead of spending its budget, and its message's receives, on one write. A `Book` over the
//! memory store cancels every write of more than one or two steps, as DynamoDB cancels a large
//! transaction beside a stream of small writers on the same accounts.
//!
//! And a synchronous transfer whose first writes a rival beats: each loss raises the accounts'
//! contention level and the landing lowers it, which is what sets a crowd's pauses.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ledger::engine::{Book, DueHold, Level, Progress, State, Step, Written};
use ledger::fixtures::{account, transfer};
use ledger::linked::LinkedChain;
use ledger::port::{Accounts, BatchStatus, Settled, Settlement, StoreError, Submissions, Transfers};
use ledger::{AccountId, BatchId, Submission, TenantId, TransferBatch, TransferId};
use ledger_memory::MemoryStore;
use time::OffsetDateTime;

/// The memory store, except that a write of more than `most` steps is cancelled (and counted), and
/// so are the first `rival_first` writes of any size (a rival landed first); it keeps accounts'
/// contention levels as the DynamoDB store does, and what the engine told it of each try.
struct OnlySmallWritesLand {
    store: MemoryStore,
    most: usize,
    cancelled: AtomicUsize,
    landed_steps: std::sync::Mutex<Vec<usize>>,
    rival_first: AtomicUsize,
    levels: std::sync::Mutex<HashMap<AccountId, Level>>,
    tries: std::sync::Mutex<Vec<(Vec<AccountId>, bool)>>,
    pauses: std::sync::Mutex<Vec<Duration>>,
}

impl OnlySmallWritesLand {
    fn new(most: usize) -> Self {
        Self {
            store: MemoryStore::new(),
            most,
            cancelled: AtomicUsize::new(0),
            landed_steps: Default::default(),
            rival_first: AtomicUsize::new(0),
            levels: Default::default(),
            tries: Default::default(),
            pauses: Default::default(),
        }
    }

    fn level(&self, id: &str) -> Level {
        self.levels.lock().unwrap().get(&AccountId::parse(id).unwrap()).copied().unwrap_or_default()
    }
}

#[async_trait]
impl Book for OnlySmallWritesLand {
    async fn read(
        &self,
        tenant: &TenantId,
        ids: &[TransferId],
        accounts: &[AccountId],
    ) -> Result<State, StoreError> {
        self.store.read(tenant, ids, accounts).await
    }

    async fn write(
        &self,
        tenant: &TenantId,
        steps: &[Step],
        versions: &mut HashMap<AccountId, ledger::engine::AsRead>,
        progress: Option<&mut Progress>,
    ) -> Result<Written, StoreError> {
        let rival = self.rival_first.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        if steps.len() > self.most || rival.is_ok() {
            self.cancelled.fetch_add(1, Ordering::Relaxed);
            return Ok(Written::cancelled_after(0));
        }
        let written = self.store.write(tenant, steps, versions, progress).await?;
        self.landed_steps.lock().unwrap().push(written.steps);
        Ok(written)
    }

    async fn batch_ids(
        &self,
        tenant: &TenantId,
        batch: &BatchId,
    ) -> Result<Option<Vec<TransferId>>, StoreError> {
        self.store.batch_ids(tenant, batch).await
    }

    async fn batch_progress(&self, tenant: &TenantId, batch: &BatchId) -> Result<BatchStatus, StoreError> {
        self.store.batch_progress(tenant, batch).await
    }

    async fn due_holds(&self, from: i64, to: i64, limit: usize) -> Result<(Vec<DueHold>, bool), StoreError> {
        self.store.due_holds(from, to, limit).await
    }

    async fn overdue_holds(
        &self,
        tenant: &TenantId,
        accounts: &[AccountId],
        at: i64,
        limit: usize,
    ) -> Result<Vec<DueHold>, StoreError> {
        self.store.overdue_holds(tenant, accounts, at, limit).await
    }

    async fn unlist(&self, hold: &DueHold) -> Result<(), StoreError> {
        self.store.unlist(hold).await
    }

    async fn swept_until(&self) -> Result<Option<i64>, StoreError> {
        self.store.swept_until().await
    }

    async fn advance_sweep(&self, to: i64) -> Result<(), StoreError> {
        self.store.advance_sweep(to).await
    }

    /// No pause (only the window's own shrinking can make a run progress); noted.
    async fn pause(&self, pause: Duration) {
        self.pauses.lock().unwrap().push(pause);
    }

    fn contention_level(&self, _tenant: &TenantId, accounts: &[AccountId]) -> Level {
        let levels = self.levels.lock().unwrap();
        accounts.iter().filter_map(|a| levels.get(a).copied()).max().unwrap_or_default()
    }

    fn note_try(&self, _tenant: &TenantId, accounts: &[AccountId], landed: bool) {
        let mut levels = self.levels.lock().unwrap();
        for account in accounts {
            let level = levels.entry(account.clone()).or_default();
            *level = level.after(landed);
        }
        self.tries.lock().unwrap().push((accounts.to_vec(), landed));
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

async fn opened(book: &OnlySmallWritesLand) -> TenantId {
    let t = TenantId::parse("acme").unwrap();
    for (id, overdraft) in [("bank", true), ("alice", false), ("bob", false)] {
        book.store.create_account(&t, account(id, overdraft), now()).await.unwrap();
    }
    t
}

async fn balance(book: &OnlySmallWritesLand, t: &TenantId, id: &str) -> i128 {
    book.store.get_account(t, &AccountId::parse(id).unwrap()).await.unwrap().balances.balance()
}

#[tokio::test]
async fn a_batch_shrinks_its_window_until_its_writes_land_and_settles_in_one_run() {
    let book = OnlySmallWritesLand::new(1);
    let t = opened(&book).await;
    let mut transfers = vec![transfer("fund", "bank", "alice", 30)];
    transfers.extend((0..30).map(|i| transfer(&format!("s{i}"), "alice", "bob", 1)));
    // One more than alice holds: refused, in its place in the order.
    transfers.push(transfer("over", "alice", "bob", 1));
    let batch = TransferBatch::new(BatchId::parse("b1").unwrap(), transfers).unwrap();
    book.store.submit_batch(&t, &batch, now()).await.unwrap();

    let run = book.settle_batch(&t, batch.id(), now(), harness::contract::later()).await.unwrap();

    assert!(run.done, "the run gave up: {run:?}");
    assert_eq!(run.settled.len(), 32);
    assert_eq!(run.settled.iter().filter(|s| **s == Settled::Committed).count(), 31);
    assert_eq!(run.settled[31], Settled::Rejected("insufficient_funds".into()));
    let status = book.store.batch_status(&t, batch.id()).await.unwrap();
    assert_eq!((status.counts.queued, status.counts.committed), (0, 31));
    assert_eq!((balance(&book, &t, "alice").await, balance(&book, &t, "bob").await), (0, 30));
    // Large writes were tried and cancelled; every landed write carried one transfer.
    assert!(book.cancelled.load(Ordering::Relaxed) >= 1);
    assert_eq!(*book.landed_steps.lock().unwrap(), vec![1; 32]);
}

#[tokio::test]
async fn a_delivery_of_queued_submissions_shrinks_its_window_and_keeps_each_chain_whole() {
    let book = OnlySmallWritesLand::new(2);
    let t = opened(&book).await;
    book.store.create_transfer(&t, transfer("fund", "bank", "alice", 10), now()).await.unwrap();
    let mut submissions = Vec::new();
    for i in 0..6 {
        let id = format!("q{i}");
        book.store.submit_transfer(&t, transfer(&id, "alice", "bob", 1), now()).await.unwrap();
        submissions.push(Submission::Transfer(TransferId::parse(&id).unwrap()));
    }
    // A chain of two lands whole: a window cut to one transfer still takes the chain it starts.
    let chain =
        LinkedChain::new(vec![transfer("c1", "alice", "bob", 3), transfer("c2", "bob", "bank", 1)]).unwrap();
    let ids: Vec<TransferId> = chain.transfers().iter().map(|m| m.id.clone()).collect();
    book.store.submit_linked(&t, chain, now()).await.unwrap();
    submissions.insert(3, Submission::Linked(ids));

    let settled = book.settle_transfers(&t, &submissions, now()).await.unwrap();

    assert_eq!(settled, vec![Some(Settled::Committed); 8]);
    assert_eq!((balance(&book, &t, "alice").await, balance(&book, &t, "bob").await), (1, 8));
    assert!(book.cancelled.load(Ordering::Relaxed) >= 1);
    let landed = book.landed_steps.lock().unwrap().clone();
    assert_eq!(landed.iter().sum::<usize>(), 8, "{landed:?}");
    assert!(landed.iter().all(|steps| *steps <= 2), "{landed:?}");
}

/// A worker run whose time is up after its first window: the batch continues in a new message
/// (its own is not reported failed, so it never counts towards the dead-letter queue while it
/// progresses), and the continuation finishes it.
#[tokio::test]
async fn a_batch_that_progressed_when_its_time_was_up_continues_in_a_new_message() {
    let stack = harness::MemoryStack::new();
    let t = TenantId::parse("acme").unwrap();
    for (id, overdraft) in [("bank", true), ("alice", false)] {
        stack.store.create_account(&t, account(id, overdraft), now()).await.unwrap();
    }
    let transfers = (0..150).map(|i| transfer(&format!("s{i}"), "bank", "alice", 1)).collect();
    let batch = TransferBatch::new(BatchId::parse("b1").unwrap(), transfers).unwrap();
    stack.store.submit_batch(&t, &batch, now()).await.unwrap();
    let work = ledger::port::Work { tenant: t.clone(), submission: Submission::Batch(batch.id().clone()) };

    // Its deadline passed already: one window is written, then the run stops.
    let past = std::time::Instant::now();
    let response = worker::handle(
        stack.store.as_ref(),
        &stack.queues,
        harness::memory::sqs_event(std::slice::from_ref(&work)),
        past,
    )
    .await;

    assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures);
    let status = stack.store.batch_status(&t, batch.id()).await.unwrap();
    assert_eq!(status.counts.committed, ledger::engine::WINDOW as u64);
    assert_eq!(stack.queues.take_work(), vec![work.clone()], "the continuation");
    let response = worker::handle(
        stack.store.as_ref(),
        &stack.queues,
        harness::memory::sqs_event(&[work]),
        harness::contract::later(),
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(stack.store.batch_status(&t, batch.id()).await.unwrap().counts.committed, 150);
    assert!(stack.queues.take_work().is_empty(), "done: nothing continues");
}

#[tokio::test]
async fn each_loss_raises_the_accounts_level_and_the_landing_lowers_it_with_the_transfer_applied_once() {
    let book = OnlySmallWritesLand::new(usize::MAX);
    let t = opened(&book).await;
    book.rival_first.store(3, Ordering::Relaxed);

    let created = book.create_transfer(&t, transfer("t1", "bank", "alice", 5), now()).await.unwrap();

    assert!(matches!(created, ledger::port::Created::New(_)));
    assert_eq!(balance(&book, &t, "alice").await, 5, "applied once");
    let tries = book.tries.lock().unwrap().clone();
    let outcomes: Vec<bool> = tries.iter().map(|(_, landed)| *landed).collect();
    assert_eq!(outcomes, [false, false, false, true]);
    let accounts = ["bank", "alice"].map(|id| AccountId::parse(id).unwrap());
    assert!(tries.iter().all(|(on, _)| accounts.iter().all(|a| on.contains(a))), "{tries:?}");
    assert_eq!(book.pauses.lock().unwrap().len(), 3, "one pause a loss");
    // Three losses, then a landing.
    let expected = [false, false, false, true].iter().fold(Level::default(), |l, landed| l.after(*landed));
    assert_eq!(book.level("alice"), expected);
    assert_eq!(book.level("bank"), expected);
    assert!(!expected.is_lowest());
    assert!(book.level("bob").is_lowest(), "an account no try touched");

    // Transfers that land at once cool the accounts down to the lowest again.
    for i in 0..20 {
        book.create_transfer(&t, transfer(&format!("c{i}"), "bank", "alice", 1), now()).await.unwrap();
    }
    assert!(book.level("alice").is_lowest(), "{:?}", book.level("alice"));
    assert_eq!(balance(&book, &t, "alice").await, 25);
}
