//! The latest state of accounts' balance items this store has seen (a warm container's memory), so
//! that a transfer between accounts it wrote a moment ago can go straight to its conditional write:
//! one request instead of a read and a write.
//!
//! Never trusted for a decision: the write is conditioned on the cached version (`entry_count`,
//! which every change of a balance item increments), so a stale entry makes it fail and the
//! transfer is redone from a fresh read; and a rule that refuses a transfer is only ever applied to
//! freshly read state, since a refusal is permanent.

use std::collections::HashMap;
use std::sync::Mutex;

use ledger::{AccountBalance, AccountId, TenantId};

/// Entries kept at most: about 200 bytes each.
const CAPACITY: usize = 10_000;

#[derive(Debug, Default)]
pub(crate) struct BalanceCache {
    entries: Mutex<HashMap<(TenantId, AccountId), AccountBalance>>,
}

impl BalanceCache {
    pub(crate) fn get(&self, tenant: &TenantId, account: &AccountId) -> Option<AccountBalance> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(&(tenant.clone(), account.clone())).cloned()
    }

    /// Keeps `state` unless a later one (a higher version) is known already: concurrent requests
    /// may report their states out of order.
    pub(crate) fn put(&self, tenant: &TenantId, state: &AccountBalance) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY && !entries.contains_key(&(tenant.clone(), state.id.clone())) {
            // Bounded memory; which entry goes does not matter for correctness, only for hits.
            entries.clear();
        }
        let entry = entries.entry((tenant.clone(), state.id.clone())).or_insert_with(|| state.clone());
        // Versions order by entries, then revision (`AccountVersion`'s order).
        if state.version() > entry.version() {
            *entry = state.clone();
        }
    }

    pub(crate) fn forget(&self, tenant: &TenantId, account: &AccountId) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(&(tenant.clone(), account.clone()));
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
}
