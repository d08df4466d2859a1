//! The one loop every path runs: read, write the expiry of any hold that fell due, plan, write; on
//! a cancelled write read again, within the one contention budget. A path (`Path`) says only what
//! it reads, what its decisions answer, and what its writes mean.
//!
//! A refusal that counts an account's pending amounts stands only once none of the holds they
//! count is past its time: the holds listed due in the account's own listing are released first
//! (`release_before_refusing`), then the plan is made again. So an expired hold never refuses a
//! transfer, whoever meets it first, and a transfer that commits pays nothing for it.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::book::{Book, DueHold, Request, State, Step, StoredTransfer, Written, plan};
use super::contention::Contention;
use crate::ids::{AccountId, TenantId, TransferId};
use crate::plan::{Decision, Planner};
use crate::port::StoreError;
use crate::rule::RuleViolation;
use crate::transfer::NewTransfer;
use crate::transfer::TransferStatus;

/// What a path read: its answer without a plan, or the requests to plan and the state to plan on.
pub(crate) enum Read<A> {
    Done(A),
    Plan(Vec<Request>, State),
}

/// What a path makes of its plan's steps.
pub(crate) enum Decided<A> {
    /// Answered without writing (a replay, a conflict, nothing to do now).
    Answer(A),
    /// Read again at once (a plan on cached state that would refuse).
    ReadAgain,
    /// Write these.
    Write(Vec<Step>),
}

/// What comes after a write.
pub(crate) enum Next<A> {
    Done(A),
    /// Read and plan again at once: the path progressed (its budget starts again).
    Again,
    /// The write met another writer: pause within the budget, then read and plan again.
    Contended,
}

#[async_trait]
pub(crate) trait Path: Send {
    type Answer: Send;

    async fn read<B: Book + ?Sized>(
        &mut self,
        book: &B,
        tenant: &TenantId,
        now: OffsetDateTime,
    ) -> Result<Read<Self::Answer>, StoreError>;

    /// The accounts the path writes, as far as it knows them before its first read (a post or a
    /// reversal learns its accounts from what it acts on).
    fn accounts(&self) -> Vec<AccountId> {
        Vec::new()
    }

    /// The expiries of holds this path's read found due were written: its answer, if that is all
    /// it was for (`None`: read again).
    fn expired(&mut self) -> Option<Self::Answer> {
        None
    }

    fn decided<B: Book + ?Sized>(
        &mut self,
        book: &B,
        tenant: &TenantId,
        state: &State,
        steps: Vec<Step>,
        now: OffsetDateTime,
    ) -> Result<Decided<Self::Answer>, StoreError>;

    /// A batch's cursor, for the write to advance.
    fn progress(&mut self) -> Option<&mut super::book::Progress> {
        None
    }

    /// When the path must stop (checked between writes): it then answers as if its budget ran out.
    fn until(&self) -> Option<std::time::Instant> {
        None
    }

    fn written<B: Book + ?Sized>(
        &mut self,
        book: &B,
        tenant: &TenantId,
        steps: &[Step],
        planner: &Planner,
        written: Written,
    ) -> Next<Self::Answer>;

    /// What the path answers when its budget runs out.
    fn gave_up(self) -> Result<Self::Answer, StoreError>;
}

