//! The store as the engine sees it ([`Book`]), and what passes between them: what a plan reads
//! ([`State`]), what it decides ([`Step`]s), and how far a write got ([`Written`]).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::contention::Level;
use crate::account::{AccountBalance, AccountVersion};
use crate::batch::{Batch, Owner};
use crate::escrow::Moves;
use crate::ids::{AccountId, BatchId, TenantId, TransferId};
use crate::plan::{Decision, Planner};
use crate::port::{BatchStatus, StoreError};
use crate::transfer::{NewTransfer, Transfer, TransferStatus};

/// What a store does for the engine: read what a plan needs at one instant, and write a plan's
/// steps in order, each write all-or-nothing and conditioned on exactly what was read, so that a
/// write over anything that moved meanwhile is cancelled whole. A store that implements it gets
/// the transfer paths of the port (`Transfers`, `Settlement`) from the one engine.
#[async_trait]
pub trait Book: Send + Sync {
    /// One consistent read of the transfers at `ids` and the balances of `accounts`: those that
    /// exist. An id or account may be named more than once.
    async fn read(
        &self,
        tenant: &TenantId,
        ids: &[TransferId],
        accounts: &[AccountId],
    ) -> Result<State, StoreError>;

    /// Writes `steps` in order, in as few all-or-nothing writes as the store's limits allow (a
    /// linked chain never cut), each one:
    /// - putting a transfer's record only if its id is still as read (absent, or the step's own
    ///   queued claim), so no id settles twice;
    /// - moving each account's balance (once, as of its last entry in the write) only if its
    ///   version (entries and revision) is still the one in `versions`, which each write moves on; a rejection only if
    ///   the accounts it names are still at theirs (`Decision::accounts`), and the transfer it
    ///   acted on still as read (`Step::acted_on`), unless this write writes them;
    /// - resolving a hold only if it is still `pending`, appending reversals only if the reversed
    ///   sum is still the one read;
    /// - listing a hold with a timeout by its expiry, in each of its accounts' listings (the
    ///   sweeper's listing is one of them); an expiry unlists it, a post or void leaves the
    ///   listings to whoever finds them due (`unlist`), so a chain resolving holds writes no more;
    /// - writing each change's event with the change;
    /// - with `progress`, moving the batch's cursor (and counts) over its steps only if it still
    ///   stands where it was read, and writing `batch.settled` with the batch's last.
    ///
    /// A cancelled write leaves the steps before it written and nothing of its own.
    async fn write(
        &self,
        tenant: &TenantId,
        steps: &[Step],
        versions: &mut HashMap<AccountId, AsRead>,
        progress: Option<&mut Progress>,
    ) -> Result<Written, StoreError>;

    /// The main shard (`crate::shard`) of each of `accounts` that exists: where a hot account's
    /// holds are made and resolved. A store without shards reads the accounts.
    async fn read_main(
        &self,
        tenant: &TenantId,
        accounts: &[AccountId],
    ) -> Result<Vec<AccountBalance>, StoreError> {
        Ok(self.read(tenant, &[], accounts).await?.accounts)
    }

    /// Every shard of the account `view` is one shard of, read consistently (a store without
    /// shards: the account).
    async fn read_shards(
        &self,
        tenant: &TenantId,
        view: &AccountBalance,
    ) -> Result<Vec<AccountBalance>, StoreError> {
        Ok(self.read(tenant, &[], std::slice::from_ref(&view.id)).await?.accounts)
    }

    /// Writes a gather (`crate::escrow::gather`): each shard's new `moved`, only if every shard it
    /// touches is still as read. Whether it landed (`false`: a shard moved meanwhile).
    async fn rebalance(&self, _tenant: &TenantId, _moves: &Moves) -> Result<bool, StoreError> {
        Err(StoreError::Unexpected("this store keeps no shards to rebalance".into()))
    }

    /// A batch's transfer ids in order, once it is accepted (`None` before).
    async fn batch_ids(
        &self,
        tenant: &TenantId,
        batch: &BatchId,
    ) -> Result<Option<Vec<TransferId>>, StoreError>;

    /// A batch's record and counts, read consistently: where its settlement stands.
    async fn batch_progress(&self, tenant: &TenantId, batch: &BatchId) -> Result<BatchStatus, StoreError>;

