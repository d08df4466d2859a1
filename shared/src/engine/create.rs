//! The synchronous path: a transfer (or a linked chain) decided and written while its client
//! waits, its ids new. One consistent read and ONE conditional write when nothing contends; with
//! both accounts' latest states in the store's cache, the write alone.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::book::{Book, Request, State, Step, Written};
use super::run::{Decided, Next, Path, Read, read_state};
use std::collections::HashMap;

use crate::account::{AccountBalance, AccountVersion};
use crate::error::LedgerError;
use crate::ids::{AccountId, TenantId};
use crate::plan::{Decision, Planner};
use crate::port::{Created, StoreError};
use crate::transfer::{NewTransfer, Transfer};

pub(crate) struct Create {
    requests: Vec<Request>,
    /// The versions the client saw of accounts (`If-Match`): the transfers are written only if
    /// each account is still at its version.
    expected: Vec<(AccountId, AccountVersion)>,
    /// Try the cached balances first (a single transfer, until they prove stale).
    use_cache: bool,
    /// The state being planned came from the cache.
    from_cache: bool,
    /// A try has been written: from then on, cached state is what this request read or was told,
    /// not what the container knew before it.
    tried: bool,
    /// Every shard of each hot account `expected` names (`crate::shard`), read after the state:
    /// its version is the whole account's, and the write stands only on all of them.
    whole: HashMap<AccountId, Vec<AccountBalance>>,
}

impl Create {
    pub(crate) fn new(transfers: Vec<NewTransfer>) -> Self {
        Self::expecting(transfers, Vec::new())
    }

    pub(crate) fn expecting(transfers: Vec<NewTransfer>, expected: Vec<(AccountId, AccountVersion)>) -> Self {
        let use_cache = transfers.len() == 1;
        let requests = transfers.into_iter().map(|transfer| Request { transfer, owner: None }).collect();
        Self { requests, expected, use_cache, from_cache: false, tried: false, whole: HashMap::new() }
    }

    /// Both accounts' cached states, as a state that has not read the transfer id (its write puts
    /// the transfer only if the id is new). A post, void or reversal names its accounts through
    /// the transfer it acts on, which only a read finds: never cached.
    fn cached_state<B: Book + ?Sized>(&self, book: &B, tenant: &TenantId) -> Option<State> {
        let kind = &self.requests[0].transfer.kind;
        let movement = kind.movement()?;
        let debit = book.cached_balance(tenant, &movement.debit_account_id)?;
        let credit = book.cached_balance(tenant, &movement.credit_account_id)?;
        // A hold is made on a hot account's main shard (`crate::shard`): another shard's cached
        // state will not do.
        if kind.is_hold() && (debit.shard != 0 || credit.shard != 0) {
            return None;
        }
        Some(State { accounts: vec![debit, credit], ..State::default() })
    }
}

#[async_trait]
impl Path for Create {
    type Answer = Created<Vec<Transfer>>;

    fn accounts(&self) -> Vec<AccountId> {
        let movements = self.requests.iter().filter_map(|r| r.transfer.kind.movement());
        movements.flat_map(|m| [m.debit_account_id.clone(), m.credit_account_id.clone()]).collect()
    }

    async fn read<B: Book + ?Sized>(
        &mut self,
        book: &B,
        tenant: &TenantId,
        _now: OffsetDateTime,
    ) -> Result<Read<Self::Answer>, StoreError> {
        let cached = if self.use_cache { self.cached_state(book, tenant) } else { None };
        // A hot account named by the client's version is read whole, never from the cache.
        let named_hot = |state: &State| {
            state.accounts.iter().any(|a| a.is_sharded() && self.expected.iter().any(|(id, _)| *id == a.id))
        };
        let cached = cached.filter(|state| !named_hot(state));
        self.from_cache = cached.is_some();
        let state = match cached {
            Some(state) => state,
            None => {
                let transfers: Vec<NewTransfer> = self.requests.iter().map(|r| r.transfer.clone()).collect();
                read_state(book, tenant, &transfers, true, Default::default()).await?
            }
        };
        self.whole.clear();
        for view in state.accounts.iter().filter(|a| a.is_sharded()) {
            if self.expected.iter().any(|(id, _)| *id == view.id) {
                let mut shards = book.read_shards(tenant, view).await?;
                // The shard the plan writes, as the plan read it.
                shards.retain(|s| s.shard != view.shard);
                shards.push(view.clone());
                self.whole.insert(view.id.clone(), shards);
            }
        }
        Ok(Read::Plan(self.requests.clone(), state))
    }