pub(crate) async fn run<B: Book, P: Path>(
    book: &B,
    tenant: &TenantId,
    mut path: P,
    asked_at: OffsetDateTime,
) -> Result<P::Answer, StoreError> {
    let mut contention = Contention::start();
    let started = std::time::Instant::now();
    // Each try, read to write, is made in this store's turn at the accounts the path writes (those
    // it named, then those its last read found): requests of one store (a local server's; a Lambda
    // container serves one at a time) wait for each other instead of racing writes that all but
    // one lose. Across stores, losers pause (`Contention`). A path that progressed and goes again
    // at once keeps its turn: a gather of a hot account's funds is then spent by the request that
    // gathered them, not gathered away by the next in turn.
    let mut writes = path.accounts();
    let mut kept = None;
    loop {
        let turn = match kept.take() {
            Some(turn) => turn,
            None => book.take_turn(tenant, &writes).await,
        };
        // The request's clock moves on while it is redone: each decision is made at the instant it
        // is made (a post redone past its hold's expiry finds the hold expired), not at the
        // instant the request came in.
        let now = asked_at + started.elapsed();
        let try_started = std::time::Instant::now();
        let (requests, state) = match path.read(book, tenant, now).await? {
            Read::Done(answer) => return Ok(answer),
            Read::Plan(requests, state) => (requests, state),
        };
        writes = state.accounts.iter().map(|a| a.id.clone()).collect();
        // Whoever first meets a hold pending past its time writes its expiry, before anything is
        // decided on it: nobody is told "expired" before it is durable.
        let next = match expire_due(book, tenant, &state, now).await? {
            Some(written) if written.cancelled => Next::Contended,
            Some(_) => path.expired().map_or(Next::Again, Next::Done),
            None => {
                let (steps, planner) = plan(&state, &requests, now, book.correlation().as_deref());
                let mut steps = steps;
                let released = match release_before_refusing(book, tenant, &state, &steps, now).await? {
                    Some(written) if written.cancelled => Some(Next::Contended),
                    Some(_) => Some(Next::Again),
                    None => match gather_before_refusing(book, tenant, &state, &mut steps, &planner).await? {
                        Some(true) => Some(Next::Again),
                        Some(false) => Some(Next::Contended),
                        None => None,
                    },
                };
                match released {
                    Some(next) => next,
                    None => match path.decided(book, tenant, &state, steps, now)? {
                        Decided::Answer(answer) => Next::Done(answer),
                        Decided::ReadAgain => Next::Again,
                        Decided::Write(steps) => {
                            let mut versions = state.versions();
                            let written = book.write(tenant, &steps, &mut versions, path.progress()).await?;
                            debug_assert!(written.steps <= steps.len());
                            path.written(book, tenant, &steps, &planner, written)
                        }
                    },
                }
            }
        };
        match next {
            Next::Again => kept = Some(turn),
            _ => drop(turn),
        }
        contention.timed(try_started.elapsed());
        // A try on the accounts moves their level: up by a loss, down by a landing.
        match next {
            Next::Contended => book.note_try(tenant, &writes, false),
            Next::Done(_) => book.note_try(tenant, &writes, true),
            Next::Again => {}
        }
        let time_up = path.until().is_some_and(|until| std::time::Instant::now() >= until);
        match next {
            Next::Done(answer) => return Ok(answer),
            _ if time_up => return path.gave_up(),
            Next::Again => contention.progressed(),
            Next::Contended => match contention.pause_at(book.contention_level(tenant, &writes)) {
                Some(pause) => book.pause(pause).await,
                None => return path.gave_up(),
            },
        }
    }
}

/// Writes the expiry of every hold in `state` that is pending past its time at `now`. `None` if
/// none is due; otherwise how far the write got.
pub(crate) async fn expire_due<B: Book + ?Sized>(
    book: &B,
    tenant: &TenantId,
    state: &State,
    now: OffsetDateTime,
) -> Result<Option<Written>, StoreError> {
    let mut planner = Planner::new(state.accounts.iter().cloned(), now);
    let steps: Vec<Step> = state.stored().filter_map(|hold| planner.expire(hold)).map(Step::alone).collect();
    if steps.is_empty() {
        return Ok(None);
    }
    book.write(tenant, &steps, &mut state.versions(), None).await.map(Some)
}

/// The most holds one look at accounts' listings releases: a refusal made again after them looks
/// again.
pub(crate) const RELEASE_AT_ONCE: usize = 100;

