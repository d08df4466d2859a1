//! The latest state of accounts' balance items this store has seen (a warm container's memory), so
//! that a transfer between accounts it wrote a moment ago can go straight to its conditional write:
//! one request instead of a read and a write.
//!
//! Never trusted for a decision: the write is conditioned on the cached version (`entry_count`,
//! which every change of a balance item increments), so a stale entry makes it fail and the
//! transfer is redone from a fresh read; and a rule that refuses a transfer is only ever applied to
//! freshly read state, since a refusal is permanent.
//!
//! It also keeps how contended each account was lately (`ledger::engine::Level`): what sets the
//! pauses of any request that loses a write on it, so that a crowd of writers of one account
//! spreads out from its first loss instead of each learning the crowd alone.

use std::collections::HashMap;
use std::sync::Mutex;

use ledger::engine::Level;
use ledger::{AccountBalance, AccountId, TenantId};
use rand::Rng;

use crate::correlation::current_correlation;

/// Entries kept at most: about 200 bytes each.
const CAPACITY: usize = 10_000;

/// How long a request holds its container's shard of a hot account without landing a write:
/// past it, the request is taken to have ended without a word (an error), and the shard is free.
const HOLD: std::time::Duration = std::time::Duration::from_secs(2);

/// A hot account's shard this container writes, the request writing it now, and the shards the
/// container's other requests write meanwhile.
#[derive(Debug)]
struct Sticky {
    shard: u16,
    spread: u16,
    holder: Option<(String, std::time::Instant)>,
    others: HashMap<String, (u16, std::time::Instant)>,
}

impl Sticky {
    fn new(spread: u16) -> Self {
        Self { shard: rand::rng().random_range(0..spread), spread, holder: None, others: HashMap::new() }
    }

