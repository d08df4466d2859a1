//! Taking a tenant's digest (`crate::digest`): every account shard's chain head, page by page, in
//! one Merkle tree, its root signed by the notary; and checking its books (`crate::books`) from a
//! checkpoint to the next, whose digest is signed so.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use crate::account::AccountBalance;
use crate::books::{self, BooksReport, Checkpoint, Mark};
use crate::digest::{DigestTree, HeadLeaf, SignedDigest};
use crate::ids::{AccountId, TenantId};
use crate::port::{Accounts, Notary, StoreError};

/// Accounts read per page.
pub const PAGE: u16 = 100;

/// `tenant`'s digest as of `now`, signed, and the tree it was taken over (for proofs). Each page
/// of heads is one snapshot; pages are read one after another, so a head is as of its page's read:
/// a later history must still extend each one.
pub async fn take_digest(
    accounts: &dyn Accounts,
    notary: &dyn Notary,
    tenant: &TenantId,
    now: OffsetDateTime,
) -> Result<(SignedDigest, DigestTree), StoreError> {
    let leaves = shard_balances(accounts, tenant, PAGE).await?.iter().map(HeadLeaf::of).collect();
    let tree = DigestTree::new(leaves);
    let signed = notary.sign(tree.digest(tenant.clone(), now)).await?;
    Ok((signed, tree))
}

/// Every shard's balance of `tenant`'s accounts, `page_size` accounts at a time.
pub async fn shard_balances(
    accounts: &dyn Accounts,
    tenant: &TenantId,
    page_size: u16,
) -> Result<Vec<AccountBalance>, StoreError> {
    let mut balances = Vec::new();
    let mut after = None;
    loop {
        let page = accounts.shard_balances(tenant, page_size, after.as_ref()).await?;
        balances.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(balances),
        }
    }
}

/// One run of `tenant`'s books after `previous`, at `now`: every shard's balance read (pages of
/// `page_size` accounts, each one snapshot), the entries written since each one's mark, the check, and
/// the checkpoint, its digest signed by `notary`.
pub async fn check_books(
    accounts: &dyn Accounts,
    notary: &dyn Notary,
    tenant: &TenantId,
    previous: Option<&Checkpoint>,
    page_size: u16,
    now: OffsetDateTime,
) -> Result<(Checkpoint, BooksReport), StoreError> {
    let balances = shard_balances(accounts, tenant, page_size).await?;
    let mut entries = BTreeMap::new();
    for (account, shard, from, to) in books::wanted(previous, &balances) {
        let mut found = accounts.shard_entries(tenant, &account, shard, from).await?;
        // Entries written after the balance was read are the next run's.
        found.retain(|entry| entry.sequence <= to);
        entries.insert((account, shard), found);
    }
    let (marks, open, report) = books::check(tenant, previous, &balances, &entries);
    let tree = DigestTree::new(marks.iter().map(|m| m.leaf.clone()).collect());
    let signed = notary.sign(tree.digest(tenant.clone(), now)).await?;
    let by_leaf: BTreeMap<(AccountId, u16), Mark> =
        marks.into_iter().map(|m| ((m.leaf.account_id.clone(), m.leaf.shard), m)).collect();
    let leaves = tree
        .leaves()
        .iter()
        .filter_map(|leaf| by_leaf.get(&(leaf.account_id.clone(), leaf.shard)).cloned())
        .collect();
    Ok((Checkpoint { signed, run: report.run, leaves, open }, report))
}