    /// At most `limit` of the holds listed as due from `from` to `to` (unix seconds, inclusive),
    /// across tenants, fairly: a share of each shard of the listing in turn, each shard holding
    /// some of the tenants, so a tenant with masses of holds due delays only those of its shard;
    /// and whether that is every listing due.
    async fn due_holds(&self, from: i64, to: i64, limit: usize) -> Result<(Vec<DueHold>, bool), StoreError>;

    /// At most `limit` of the holds listed as due by `at` (unix seconds) in the accounts' own
    /// listings, read consistently after the balances they hold money in: a hold whose pending
    /// amount a read balance counts is in them (or resolved since, which moved the balance).
    async fn overdue_holds(
        &self,
        tenant: &TenantId,
        accounts: &[AccountId],
        at: i64,
        limit: usize,
    ) -> Result<Vec<DueHold>, StoreError>;

    /// Removes the listings of a hold that was resolved without them.
    async fn unlist(&self, hold: &DueHold) -> Result<(), StoreError>;

    /// Until when (unix seconds) the sweeps have looked, if any sweep ran.
    async fn swept_until(&self) -> Result<Option<i64>, StoreError>;

    /// Moves the sweeps' mark to `to`, unless a later sweep moved it further.
    async fn advance_sweep(&self, to: i64) -> Result<(), StoreError>;

    /// Waits `pause` before redoing a write that met another (`Contention` chooses it).
    async fn pause(&self, pause: Duration);

    /// The id of the request the running work serves, recorded on what it writes.
    fn correlation(&self) -> Option<String> {
        None
    }

    /// The latest state of an account's balance this store saw, if it keeps one: a synchronous
    /// transfer between two such accounts goes straight to its write, conditioned on those
    /// versions (a stale one only fails the condition), and is never refused on them.
    fn cached_balance(&self, _tenant: &TenantId, _account: &AccountId) -> Option<AccountBalance> {
        None
    }

    /// Notes `balance` as the latest state seen of its account.
    fn cache_balance(&self, _tenant: &TenantId, _balance: &AccountBalance) {}

    /// Drops what is cached of `account`: a write over it was cancelled.
    fn forget_balance(&self, _tenant: &TenantId, _account: &AccountId) {}

    /// How contended `accounts` are, as this store saw, if it keeps track: the most contended
    /// one's level, which sets the pauses of a try that lost on them.
    fn contention_level(&self, _tenant: &TenantId, _accounts: &[AccountId]) -> Level {
        Level::default()
    }

    /// A try on `accounts` landed or lost: moves their levels (`Level::after`).
    fn note_try(&self, _tenant: &TenantId, _accounts: &[AccountId], _landed: bool) {}

    /// Waits for this store's turn at `accounts`: while the turn is held, no other request of the
    /// same store tries them (a store that keeps no turns gives one at once). Only scheduling:
    /// every write stays conditioned on what it read.
    async fn take_turn(&self, _tenant: &TenantId, _accounts: &[AccountId]) -> Turn {
        Turn::default()
    }
}

/// A request's turn at accounts (`Book::take_turn`), until it is dropped.
#[derive(Default)]
pub struct Turn {
    accounts: usize,
    _held: Option<Box<dyn Send>>,
}

impl Turn {
    /// A turn at `accounts` accounts, held until `held` is dropped.
    pub fn holding(accounts: usize, held: Box<dyn Send>) -> Self {
        Self { accounts, _held: Some(held) }
    }

    /// How many accounts the turn is at (none: the request tries without one).
    pub fn accounts(&self) -> usize {
        self.accounts
    }
}

/// A transfer as stored, with what the engine needs of its record: the submission that claimed it
/// (a queued transfer), and the request that queued it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredTransfer {
    pub transfer: Transfer,
    pub owner: Option<Owner>,
    pub correlation: Option<String>,
}

/// The inputs of a plan, read at one instant: the accounts that exist and what the ids hold.
#[derive(Clone, Debug, Default)]
pub struct State {
    pub accounts: Vec<AccountBalance>,
    pub transfers: HashMap<TransferId, StoredTransfer>,
}

impl State {
    /// What `request`'s id holds for it: another transfer (for the planner), or the request's own
    /// queued claim (for the write's condition); neither if the id is absent.
    fn held(&self, request: &Request) -> (Option<Transfer>, Option<Owner>) {
        let Some(stored) = self.transfers.get(&request.transfer.id) else { return (None, None) };
        let own = request.owner.is_some() && stored.owner == request.owner;
        if own && stored.transfer.status == TransferStatus::Queued {
            (None, request.owner.clone())
        } else {
            (Some(stored.transfer.clone()), None)
        }
    }

