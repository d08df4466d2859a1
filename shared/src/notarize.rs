//! Taking a tenant's digest (`crate::digest`): every account shard's chain head, page by page, in
//! one Merkle tree, its root signed by the notary.

use time::OffsetDateTime;

use crate::account::AccountBalance;
use crate::digest::{DigestTree, HeadLeaf, SignedDigest};
use crate::ids::TenantId;
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