    fn decided<B: Book + ?Sized>(
        &mut self,
        book: &B,
        tenant: &TenantId,
        state: &State,
        steps: Vec<Step>,
        now: OffsetDateTime,
    ) -> Result<Decided<Self::Answer>, StoreError> {
        if let Some(answer) = held_answer(&steps, now) {
            return answer.map(Decided::Answer);
        }
        // The write is conditioned on the versions read: if they are the client's, so is the write
        // (a hot account's version is its shards' together).
        let current = |id: &AccountId| match self.whole.get(id) {
            Some(shards) => Some(crate::escrow::merged(shards).version()),
            None => state.accounts.iter().find(|a| &a.id == id).map(|a| a.version()),
        };
        if let Some((id, _)) = self.expected.iter().find(|(id, version)| current(id) != Some(*version)) {
            if self.from_cache {
                self.use_cache = false;
                return Ok(Decided::ReadAgain);
            }
            return Err(LedgerError::PreconditionFailed { what: "account", id: id.to_string() }.into());
        }
        // A refusal is permanent: never decided on cached state.
        if self.from_cache && steps.iter().any(|s| matches!(s.decision, Decision::Reject(_))) {
            self.use_cache = false;
            return Ok(Decided::ReadAgain);
        }
        if !self.from_cache {
            for account in &state.accounts {
                book.cache_balance(tenant, account);
            }
        }
        // Each step stands only if the other shards of the hot accounts named are still as read.
        let mut steps = steps;
        for (id, shards) in &self.whole {
            let view = state.accounts.iter().find(|a| &a.id == id).map(|a| a.shard);
            let others = shards.iter().filter(|s| Some(s.shard) != view);
            for step in &mut steps {
                step.shards_checked.extend(others.clone().cloned());
            }
        }
        Ok(Decided::Write(steps))
    }

    fn written<B: Book + ?Sized>(
        &mut self,
        book: &B,
        tenant: &TenantId,
        steps: &[Step],
        planner: &Planner,
        written: Written,
    ) -> Next<Self::Answer> {
        let accounts = steps
            .iter()
            .filter_map(|s| s.decision.outcome()?.movement.as_ref())
            .flat_map(|m| [&m.debit_account_id, &m.credit_account_id]);
        let first_try = !std::mem::replace(&mut self.tried, true);
        if written.cancelled && !written.found.is_empty() {
            // Only accounts' versions cancelled it, and the store said how they stand: the retry
            // plans on them without reading them again, and the accounts whose versions held stay
            // cached as they were.
            for found in &written.found {
                book.cache_balance(tenant, found);
            }
            // A first try on what the container knew before this request lost to writes it did
            // not see (another container's, as every Lambda instance's of a shared account): stale
            // knowledge, not a race, so the retry goes at once and no level moves. Losses on what
            // this request read or was told are contention.
            if first_try && self.from_cache {
                return Next::Again;
            }
            return Next::Contended;
        }
        if written.cancelled {
            // An account moved, an id was taken, or another write held an item.
            for id in accounts {
                book.forget_balance(tenant, id);
            }
            if self.from_cache {
                self.use_cache = false;
                return Next::Again;
            }
            return Next::Contended;
        }
        for account in accounts.filter_map(|id| planner.account(id)) {
            book.cache_balance(tenant, account);
        }
        let outcomes: Vec<Transfer> = steps.iter().filter_map(|s| s.decision.outcome().cloned()).collect();
        debug_assert_eq!(outcomes.len(), steps.len(), "a written step has an outcome");
        Next::Done(Created::New(outcomes))
    }

    fn gave_up(self) -> Result<Self::Answer, StoreError> {
        let first = &self.requests[0].transfer.id;
        Err(StoreError::Unavailable(format!("accounts of transfer {first} stayed contended")))
    }
}

/// The answer when ids of the request hold transfers already, so nothing is to be written: every
/// one of them replays (as it stands at `now`), or the request conflicts. `None`: all are new.
fn held_answer(steps: &[Step], now: OffsetDateTime) -> Option<Result<Created<Vec<Transfer>>, StoreError>> {
    let name = |i: usize, field: &str| {
        if steps.len() == 1 { field.to_owned() } else { format!("transfers[{i}].{field}") }
    };
    let mut replays = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        match &step.decision {
            Decision::Conflict { fields, .. } => {
                let fields = fields.iter().map(|f| name(i, f)).collect();
                return Some(Err(LedgerError::IdempotencyConflict { fields }.into()));
            }
            Decision::Replay(existing) => replays.push(existing.clone().observed(now)),
            Decision::Commit { .. } | Decision::Reject(_) | Decision::Expire { .. } => {}
        }
    }
    match replays.len() {
        0 => None,
        n if n == steps.len() => Some(Ok(Created::Replayed(replays))),
        // Some ids hold transfers decided apart from this chain: it cannot apply as asked.
        _ => {
            let fields = steps
                .iter()
                .enumerate()
                .filter(|(_, s)| matches!(s.decision, Decision::Replay(_)))
                .map(|(i, _)| name(i, "id"))
                .collect();
            Some(Err(LedgerError::IdempotencyConflict { fields }.into()))
        }
    }
}