    /// The request that caused `request`: the one that queued it when its id holds a queued claim
    /// recording it, else `current`, the request being served.
    fn correlation(&self, request: &Request, current: Option<&str>) -> Option<String> {
        let queued = self.transfers.get(&request.transfer.id).and_then(|t| t.correlation.as_deref());
        queued.or(current).map(str::to_owned)
    }

    /// Every transfer read, as stored: where the planner finds the holds that posts and voids name
    /// and the transfers that reversals name.
    pub fn stored(&self) -> impl Iterator<Item = &Transfer> {
        self.transfers.values().map(|t| &t.transfer)
    }

    /// The versions the accounts were read at: what their balance writes are conditioned on.
    pub fn versions(&self) -> HashMap<AccountId, AsRead> {
        self.accounts.iter().map(|a| (a.id.clone(), AsRead::of(a))).collect()
    }
}

/// What a write of an account's balance is conditioned on: the version it was read at, and which
/// of a hot account's shards it is with the funds moved into it (which a gather moves).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AsRead {
    pub version: AccountVersion,
    pub shard: u16,
    /// The account has shards: a gather may move `moved`, so writes are conditioned on it.
    pub sharded: bool,
    pub moved: i128,
}

impl AsRead {
    pub fn of(balance: &AccountBalance) -> Self {
        Self {
            version: balance.version(),
            shard: balance.shard,
            sharded: balance.is_sharded(),
            moved: balance.moved,
        }
    }
}

/// One transfer to settle, and the queued claim it settles (`None`: a synchronous request, whose
/// id must be new).
#[derive(Clone, Debug)]
pub struct Request {
    pub transfer: NewTransfer,
    pub owner: Option<Owner>,
}

/// One decision and what its write is conditioned on.
#[derive(Clone, Debug)]
pub struct Step {
    pub decision: Decision,
    /// The request's own queued claim, if the id held it when read: the write replaces it only if
    /// it is still there. `None`: the id was absent, and is written only if it still is.
    pub claim: Option<Owner>,
    /// The request is linked to the next: the two go into the same write.
    pub linked: bool,
    /// The id of the request that caused this step (the one that queued it, for a queued claim),
    /// recorded on its event.
    pub correlation: Option<String>,
    /// For a refused post, void or reversal: the transfer it acted on, as read. The refusal stands
    /// only if that transfer is still as read (with its accounts, `Decision::accounts`): the two
    /// were read one after the other, and a serial order sees both at one instant.
    pub acted_on: Option<Transfer>,
    /// For a refusal for want of funds on a hot account: the account's other shards as read, each
    /// with nothing to spare. The refusal stands only if they are still so: then the whole
    /// account was short at one instant.
    pub shards_checked: Vec<AccountBalance>,
}

impl Step {
    /// A step with no claim, chain or request behind it (an expiry).
    pub fn alone(decision: Decision) -> Self {
        Step {
            decision,
            claim: None,
            linked: false,
            correlation: None,
            acted_on: None,
            shards_checked: Vec::new(),
        }
    }
}

/// Decides `requests` in order against `state`, each linked chain whole. `current`: the request
/// being served.
pub fn plan(
    state: &State,
    requests: &[Request],
    now: OffsetDateTime,
    current: Option<&str>,
) -> (Vec<Step>, Planner) {
    let mut planner = Planner::new(state.accounts.iter().cloned(), now).with_stored(state.stored().cloned());
    let mut steps = Vec::with_capacity(requests.len());
    let transfers: Vec<NewTransfer> = requests.iter().map(|r| r.transfer.clone()).collect();
    for chain in crate::linked::chains(&transfers) {
        let chain = &requests[chain];
        let held: Vec<_> = chain.iter().map(|r| state.held(r)).collect();
        let members: Vec<_> =
            chain.iter().zip(&held).map(|(r, (held, _))| (&r.transfer, held.as_ref())).collect();
        let decisions = match &members[..] {
            [(request, held)] => vec![planner.decide(request, *held)],
            _ => planner.decide_chain(&members),
        };
        for ((decision, (_, claim)), request) in decisions.into_iter().zip(held).zip(chain) {
            let correlation = state.correlation(request, current);
            let acted_on = matches!(decision, Decision::Reject(_))
                .then(|| request.transfer.kind.acts_on().and_then(|id| state.transfers.get(id)))
                .flatten()
                .map(|stored| stored.transfer.clone());
            steps.push(Step {
                decision,
                claim,
                linked: request.transfer.linked,
                correlation,
                acted_on,
                shards_checked: Vec::new(),
            });
        }
    }
    debug_assert_eq!(steps.len(), requests.len(), "one step a request");
    (steps, planner)
}

