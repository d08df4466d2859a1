//! Turns at accounts among the requests of one store (a local server's: a Lambda container serves
//! one request at a time): a request tries only once no other request of the store is trying, or
//! waited first for, any account it writes, instead of racing conditional writes that all but one
//! lose. Across stores nothing changes: writers there contend and back off
//! (`ledger::engine::Contention`). Correctness never rests on a turn: every write stays
//! conditioned on the versions it read.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ledger::engine::{CONTENTION_BUDGET, Turn};
use ledger::{AccountId, TenantId};
use tokio::sync::Notify;

/// The longest wait for a turn: past it, the request tries without one (and may meet a writer),
/// with half its contention budget left. A queue of a hundred requests at 20 ms a try is 2 s long.
const LONGEST_WAIT: Duration = CONTENTION_BUDGET.saturating_sub(Duration::from_secs(4));

type Key = (TenantId, AccountId);

#[derive(Debug, Default)]
pub(crate) struct Turns {
    queue: Mutex<Queue>,
    /// Told each time a turn ends or a request stops waiting.
    moved: Notify,
}

#[derive(Debug, Default)]
struct Queue {
    /// The accounts a request is trying now.
    busy: HashSet<Key>,
    /// The requests waiting, by ticket (their order of arrival), and the accounts each waits for.
    waiting: BTreeMap<u64, Vec<Key>>,
    next_ticket: u64,
}

impl Queue {
    /// Whether the request holding `ticket` may take its turn at `keys`: none of them is being
    /// tried, and no request that came earlier waits for any of them (first come, first served).
    fn admits(&self, ticket: u64, keys: &[Key]) -> bool {
        let free = keys.iter().all(|key| !self.busy.contains(key));
        let mut earlier = self.waiting.range(..ticket).map(|(_, theirs)| theirs);
        free && !earlier.any(|theirs| theirs.iter().any(|key| keys.contains(key)))
    }
}

impl Turns {
    /// Waits for the turn at all of `accounts`, then takes them at once. A request never holds
    /// some while it waits for others (so no two wait for each other), requests over disjoint
    /// accounts try side by side, and none overtakes an earlier request for one of its accounts.
    pub(crate) async fn take(
        self: &Arc<Self>,
        tenant: &TenantId,
        accounts: impl Iterator<Item = &AccountId>,
    ) -> Turn {
        self.take_within(tenant, accounts, LONGEST_WAIT).await
    }

    async fn take_within(
        self: &Arc<Self>,
        tenant: &TenantId,
        accounts: impl Iterator<Item = &AccountId>,
        longest_wait: Duration,
    ) -> Turn {
        let mut keys: Vec<Key> = accounts.map(|a| (tenant.clone(), a.clone())).collect();
        keys.sort();
        keys.dedup();
        if keys.is_empty() {
            return Turn::default();
        }
        let until = tokio::time::Instant::now() + longest_wait;
        let waiting = Waiting::join(self, keys.clone());
        loop {
            // Listening before looking: a move in between is not missed.
            let moved = self.moved.notified();
            tokio::pin!(moved);
            moved.as_mut().enable();
            {
                let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                if queue.admits(waiting.ticket, &keys) {
                    queue.waiting.remove(&waiting.ticket);
                    queue.busy.extend(keys.iter().cloned());
                    let accounts = keys.len();
                    return Turn::holding(accounts, Box::new(Held { turns: self.clone(), keys }));
                }
            }
            if tokio::time::timeout_at(until, moved).await.is_err() {
                return Turn::default();
            }
        }
    }
}

/// A request's place in the queue, given up when it is dropped (it was admitted, stopped waiting,
/// or its request ended), so that no later request waits behind it.
struct Waiting {
    turns: Arc<Turns>,
    ticket: u64,
}

impl Waiting {
    fn join(turns: &Arc<Turns>, keys: Vec<Key>) -> Self {
        let mut queue = turns.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let ticket = queue.next_ticket;
        queue.next_ticket += 1;
        queue.waiting.insert(ticket, keys);
        Self { turns: turns.clone(), ticket }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut queue = self.turns.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let left = queue.waiting.remove(&self.ticket).is_some();
        drop(queue);
        if left {
            self.turns.moved.notify_waiters();
        }
    }
}

/// The accounts of one turn, free again when it is dropped.
struct Held {
    turns: Arc<Turns>,
    keys: Vec<Key>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut queue = self.turns.queue.lock().unwrap_or_else(PoisonError::into_inner);
        for key in &self.keys {
            queue.busy.remove(key);
        }
        drop(queue);
        self.turns.moved.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<AccountId> {
        names.iter().map(|n| AccountId::parse(*n).unwrap()).collect()
    }

    #[tokio::test]
    async fn requests_wait_their_turn_at_shared_accounts_first_come_first_served() {
        let turns = Arc::new(Turns::default());
        let tenant = TenantId::parse("acme").unwrap();
        let wait = Duration::from_millis(20);
        let first = turns.take(&tenant, ids(&["bob", "alice"]).iter()).await;
        assert_eq!(first.accounts(), 2);
        // Another tenant's alice, and carol, are free.
        let other = TenantId::parse("globex").unwrap();
        assert_eq!(turns.take(&other, ids(&["alice"]).iter()).await.accounts(), 1);
        assert_eq!(turns.take(&tenant, ids(&["carol", "carol"]).iter()).await.accounts(), 1);
        // alice is being tried: a request for alice and carol waits, holding neither.
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let waiting = {
            let (turns, tenant) = (turns.clone(), tenant.clone());
            tokio::spawn(async move {
                let turn = turns.take(&tenant, ids(&["alice", "carol"]).iter()).await;
                tx.send(turn.accounts()).unwrap();
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(rx.try_recv().is_err(), "alice is still being tried");
        // carol is free, but the request that waited first for it goes first; dave is free.
        assert_eq!(turns.take_within(&tenant, ids(&["carol"]).iter(), wait).await.accounts(), 0);
        assert_eq!(turns.take_within(&tenant, ids(&["dave"]).iter(), wait).await.accounts(), 1);
        drop(first);
        waiting.await.unwrap();
        assert_eq!(rx.await.unwrap(), 2);
        assert_eq!(turns.take(&tenant, [].iter()).await.accounts(), 0);
        assert!(turns.queue.lock().unwrap().busy.is_empty(), "every turn ended");
    }

    #[tokio::test]
    async fn a_request_that_stops_waiting_leaves_the_queue() {
        let turns = Arc::new(Turns::default());
        let tenant = TenantId::parse("acme").unwrap();
        let wait = Duration::from_millis(20);
        let stuck = turns.take(&tenant, ids(&["alice"]).iter()).await;
        // Past its wait, a request tries without a turn; bob was never held for it.
        assert_eq!(turns.take_within(&tenant, ids(&["alice", "bob"]).iter(), wait).await.accounts(), 0);
        assert_eq!(turns.take_within(&tenant, ids(&["bob"]).iter(), wait).await.accounts(), 1);
        // A request dropped while it waits (its client went away) holds up no one after it.
        let dropped = tokio::time::timeout(wait, turns.take(&tenant, ids(&["alice", "bob"]).iter())).await;
        assert!(dropped.is_err());
        assert_eq!(turns.take_within(&tenant, ids(&["bob"]).iter(), wait).await.accounts(), 1);
        drop(stuck);
        assert_eq!(turns.take_within(&tenant, ids(&["alice"]).iter(), wait).await.accounts(), 1);
        assert!(turns.queue.lock().unwrap().waiting.is_empty());
    }
}
