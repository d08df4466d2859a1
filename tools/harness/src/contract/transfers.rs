//! Transfers through the one engine: applied once, refused by rules (and the refusal kept), safe
//! under concurrency; holds resolved once; reversals bounded; chains whole.

use std::sync::Arc;

use futures::future::join_all;
use ledger::fixtures::{account, hold, post, reversal, transfer, void, with_currency};
use ledger::linked::LinkedChain;
use ledger::port::{Created, Store, StoreError};
use ledger::{Currency, LedgerError, RuleViolation, TransferStatus};

use super::{account_id, balance, funded, now, transfer_id};

fn code(status: &TransferStatus) -> &str {
    match status {
        TransferStatus::Rejected { reason } => reason.code(),
        TransferStatus::Committed | TransferStatus::Pending => "committed",
        other => panic!("unexpected {other:?}"),
    }
}

pub async fn a_transfer_moves_money_once_and_writes_both_entries(store: Arc<dyn Store>) {
    let t = funded(store.as_ref(), 1_000).await;
    let outcome = store.create_transfer(&t, transfer("t1", "alice", "bob", 300), now()).await.unwrap();
    assert!(matches!(&outcome, Created::New(tr) if tr.status == TransferStatus::Committed));
    let replay = store.create_transfer(&t, transfer("t1", "alice", "bob", 300), now()).await.unwrap();
    assert_eq!(replay, Created::Replayed(outcome.value().clone()));
    assert_eq!(balance(store.as_ref(), &t, "alice").await, 700);
    assert_eq!(balance(store.as_ref(), &t, "bob").await, 300);
    assert_eq!(balance(store.as_ref(), &t, "bank").await, -1_000);
    let bob = store.list_entries(&t, &account_id("bob"), 10, None).await.unwrap().items;
    assert_eq!(
        bob.iter().map(|e| (e.sequence, e.transfer_id.as_str(), e.balance_after())).collect::<Vec<_>>(),
        [(1, "t1", 300)]
    );
    assert_eq!(store.get_transfer(&t, &transfer_id("t1"), now()).await.unwrap(), outcome.value().clone());
}