/// Where the linked chain that starts at step `start` ends (exclusive).
pub fn chain_end(steps: &[Step], start: usize) -> usize {
    steps[start..].iter().position(|s| !s.linked).map_or(steps.len(), |n| start + n + 1)
}

/// Each transfer `steps` record (committed or refused) that belongs to a linked chain of two or
/// more, with the chain's id: its first member's. A chain is never cut between writes, so the
/// steps of one write name whole chains.
pub fn chain_members(steps: &[Step]) -> Vec<(&Transfer, &TransferId)> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < steps.len() {
        let end = chain_end(steps, start);
        let chain = &steps[start..end];
        let recorded = || {
            chain.iter().filter_map(|s| match &s.decision {
                Decision::Commit { transfer, .. } | Decision::Reject(transfer) => Some(transfer),
                _ => None,
            })
        };
        if chain.len() > 1
            && let Some(first) = recorded().next()
        {
            let id = &first.request.id;
            out.extend(recorded().map(|t| (t, id)));
        }
        start = end;
    }
    out
}

/// A batch's cursor, advanced by each write of its steps.
#[derive(Clone, Debug)]
pub struct Progress {
    pub batch: BatchId,
    pub cursor: u64,
    /// The batch with its counts as of `cursor`: the write that settles its last transfer writes
    /// its `batch.settled` event with the final counts.
    pub batch_as_read: Batch,
    /// The instant of this settlement (the event's `created`).
    pub now: OffsetDateTime,
}

impl Progress {
    /// The batch as it stands once `steps` more are settled with these outcome counts, and its
    /// `batch.settled` event if that settles its last transfer.
    pub fn after(
        &self,
        tenant: &TenantId,
        steps: usize,
        counts: &std::collections::BTreeMap<String, u64>,
    ) -> (Batch, Option<crate::event::Event>) {
        let mut batch = self.batch_as_read.clone();
        batch.counts.settle(counts);
        let last = self.cursor + steps as u64 >= batch.counts.total;
        let event = last.then(|| crate::event::Event::batch_settled(tenant, &batch, self.now));
        (batch, event)
    }
}

/// How far a write got.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Steps durably written (a prefix of those given).
    pub steps: usize,
    /// A write was cancelled: the rest must be read and planned again.
    pub cancelled: bool,
    /// When only accounts' versions cancelled it: those accounts as they stood then (a store that
    /// can tell). A retry may plan on them without reading them again.
    pub found: Vec<AccountBalance>,
}

impl Written {
    pub fn landed(steps: usize) -> Self {
        Self { steps, ..Self::default() }
    }

    pub fn cancelled_after(steps: usize) -> Self {
        Self { steps, cancelled: true, found: Vec::new() }
    }
}

/// A hold listed by its expiry: the sweeper's work, and what a plan releases before it refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueHold {
    pub tenant: TenantId,
    pub transfer: TransferId,
    /// Its expiry, unix seconds.
    pub at: i64,
    /// The accounts whose listings name it (its debit's and credit's; none for a listing from
    /// before accounts had listings).
    pub accounts: Vec<AccountId>,
}

impl DueHold {
    /// The listing of `transfer`, if it is a hold with a timeout.
    pub fn of(tenant: &TenantId, transfer: &Transfer) -> Option<Self> {
        let at = transfer.expires_at()?.unix_timestamp();
        let accounts = transfer
            .movement
            .as_ref()
            .map(|m| vec![m.debit_account_id.clone(), m.credit_account_id.clone()])
            .unwrap_or_default();
        Some(Self { tenant: tenant.clone(), transfer: transfer.request.id.clone(), at, accounts })
    }
}

/// The outcome counts of `steps` (an outcome code and how many), as a batch counts them.
pub fn outcome_counts<'s>(
    steps: impl IntoIterator<Item = &'s Step>,
) -> std::collections::BTreeMap<String, u64> {
    let mut counts = std::collections::BTreeMap::new();
    for step in steps {
        *counts.entry(step.decision.outcome_code().to_owned()).or_default() += 1;
    }
    counts
}