/// The accounts with something pending whose pending amounts a refusal among `steps` counts.
fn pending_counted(state: &State, steps: &[Step]) -> Vec<AccountId> {
    let mut accounts: Vec<AccountId> = steps
        .iter()
        .filter_map(|step| match &step.decision {
            Decision::Reject(transfer) => match &transfer.status {
                TransferStatus::Rejected { reason } => reason.counts_pending_of(),
                _ => None,
            },
            _ => None,
        })
        // A hot account's holds are on its main shard, whichever shard refused.
        .filter(|id| {
            state.accounts.iter().any(|a| &a.id == *id && (a.balances.holds_pending() || a.is_sharded()))
        })
        .cloned()
        .collect();
    accounts.sort();
    accounts.dedup();
    accounts
}

/// Before refusals among `steps` that count pending amounts stand: releases the holds listed due
/// at `now` in those accounts' listings. `None` if there was nothing to release (the refusals
/// stand); otherwise how far the write of the expiries got (plan again).
async fn release_before_refusing<B: Book + ?Sized>(
    book: &B,
    tenant: &TenantId,
    state: &State,
    steps: &[Step],
    now: OffsetDateTime,
) -> Result<Option<Written>, StoreError> {
    let accounts = pending_counted(state, steps);
    if accounts.is_empty() {
        return Ok(None);
    }
    let due = book.overdue_holds(tenant, &accounts, now.unix_timestamp(), RELEASE_AT_ONCE).await?;
    let (holds, resolved) = overdue_state(book, tenant, &due).await?;
    for listed in resolved {
        book.unlist(listed).await?;
    }
    expire_due(book, tenant, &holds, now).await
}

/// Before a refusal for want of funds on a shard of a hot account (`crate::shard`) stands:
/// gathers what the account's other shards have to spare into the shard the plan read. `Some`:
/// a gather was written (`true`, plan again) or met another write (`false`). `None`: nothing to
/// gather; each such refusal then stands only if the other shards are still as read, with nothing
/// to spare (`Step::shards_checked`), so the whole account was short at one instant.
async fn gather_before_refusing<B: Book + ?Sized>(
    book: &B,
    tenant: &TenantId,
    state: &State,
    steps: &mut [Step],
    planner: &Planner,
) -> Result<Option<bool>, StoreError> {
    let short = |step: &Step| match &step.decision {
        Decision::Reject(transfer) => match &transfer.status {
            TransferStatus::Rejected { reason: RuleViolation::InsufficientFunds { account_id } } => {
                let view = state.accounts.iter().find(|a| &a.id == account_id)?;
                let amount = transfer.movement.as_ref().map_or(0, |m| i128::from(m.amount.get()));
                view.is_sharded().then(|| (view.clone(), amount))
            }
            _ => None,
        },
        _ => None,
    };
    let mut gathered: HashMap<AccountId, Vec<crate::account::AccountBalance>> = HashMap::new();
    for step in steps.iter_mut() {
        let Some((view, amount)) = short(step) else { continue };
        if !gathered.contains_key(&view.id) {
            let left = planner.account(&view.id).and_then(|a| a.headroom()).unwrap_or(0);
            let shards = book.read_shards(tenant, &view).await?;
            if let Some(moves) = crate::escrow::gather(&shards, view.shard, (amount - left).max(1)) {
                return book.rebalance(tenant, &moves).await.map(Some);
            }
            gathered.insert(view.id.clone(), shards);
        }
        let others = gathered[&view.id].iter().filter(|s| s.shard != view.shard).cloned();
        step.shards_checked = others.collect();
    }
    Ok(None)
}

/// Each of `accounts` in `state` read from a shard other than its main one, read again from its
/// main shard: where a hot account's holds are made and resolved (`crate::shard`).
async fn on_main<B: Book + ?Sized>(
    book: &B,
    tenant: &TenantId,
    state: &mut State,
    accounts: &HashSet<AccountId>,
) -> Result<(), StoreError> {
    let elsewhere: Vec<AccountId> = state
        .accounts
        .iter()
        .filter(|a| a.shard != 0 && accounts.contains(&a.id))
        .map(|a| a.id.clone())
        .collect();
    if elsewhere.is_empty() {
        return Ok(());
    }
    let main = book.read_main(tenant, &elsewhere).await?;
    state.accounts.retain(|a| !elsewhere.contains(&a.id));
    state.accounts.extend(main);
    Ok(())
}

