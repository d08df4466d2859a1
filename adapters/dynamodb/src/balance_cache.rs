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

/// Entries kept at most: about 200 bytes each.
const CAPACITY: usize = 10_000;

#[derive(Debug, Default)]
pub(crate) struct BalanceCache {
    /// The latest state seen of each shard (0 for an account that is not hot).
    entries: Mutex<HashMap<(TenantId, AccountId, u16), AccountBalance>>,
    /// The shard of each hot account this container writes (`ledger::shard`), and how many its
    /// writes spread over: drawn when the account is first seen hot, drawn again when a write on
    /// it is cancelled, so that containers spread over the shards and move off a contended one,
    /// and each finds its own shard's state in its cache.
    shards: Mutex<HashMap<(TenantId, AccountId), (u16, u16)>>,
    levels: Mutex<HashMap<(TenantId, AccountId), Level>>,
}

impl BalanceCache {
    /// The state of `account` on the shard this container writes.
    pub(crate) fn get(&self, tenant: &TenantId, account: &AccountId) -> Option<AccountBalance> {
        let shard = self.shard(tenant, account);
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(&(tenant.clone(), account.clone(), shard)).cloned()
    }

    /// The shard of `account` this container writes: 0 until it is seen hot.
    pub(crate) fn shard(&self, tenant: &TenantId, account: &AccountId) -> u16 {
        let shards = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        shards.get(&(tenant.clone(), account.clone())).map_or(0, |(shard, _)| *shard)
    }

    /// Keeps `state` unless a later one (a higher version) is known already: concurrent requests
    /// may report their states out of order. An account seen hot for the first time, or with
    /// another spread, gets a shard drawn among those it spreads over (an un-marked one, 0).
    pub(crate) fn put(&self, tenant: &TenantId, state: &AccountBalance) {
        let spread = state.shards.get();
        let mut shards = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        let key = (tenant.clone(), state.id.clone());
        let known = shards.get(&key).map(|(_, known)| *known);
        if known != Some(spread) && (spread > 1 || known.is_some()) {
            if shards.len() >= CAPACITY {
                shards.clear();
            }
            shards.insert(key, (rand::rng().random_range(0..spread), spread));
        }
        drop(shards);
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

    /// Drops the state of the shard this container writes: a write on it was cancelled. For a hot
    /// account, another shard is drawn.
    pub(crate) fn forget(&self, tenant: &TenantId, account: &AccountId) {
        let shard = self.shard(tenant, account);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(&(tenant.clone(), account.clone(), shard));
        drop(entries);
        let mut shards = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((shard, spread)) = shards.get_mut(&(tenant.clone(), account.clone()))
            && *spread > 1
        {
            *shard = (*shard + rand::rng().random_range(1..*spread)) % *spread;
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
}