pub async fn reusing_a_transfer_id_with_other_fields_conflicts_and_moves_nothing(store: Arc<dyn Store>) {
    let t = funded(store.as_ref(), 1_000).await;
    store.create_transfer(&t, transfer("t1", "alice", "bob", 300), now()).await.unwrap();
    match store.create_transfer(&t, transfer("t1", "alice", "bank", 301), now()).await {
        Err(StoreError::Ledger(LedgerError::IdempotencyConflict { fields })) => {
            assert_eq!(fields, vec!["credit_account_id", "amount"])
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(balance(store.as_ref(), &t, "bob").await, 300);
}

pub async fn a_rejected_transfer_id_is_spent(store: Arc<dyn Store>) {
    let t = funded(store.as_ref(), 100).await;
    let rejected = store.create_transfer(&t, transfer("t1", "alice", "bob", 101), now()).await.unwrap();
    let reason = RuleViolation::InsufficientFunds { account_id: account_id("alice") };
    assert_eq!(rejected.value().status, TransferStatus::Rejected { reason });
    // Funds arrive; a retry of the same request still gets the recorded rejection.
    store.create_transfer(&t, transfer("top-up", "bank", "alice", 1_000), now()).await.unwrap();
    let retried = store.create_transfer(&t, transfer("t1", "alice", "bob", 101), now()).await.unwrap();
    assert_eq!(retried, Created::Replayed(rejected.value().clone()));
    assert_eq!(balance(store.as_ref(), &t, "bob").await, 0);
    let other = store.create_transfer(&t, transfer("t1", "alice", "bob", 50), now()).await;
    assert!(matches!(other, Err(StoreError::Ledger(LedgerError::IdempotencyConflict { .. }))));
}

pub async fn every_rule_is_enforced(store: Arc<dyn Store>) {
    let t = funded(store.as_ref(), 100).await;
    let mut usd = account("usd", true);
    usd.currency = Currency::parse("USD").unwrap();
    store.create_account(&t, usd, now()).await.unwrap();
    let cases = [
        (transfer("r1", "alice", "alice", 1), "same_account"),
        (transfer("r2", "alice", "ghost", 1), "account_not_found"),
        (transfer("r3", "usd", "alice", 1), "currency_mismatch"),
        (with_currency(transfer("r4", "bank", "alice", 1), "USD"), "currency_mismatch"),
        (transfer("r5", "bob", "alice", 1), "insufficient_funds"),
        (post("r6", "nothing", None), "pending_not_found"),
        (post("r7", "fund", None), "not_pending"),
        (reversal("r8", "nothing", None), "reversed_transfer_not_found"),
        (reversal("r9", "r5", None), "not_reversible"),
    ];
    for (request, expected) in cases {
        let id = request.id.clone();
        let outcome = store.create_transfer(&t, request, now()).await.unwrap();
        assert_eq!(code(&outcome.value().status), expected, "{id}");
    }
    assert_eq!(balance(store.as_ref(), &t, "alice").await, 100);
}

pub async fn concurrent_duplicates_apply_exactly_once(store: Arc<dyn Store>) {
    let t = funded(store.as_ref(), 1_000).await;
    let tries = (0..8).map(|_| {
        let (store, t) = (store.clone(), t.clone());
        tokio::spawn(
            async move { store.create_transfer(&t, transfer("dup", "alice", "bob", 10), now()).await },
        )
    });
    let outcomes: Vec<_> = join_all(tries).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
    assert_eq!(outcomes.iter().filter(|o| !o.is_replay()).count(), 1);
    assert_eq!(balance(store.as_ref(), &t, "bob").await, 10);
    assert_eq!(store.list_entries(&t, &account_id("bob"), 10, None).await.unwrap().items.len(), 1);
}

pub async fn concurrent_spends_never_overdraw(store: Arc<dyn Store>) {
    let t = funded(store.as_ref(), 100).await;
    let spends = (0..12).map(|i| {
        let (store, t) = (store.clone(), t.clone());
        tokio::spawn(async move {
            store.create_transfer(&t, transfer(&format!("s{i}"), "alice", "bob", 30), now()).await
        })
    });
    let outcomes: Vec<_> = join_all(spends).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
    let committed = outcomes.iter().filter(|o| o.value().status == TransferStatus::Committed).count();
    assert_eq!(committed, 3, "100 holds three spends of 30");
    assert_eq!(balance(store.as_ref(), &t, "alice").await, 10);
    let entries = store.list_entries(&t, &account_id("alice"), 100, None).await.unwrap().items;
    assert_eq!(entries.iter().map(|e| e.sequence).collect::<Vec<_>>(), [4, 3, 2, 1], "gapless");
}

pub async fn a_hold_posts_once_and_its_remainder_is_released(store: Arc<dyn Store>) {
    let t = funded(store.as_ref(), 1_000).await;
    let held = store.create_transfer(&t, hold("h1", "alice", "bob", 600, None), now()).await.unwrap();
    assert_eq!(held.value().status, TransferStatus::Pending);
    let alice = store.get_account(&t, &account_id("alice")).await.unwrap();
    assert_eq!((alice.balances.balance(), alice.balances.available()), (1_000, 400));
    let over = store.create_transfer(&t, transfer("spend", "alice", "bob", 401), now()).await.unwrap();
    assert_eq!(code(&over.value().status), "insufficient_funds");
    let posts = (0..4).map(|i| {
        let (store, t) = (store.clone(), t.clone());
        let request =
            if i % 2 == 0 { post(&format!("p{i}"), "h1", Some(250)) } else { void(&format!("v{i}"), "h1") };
        tokio::spawn(async move { store.create_transfer(&t, request, now()).await })
    });
    let outcomes: Vec<_> =
        join_all(posts).await.into_iter().map(|r| r.unwrap().unwrap().into_value()).collect();
    let resolved: Vec<_> = outcomes.iter().filter(|o| o.status == TransferStatus::Committed).collect();
    assert_eq!(resolved.len(), 1, "{outcomes:?}");
    let refused = outcomes.iter().filter_map(|o| match &o.status {
        TransferStatus::Rejected { reason } => Some(reason.code()),
        _ => None,
    });
    let winner_kind = if resolved[0].request.id.as_str().starts_with('p') {
        "pending_already_posted"
    } else {
        "pending_already_voided"
    };
    assert!(refused.into_iter().all(|c| c == winner_kind));
    let alice = store.get_account(&t, &account_id("alice")).await.unwrap();
    assert_eq!(alice.balances.debits_pending, 0);
    let expected = if winner_kind == "pending_already_posted" { 750 } else { 1_000 };
    assert_eq!(alice.balances.balance(), expected);
}

pub async fn a_hold_past_its_time_reads_expired_and_is_released_once(store: Arc<dyn Store>) {
    let t = funded(store.as_ref(), 1_000).await;
    let start = now();
    store.create_transfer(&t, hold("h1", "alice", "bob", 600, Some(1)), start).await.unwrap();
    let later = start + time::Duration::seconds(2);
    // Read, posted and swept at once past its time: released once, by whichever came first.
    let h1 = transfer_id("h1");
    let read = store.get_transfer(&t, &h1, later);
    let posted = store.create_transfer(&t, post("p1", "h1", None), later);
    let swept = store.expire_due_holds(later, sweeper::SWEEP_LIMIT);
    let (read, posted, swept) = tokio::join!(read, posted, swept);
    assert_eq!(read.unwrap().status, TransferStatus::Expired);
    assert_eq!(code(&posted.unwrap().value().status), "pending_expired");
    assert!(swept.unwrap().expired <= 1);
    let alice = store.get_account(&t, &account_id("alice")).await.unwrap();
    assert_eq!((alice.balances.balance(), alice.balances.debits_pending), (1_000, 0));
    let entries = store.list_entries(&t, &account_id("alice"), 10, None).await.unwrap().items;
    assert_eq!(entries.len(), 3, "funding, hold, one release");
}

pub async fn the_sweeper_releases_due_holds_once(store: Arc<dyn Store>) {
    let t = funded(store.as_ref(), 1_000).await;
    let start = now();
    for i in 0..5 {
        store.create_transfer(&t, hold(&format!("h{i}"), "alice", "bob", 10, Some(1)), start).await.unwrap();
    }
    store.create_transfer(&t, hold("late", "alice", "bob", 10, Some(3_600)), start).await.unwrap();
    store.create_transfer(&t, post("p0", "h0", None), start).await.unwrap();
    let later = start + time::Duration::seconds(2);
    let sweeps = join_all((0..3).map(|_| store.expire_due_holds(later, sweeper::SWEEP_LIMIT))).await;
    let expired: usize = sweeps.into_iter().map(|s| s.unwrap().expired).sum();
    assert_eq!(expired, 4, "h1-h4; h0 was posted, late is not due");
    assert_eq!(store.expire_due_holds(later, sweeper::SWEEP_LIMIT).await.unwrap().expired, 0);
    let alice = store.get_account(&t, &account_id("alice")).await.unwrap();
    assert_eq!((alice.balances.debits_pending, alice.balances.balance()), (10, 990));
    assert_eq!(
        store.get_transfer(&t, &transfer_id("h3"), later).await.unwrap().status,
        TransferStatus::Expired
    );
}

/// A hold past its time that nobody met never refuses a transfer, on either side, nor a change,
/// nor lowers a balance read: whoever meets it first releases it, once, before refusing anything.
/// A hold posted before its time leaves its listings, which are found and removed, never released
/// again.
pub async fn a_hold_past_its_time_never_refuses_a_transfer(store: Arc<dyn Store>) {
    let t = funded(store.as_ref(), 1_000).await;
    let start = now();
    // Alice's whole balance held out, in two holds: one posted in time, one left to expire.
    store.create_transfer(&t, hold("h1", "alice", "bob", 400, Some(1)), start).await.unwrap();
    store.create_transfer(&t, hold("h2", "alice", "bob", 600, Some(1)), start).await.unwrap();
    store.create_transfer(&t, post("p1", "h1", None), start).await.unwrap();
    // Bob capped at what he has plus the held 600: nothing more may come in while it is pending.
    let cap = ledger::AccountChange::Update(ledger::AccountUpdate {
        max_balance: Some(Some(ledger::Limit::new(1_000).unwrap())),
        ..Default::default()
    });
    store.change_account(&t, &account_id("bob"), &cap, None, start).await.unwrap();
    let early = store.create_transfer(&t, transfer("early", "alice", "bank", 1), start).await.unwrap();
    assert_eq!(code(&early.value().status), "insufficient_funds", "h2 is not due yet");
    let later = start + time::Duration::seconds(2);
    // Past h2's time, nobody has met it: a debit of alice's and a credit of bob's both commit,
    // concurrently, as if it had never been.
    let (out, into) = tokio::join!(
        store.create_transfer(&t, transfer("out", "alice", "bank", 600), later),
        store.create_transfer(&t, transfer("into", "bank", "bob", 600), later),
    );
    assert_eq!(code(&out.unwrap().value().status), "committed");
    assert_eq!(code(&into.unwrap().value().status), "committed");
    assert_eq!(
        store.get_transfer(&t, &transfer_id("h2"), later).await.unwrap().status,
        TransferStatus::Expired
    );
    let alice = store.get_account(&t, &account_id("alice")).await.unwrap();
    assert_eq!((alice.balances.balance(), alice.balances.debits_pending), (0, 0));
    let entries = store.list_entries(&t, &account_id("alice"), 20, None).await.unwrap().items;
    let released = entries.iter().filter(|e| e.transfer_id.as_str() == "h2").count();
    assert_eq!(released, 2, "h2 held once and released once");
    // A read of an account releases a hold past its time before it answers.
    store.create_transfer(&t, transfer("refund", "bank", "alice", 50), later).await.unwrap();
    store.create_transfer(&t, hold("h3", "alice", "bank", 50, Some(1)), later).await.unwrap();
    let latest = later + time::Duration::seconds(2);
    assert_eq!(store.release_overdue_holds(&t, &[account_id("alice")], latest).await.unwrap(), 1);
    assert_eq!(store.release_overdue_holds(&t, &[account_id("alice")], latest).await.unwrap(), 0);
    let alice = store.get_account(&t, &account_id("alice")).await.unwrap();
    assert_eq!((alice.balances.available(), alice.balances.debits_pending), (50, 0));
    // The sweeper finds every listing handled: h1's (posted) removed, nothing released twice.
    let swept = store.expire_due_holds(latest, sweeper::SWEEP_LIMIT).await.unwrap();
    assert_eq!(swept.expired, 0);
    assert_eq!(
        store.expire_due_holds(latest, sweeper::SWEEP_LIMIT).await.unwrap(),
        ledger::port::Sweep::default()
    );
}

/// A sweep takes at most its limit, and a tenant with masses of holds due does not hold up
/// another's: the quiet tenant's hold is released by the first sweep (on DynamoDB the two tenants
/// fall in different groups of the listing's shards), and the sweeps that follow release the rest,
/// each once.
pub async fn the_sweeper_is_bounded_and_fair_across_tenants(store: Arc<dyn Store>) {
    const LIMIT: usize = 10;
    let start = now();
    let open = |tenant: &'static str| {
        let store = store.clone();
        async move {
            let t = super::tenant(tenant);
            for (id, overdraft) in [("bank", true), ("alice", false)] {
                store.create_account(&t, account(id, overdraft), start).await.unwrap();
            }
            t
        }
    };
    let (flood, quiet) = (open("flood").await, open("quiet").await);
    for i in 0..40 {
        store
            .create_transfer(&flood, hold(&format!("f{i}"), "bank", "alice", 1, Some(1)), start)
            .await
            .unwrap();
    }
    let later_hold = hold("q", "bank", "alice", 1, Some(1));
    store.create_transfer(&quiet, later_hold, start + time::Duration::seconds(1)).await.unwrap();
    // Well past every hold's time (a hold redone under contention is made, and times out, later).
    let later = start + time::Duration::seconds(60);
    let first = store.expire_due_holds(later, LIMIT).await.unwrap();
    assert!(first.more && first.expired + first.resolved <= LIMIT, "{first:?}");
    let q = store.get_account(&quiet, &account_id("alice")).await.unwrap();
    assert_eq!(q.balances.credits_pending, 0, "the quiet tenant's hold went in the first sweep");
    let mut expired = first.expired;
    for _ in 0..50 {
        let sweep = store.expire_due_holds(later, LIMIT).await.unwrap();
        assert!(sweep.expired + sweep.resolved <= LIMIT, "{sweep:?}");
        expired += sweep.expired;
        if !sweep.more {
            break;
        }
    }
    assert_eq!(expired, 41, "every hold released once");
    let f = store.get_account(&flood, &account_id("alice")).await.unwrap();
    assert_eq!((f.balances.credits_pending, f.balances.balance()), (0, 0));
}

pub async fn reversals_never_sum_past_what_was_posted(store: Arc<dyn Store>) {
    let t = funded(store.as_ref(), 1_000).await;
    store.create_transfer(&t, transfer("pay", "alice", "bob", 100), now()).await.unwrap();
    let reversals = (0..6).map(|i| {
        let (store, t) = (store.clone(), t.clone());
        tokio::spawn(async move {
            store.create_transfer(&t, reversal(&format!("r{i}"), "pay", Some(30)), now()).await
        })
    });
    let outcomes: Vec<_> =
        join_all(reversals).await.into_iter().map(|r| r.unwrap().unwrap().into_value()).collect();
    let applied = outcomes.iter().filter(|o| o.status == TransferStatus::Committed).count();
    assert_eq!(applied, 3, "100 posted: three reversals of 30");
    assert!(
        outcomes
            .iter()
            .filter(|o| o.status != TransferStatus::Committed)
            .all(|o| code(&o.status) == "exceeds_reversible_amount"),
        "{outcomes:?}"
    );
    let rest = store.create_transfer(&t, reversal("rest", "pay", None), now()).await.unwrap();
    assert_eq!(rest.value().movement.as_ref().map(|m| m.amount.get()), Some(10));
    let paid = store.get_transfer(&t, &transfer_id("pay"), now()).await.unwrap();
    assert_eq!((paid.reversed_amount(), paid.reversals.len()), (100, 4));
    assert_eq!(balance(store.as_ref(), &t, "bob").await, 0);
}

pub async fn a_linked_chain_applies_whole_or_not_at_all(store: Arc<dyn Store>) {
    let t = funded(store.as_ref(), 100).await;
    let chain = |members: Vec<ledger::NewTransfer>| LinkedChain::new(members).unwrap();
    let refused = store
        .create_linked(
            &t,
            chain(vec![transfer("a1", "alice", "bob", 60), transfer("a2", "alice", "bob", 60)]),
            now(),
        )
        .await
        .unwrap();
    let codes: Vec<_> = refused.value().iter().map(|m| code(&m.status).to_owned()).collect();
    assert_eq!(codes, ["linked_failed", "insufficient_funds"]);
    assert_eq!(balance(store.as_ref(), &t, "bob").await, 0);
    let applied = store
        .create_linked(
            &t,
            chain(vec![transfer("b1", "alice", "bob", 60), transfer("b2", "bob", "bank", 10)]),
            now(),
        )
        .await
        .unwrap();
    assert!(applied.value().iter().all(|m| m.status == TransferStatus::Committed));
    let replay = store
        .create_linked(
            &t,
            chain(vec![transfer("b1", "alice", "bob", 60), transfer("b2", "bob", "bank", 10)]),
            now(),
        )
        .await
        .unwrap();
    assert!(replay.is_replay());
    let conflict = store
        .create_linked(
            &t,
            chain(vec![transfer("b1", "alice", "bob", 60), transfer("b2", "bob", "bank", 11)]),
            now(),
        )
        .await;
    match conflict {
        Err(StoreError::Ledger(LedgerError::IdempotencyConflict { fields })) => {
            assert_eq!(fields, ["transfers[1].amount"])
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        (balance(store.as_ref(), &t, "alice").await, balance(store.as_ref(), &t, "bob").await),
        (40, 50)
    );
}
