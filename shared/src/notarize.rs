//! Taking a tenant's digest (`crate::digest`): every account shard's chain head, page by page, in
//! one Merkle tree, its root signed by the notary.

use time::OffsetDateTime;

use crate::digest::{DigestTree, SignedDigest};
use crate::ids::TenantId;
use crate::port::{Accounts, Notary, StoreError};

/// Heads read per page.
const PAGE: u16 = 100;

/// `tenant`'s digest as of `now`, signed, and the tree it was taken over (for proofs). Each page
/// of heads is one snapshot; pages are read one after another, so a head is as of its page's read:
/// a later history must still extend each one.
pub async fn take_digest(
    accounts: &dyn Accounts,
    notary: &dyn Notary,
    tenant: &TenantId,
    now: OffsetDateTime,
) -> Result<(SignedDigest, DigestTree), StoreError> {
    let mut leaves = Vec::new();
    let mut after = None;
    loop {
        let page = accounts.chain_heads(tenant, PAGE, after.as_ref()).await?;
        leaves.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let tree = DigestTree::new(leaves);
    let signed = notary.sign(tree.digest(tenant.clone(), now)).await?;
    Ok((signed, tree))
}