/// The accounts `request` moves money between if it is a hold.
fn hold_accounts(request: &NewTransfer) -> impl Iterator<Item = AccountId> + '_ {
    let movement = request.kind.movement().filter(|_| request.kind.is_hold());
    movement.into_iter().flat_map(|m| [m.debit_account_id.clone(), m.credit_account_id.clone()])
}

/// The holds `due` names that are still pending, with every account they hold money in, read at
/// one instant; and the listings of those resolved meanwhile (to remove).
pub(crate) async fn overdue_state<'d, B: Book + ?Sized>(
    book: &B,
    tenant: &TenantId,
    due: &'d [DueHold],
) -> Result<(State, Vec<&'d DueHold>), StoreError> {
    if due.is_empty() {
        return Ok((State::default(), Vec::new()));
    }
    let ids: Vec<TransferId> = due.iter().map(|d| d.transfer.clone()).collect();
    let mut accounts: Vec<AccountId> = due.iter().flat_map(|d| d.accounts.iter().cloned()).collect();
    accounts.sort();
    accounts.dedup();
    let mut state = book.read(tenant, &ids, &accounts).await?;
    on_main(book, tenant, &mut state, &accounts.iter().cloned().collect()).await?;
    let mut resolved = Vec::new();
    for listed in due {
        let pending = state
            .transfers
            .get(&listed.transfer)
            .is_some_and(|t| t.transfer.status == TransferStatus::Pending);
        if !pending {
            state.transfers.remove(&listed.transfer);
            resolved.push(listed);
        }
    }
    Ok((state, resolved))
}

/// Reads what `transfers` need, given what their ids hold already (`known`): their ids (if
/// `with_ids`), the transfers their posts, voids and reversals act on, and every account these
/// move: a second read only for the accounts of the transfers acted on, which the first tells.
pub(crate) async fn read_state<B: Book + ?Sized>(
    book: &B,
    tenant: &TenantId,
    transfers: &[NewTransfer],
    with_ids: bool,
    known: HashMap<TransferId, StoredTransfer>,
) -> Result<State, StoreError> {
    let (mut ids, mut accounts) = (Vec::new(), Vec::new());
    let (mut seen_ids, mut seen_accounts): (HashSet<TransferId>, HashSet<AccountId>) =
        (known.keys().cloned().collect(), HashSet::new());
    let mut account = |id: &AccountId, accounts: &mut Vec<AccountId>| {
        if seen_accounts.insert(id.clone()) {
            accounts.push(id.clone());
        }
    };
    for t in transfers {
        let own = with_ids.then_some(&t.id);
        for id in own.into_iter().chain(t.kind.acts_on()) {
            if seen_ids.insert(id.clone()) {
                ids.push(id.clone());
            }
        }
        if let Some(m) = t.kind.movement() {
            account(&m.debit_account_id, &mut accounts);
            account(&m.credit_account_id, &mut accounts);
        }
    }
    let mut state = book.read(tenant, &ids, &accounts).await?;
    state.transfers.extend(known);
    let mut acted_on = Vec::new();
    for stored in state.transfers.values() {
        if let Some(m) = &stored.transfer.movement {
            account(&m.debit_account_id, &mut acted_on);
            account(&m.credit_account_id, &mut acted_on);
        }
    }
    if !acted_on.is_empty() {
        let more = book.read(tenant, &[], &acted_on).await?;
        state.accounts.extend(more.accounts);
    }
    // Holds live on a hot account's main shard: those the transfers make, and those read.
    let read = state.transfers.values().map(|t| &t.transfer.request);
    let main: HashSet<AccountId> = transfers.iter().chain(read).flat_map(hold_accounts).collect();
    on_main(book, tenant, &mut state, &main).await?;
    Ok(state)
}