    /// A shard no request of the container writes now, if one is left (else any but its own).
    fn draw(&self) -> u16 {
        let busy: Vec<u16> =
            std::iter::once(self.shard).chain(self.others.values().map(|(s, _)| *s)).collect();
        let free: Vec<u16> = (0..self.spread).filter(|s| !busy.contains(s)).collect();
        match free.len() {
            0 => (self.shard + rand::rng().random_range(1..self.spread)) % self.spread,
            n => free[rand::rng().random_range(0..n)],
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct BalanceCache {
    /// The latest state seen of each shard (0 for an account that is not hot).
    entries: Mutex<HashMap<(TenantId, AccountId, u16), AccountBalance>>,
    /// The shard of each hot account this container writes (`ledger::shard`): drawn when the
    /// account is first seen hot, drawn again when a write on it is cancelled, so that containers
    /// spread over the shards, move off a contended one, and find their shard's state in their
    /// cache. While one request writes it, each of the container's other requests (a local
    /// server's: a Lambda container serves one at a time) writes a shard of its own, read fresh.
    shards: Mutex<HashMap<(TenantId, AccountId), Sticky>>,
    levels: Mutex<HashMap<(TenantId, AccountId), Level>>,
}

impl BalanceCache {
    /// The state of `account` on the shard this request writes, if the container keeps it: the
    /// container's own shard (another's it reads fresh).
    pub(crate) fn get(&self, tenant: &TenantId, account: &AccountId) -> Option<AccountBalance> {
        let (shard, own) = self.claim(tenant, account);
        if !own {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(&(tenant.clone(), account.clone(), shard)).cloned()
    }

    /// The shard of `account` the running request writes: 0 until the account is seen hot.
    pub(crate) fn shard(&self, tenant: &TenantId, account: &AccountId) -> u16 {
        self.claim(tenant, account).0
    }

    /// The shard of `account` the running request writes, and whether it is the container's own:
    /// the container's shard unless another request holds it; then the one this request drew
    /// (drawn once, among those no request of the container writes).
    fn claim(&self, tenant: &TenantId, account: &AccountId) -> (u16, bool) {
        let me = current_correlation();
        let mut shards = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        let Some(sticky) = shards.get_mut(&(tenant.clone(), account.clone())) else { return (0, true) };
        let Some(me) = me.filter(|_| sticky.spread > 1) else { return (sticky.shard, true) };
        let free = match &sticky.holder {
            None => true,
            Some((holder, since)) => *holder == me || since.elapsed() > HOLD,
        };
        if free {
            sticky.others.remove(&me);
            sticky.holder = Some((me, std::time::Instant::now()));
            return (sticky.shard, true);
        }
        if let Some((shard, _)) = sticky.others.get(&me) {
            return (*shard, false);
        }
        sticky.others.retain(|_, (_, since)| since.elapsed() <= HOLD);
        let shard = sticky.draw();
        sticky.others.insert(me, (shard, std::time::Instant::now()));
        (shard, false)
    }

    /// Whether `account` was last seen hot (spread over shards).
    pub(crate) fn is_hot(&self, tenant: &TenantId, account: &AccountId) -> bool {
        let shards = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        shards.get(&(tenant.clone(), account.clone())).is_some_and(|sticky| sticky.spread > 1)
    }

    /// The running request is done with `account`: the shard it wrote is free again.
    fn release(&self, tenant: &TenantId, account: &AccountId) {
        let Some(me) = current_correlation() else { return };
        let mut shards = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sticky) = shards.get_mut(&(tenant.clone(), account.clone())) {
            if sticky.holder.as_ref().is_some_and(|(holder, _)| *holder == me) {
                sticky.holder = None;
            }
            sticky.others.remove(&me);
        }
    }

    /// Keeps `state` unless a later one (a higher version) is known already: concurrent requests
    /// may report their states out of order. An account seen hot for the first time, or with
    /// another spread, gets a shard drawn among those it spreads over (an un-marked one, 0).
    pub(crate) fn put(&self, tenant: &TenantId, state: &AccountBalance) {
        let spread = state.shards.get();
        let mut shards = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        let key = (tenant.clone(), state.id.clone());
        let known = shards.get(&key).map(|sticky| sticky.spread);
        let spread_anew = known != Some(spread) && (spread > 1 || known.is_some());
        if spread_anew {
            if shards.len() >= CAPACITY {
                shards.clear();
            }
            shards.insert(key.clone(), Sticky::new(spread));
        }
        drop(shards);
        if spread_anew {
            // Its writers spread otherwise now: how crowded it was no longer says how they meet.
            self.levels.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let key = (tenant.clone(), state.id.clone(), state.shard);
        if entries.len() >= CAPACITY && !entries.contains_key(&key) {
            // Bounded memory; which entry goes does not matter for correctness, only for hits.
            entries.clear();
        }
        let entry = entries.entry(key).or_insert_with(|| state.clone());
        // Versions order by entries, then revision (`AccountVersion`'s order); a gather moves
        // funds without a new version, so a state that differs at the same version replaces it.
        if state.version() > entry.version()
            || (state.version() == entry.version() && state.moved != entry.moved)
        {
            *entry = state.clone();
        }
    }

    /// Drops the state of the shard this request writes: a write on it was cancelled. For a hot
    /// account, the request draws another (the container's own shard moves, if it was that).
    pub(crate) fn forget(&self, tenant: &TenantId, account: &AccountId) {
        let (shard, own) = self.claim(tenant, account);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(&(tenant.clone(), account.clone(), shard));
        drop(entries);
        let me = current_correlation();
        let mut shards = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        let Some(sticky) = shards.get_mut(&(tenant.clone(), account.clone())) else { return };
        if sticky.spread <= 1 {
            return;
        }
        if own {
            sticky.shard = sticky.draw();
        } else if let Some(me) = me {
            let shard = sticky.draw();
            sticky.others.insert(me, (shard, std::time::Instant::now()));
        }
    }

    /// The highest level of `accounts` (the default for those never contended).
    pub(crate) fn level(&self, tenant: &TenantId, accounts: &[AccountId]) -> Level {
        let levels = self.levels.lock().unwrap_or_else(|e| e.into_inner());
        let key = |account: &AccountId| (tenant.clone(), account.clone());
        accounts.iter().filter_map(|a| levels.get(&key(a)).copied()).max().unwrap_or_default()
    }

    /// A try on `accounts` landed or lost: each one's level moves (`Level::after`); an account
    /// back at the lowest is dropped.
    pub(crate) fn note_try(&self, tenant: &TenantId, accounts: &[AccountId], landed: bool) {
        if landed {
            for account in accounts {
                self.release(tenant, account);
            }
        }
        let mut levels = self.levels.lock().unwrap_or_else(|e| e.into_inner());
        for account in accounts {
            let key = (tenant.clone(), account.clone());
            let level = levels.get(&key).copied().unwrap_or_default().after(landed);
            if level.is_lowest() {
                levels.remove(&key);
            } else {
                if levels.len() >= CAPACITY && !levels.contains_key(&key) {
                    // Bounded memory, as for the balances.
                    levels.clear();
                }
                levels.insert(key, level);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::fixtures::account;
    use time::OffsetDateTime;

    #[test]
    fn a_later_state_is_never_replaced_by_an_earlier_one() {
        let cache = BalanceCache::default();
        let tenant = TenantId::parse("acme").unwrap();
        let mut state = account("alice", false).open(OffsetDateTime::UNIX_EPOCH).balance_state();
        state.entry_count = 5;
        cache.put(&tenant, &state);
        let mut older = state.clone();
        older.entry_count = 4;
        cache.put(&tenant, &older);
        assert_eq!(cache.get(&tenant, &state.id).map(|s| s.entry_count), Some(5));
        cache.forget(&tenant, &state.id);
        assert_eq!(cache.get(&tenant, &state.id), None);
    }

    #[test]
    fn a_hot_account_is_written_on_a_drawn_shard_and_a_cancelled_write_draws_another() {
        let cache = BalanceCache::default();
        let tenant = TenantId::parse("acme").unwrap();
        let mut main = account("hot", true).open(OffsetDateTime::UNIX_EPOCH).balance_state();
        assert_eq!(cache.shard(&tenant, &main.id), 0, "not seen hot: the main shard");
        main.shards = ledger::ShardCount::new(4).unwrap();
        main.shard_items = 4;
        cache.put(&tenant, &main);
        let shard = cache.shard(&tenant, &main.id);
        assert!(shard < 4);
        assert!((0..20).all(|_| cache.shard(&tenant, &main.id) == shard), "the container keeps its shard");
        // Its state is kept per shard: the drawn shard's is what the cache answers.
        cache.put(&tenant, &AccountBalance { shard, entry_count: 7, ..main.clone() });
        assert_eq!(cache.get(&tenant, &main.id).map(|s| (s.shard, s.entry_count)), Some((shard, 7)));
        cache.forget(&tenant, &main.id);
        let other = cache.shard(&tenant, &main.id);
        assert!(other < 4 && other != shard);
        // Un-marked: back to the main shard.
        cache.put(&tenant, &AccountBalance { shards: ledger::ShardCount::ONE, ..main.clone() });
        assert_eq!(cache.shard(&tenant, &main.id), 0);
    }

    #[tokio::test]
    async fn while_one_request_writes_the_containers_shard_the_others_draw_other_shards() {
        use ledger_telemetry::correlation::{CorrelationId, TraceContext, scope};
        let cache = std::sync::Arc::new(BalanceCache::default());
        let tenant = TenantId::parse("acme").unwrap();
        let mut main = account("hot", true).open(OffsetDateTime::UNIX_EPOCH).balance_state();
        main.shards = ledger::ShardCount::new(8).unwrap();
        main.shard_items = 8;
        cache.put(&tenant, &main);
        let request = |name: &str| TraceContext::new(CorrelationId::parse(name).unwrap(), None);
        let (c, t, id) = (cache.clone(), tenant.clone(), main.id.clone());
        let held = scope(request("first"), async move { c.shard(&t, &id) }).await;
        // The first request holds the container's shard: a second gets another, every time.
        for _ in 0..20 {
            let (c, t, id) = (cache.clone(), tenant.clone(), main.id.clone());
            let other = scope(request("second"), async move { c.shard(&t, &id) }).await;
            assert_ne!(other, held);
        }
        // Once the first lands its write, the shard is the next request's.
        let (c, t, id) = (cache.clone(), tenant.clone(), main.id.clone());
        scope(request("first"), async move { c.note_try(&t, &[id], true) }).await;
        let (c, t, id) = (cache.clone(), tenant.clone(), main.id.clone());
        assert_eq!(scope(request("second"), async move { c.shard(&t, &id) }).await, held);
    }

    #[test]
    fn levels_rise_by_losses_fall_by_landings_and_the_hottest_account_sets_the_pauses() {
        let cache = BalanceCache::default();
        let tenant = TenantId::parse("acme").unwrap();
        let [hot, cool] = ["hot", "cool"].map(|id| AccountId::parse(id).unwrap());
        cache.note_try(&tenant, &[hot.clone(), cool.clone()], false);
        cache.note_try(&tenant, std::slice::from_ref(&hot), false);
        let two_losses = Level::default().after(false).after(false);
        assert_eq!(cache.level(&tenant, &[cool.clone(), hot.clone()]), two_losses);
        assert_eq!(cache.level(&tenant, std::slice::from_ref(&cool)), Level::default().after(false));
        // Another tenant's account of the same id is its own.
        let other = TenantId::parse("other").unwrap();
        assert!(cache.level(&other, std::slice::from_ref(&hot)).is_lowest());
        for _ in 0..10 {
            cache.note_try(&tenant, &[hot.clone(), cool.clone()], true);
        }
        assert!(cache.level(&tenant, &[hot, cool]).is_lowest());
        assert!(cache.levels.lock().unwrap().is_empty(), "accounts back at the lowest are dropped");
    }

    #[test]
    fn an_account_seen_spread_anew_starts_from_the_lowest_level() {
        let cache = BalanceCache::default();
        let tenant = TenantId::parse("acme").unwrap();
        let mut state = account("k1", false).open(OffsetDateTime::UNIX_EPOCH).balance_state();
        cache.put(&tenant, &state);
        for _ in 0..3 {
            cache.note_try(&tenant, std::slice::from_ref(&state.id), false);
        }
        let crowded = cache.level(&tenant, std::slice::from_ref(&state.id));
        assert!(!crowded.is_lowest());
        // The same spread again keeps the level; a new one (marked hot) drops it.
        cache.put(&tenant, &state);
        assert_eq!(cache.level(&tenant, std::slice::from_ref(&state.id)), crowded);
        state.shards = ledger::ShardCount::new(4).unwrap();
        state.shard_items = 4;
        state.revision += 1;
        cache.put(&tenant, &state);
        assert!(cache.level(&tenant, std::slice::from_ref(&state.id)).is_lowest());
    }
}
