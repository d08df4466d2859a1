//! The offline verifier's core: a tenant's histories as an export holds them, checked against a
//! signed digest and the public key alone. Every chain is recomputed (`chain::verify`), the
//! digest's signature and root are checked, and every shard must extend the head the digest
//! signed for it (`chain::extends`). Every transfer record must say what its entries did
//! (`binding::check`), and every account's pending totals what its open holds reserve
//! (`binding::check_pending`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::binding::{self, PendingFinding, TransferFinding};
use crate::chain::{self, ChainFault, ChainHead};
use crate::digest::{DigestError, DigestTree, HeadLeaf, SignedDigest};
use crate::ids::AccountId;
use crate::posting::Entry;
use crate::transfer::Transfer;

/// One account shard as an export holds it: its balance item and its entries, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardHistory {
    pub account_id: AccountId,
    pub shard: u16,
    /// Its balance item (`None`: the export has none).
    pub head: Option<ChainHead>,
    pub entries: Vec<Entry>,
}

/// What a digest is published as: the signed digest and the leaves it was taken over, so that
/// anyone can recompute its root and hand each account its proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestDocument {
    #[serde(flatten)]
    pub signed: SignedDigest,
    pub leaves: Vec<HeadLeaf>,
}

impl DigestDocument {
    pub fn new(signed: SignedDigest, tree: &DigestTree) -> Self {
        Self { signed, leaves: tree.leaves().to_vec() }
    }
}

/// Something wrong with one account shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub account_id: AccountId,
    pub shard: u16,
    pub fault: AuditFault,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditFault {
    /// Its history or balance does not follow its chain, or does not extend its signed head.
    Chain(ChainFault),
    /// The export has entries for it but no balance item.
    NoBalance,
}

impl std::fmt::Display for AuditFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditFault::Chain(fault) => fault.fmt(f),
            AuditFault::NoBalance => f.write_str("entries without a balance item"),
        }
    }
}

/// What the verifier found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// Whether the digest's signature checks with the public key.
    pub signature: Result<(), DigestError>,
    /// Whether the document's leaves give the signed root and size.
    pub leaves_match_root: bool,
    pub findings: Vec<Finding>,
    /// Transfer records that do not say what their entries did.
    pub transfer_findings: Vec<TransferFinding>,
    /// Accounts whose pending totals are not what their open holds reserve.
    pub pending_findings: Vec<PendingFinding>,
    pub accounts: usize,
    pub shards: usize,
    pub entries: usize,
    pub transfers: usize,
}

impl AuditReport {
    /// Whether the history is as signed: a good signature over these leaves, and no finding.
    pub fn passed(&self) -> bool {
        self.signature.is_ok()
            && self.leaves_match_root
            && self.findings.is_empty()
            && self.transfer_findings.is_empty()
            && self.pending_findings.is_empty()
    }
}

/// Checks `histories` (one tenant's shards) and `transfers` (its transfer records) against
/// `document`, signed by the holder of `public_key` (DER SubjectPublicKeyInfo).
pub fn audit(
    histories: &[ShardHistory],
    transfers: &[Transfer],
    document: &DigestDocument,
    public_key: &[u8],
) -> AuditReport {
    let signature = document.signed.verify(public_key);
    let tree = DigestTree::new(document.leaves.clone());
    let recomputed = tree.digest(document.signed.digest.tenant.clone(), document.signed.digest.taken_at);
    let leaves_match_root =
        recomputed == document.signed.digest && tree.leaves() == document.leaves.as_slice();
    let by_shard: BTreeMap<(&str, u16), &ShardHistory> =
        histories.iter().map(|h| ((h.account_id.as_str(), h.shard), h)).collect();
    let mut findings = Vec::new();
    let mut found = |account_id: &AccountId, shard: u16, fault: AuditFault| {
        findings.push(Finding { account_id: account_id.clone(), shard, fault })
    };
    for history in histories {
        match &history.head {
            Some(head) => {
                for fault in chain::verify(head, &history.entries) {
                    found(&history.account_id, history.shard, AuditFault::Chain(fault));
                }
            }
            None => found(&history.account_id, history.shard, AuditFault::NoBalance),
        }
    }
    for leaf in &document.leaves {
        let entries =
            by_shard.get(&(leaf.account_id.as_str(), leaf.shard)).map_or(&[][..], |h| &h.entries[..]);
        if let Some(fault) = chain::extends(leaf, entries) {
            found(&leaf.account_id, leaf.shard, AuditFault::Chain(fault));
        }
    }
    let accounts =
        by_shard.keys().map(|(account, _)| *account).collect::<std::collections::BTreeSet<_>>().len();
    let mut pending: BTreeMap<AccountId, (u128, u128)> = BTreeMap::new();
    for history in histories {
        let totals = history.head.map(|h| h.balances).unwrap_or_default();
        let account = pending.entry(history.account_id.clone()).or_default();
        account.0 += totals.debits_pending;
        account.1 += totals.credits_pending;
    }
    AuditReport {
        signature,
        leaves_match_root,
        findings,
        transfer_findings: binding::check(transfers, histories.iter().flat_map(|h| &h.entries)),
        pending_findings: binding::check_pending(transfers, &pending),
        accounts,
        shards: histories.len(),
        entries: histories.iter().map(|h| h.entries.len()).sum(),
        transfers: transfers.len(),
    }
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::{Signature, SigningKey};
    use p256::pkcs8::EncodePublicKey;
    use time::OffsetDateTime;

    use super::*;
    use crate::chain::tests::history;
    use crate::fixtures::{committed, transfer};
    use crate::hash256::Hash256;
    use crate::ids::TenantId;

    fn shard(balance: &crate::AccountBalance, entries: &[Entry]) -> ShardHistory {
        ShardHistory {
            account_id: balance.id.clone(),
            shard: 0,
            head: Some(ChainHead::of(balance)),
            entries: entries.to_vec(),
        }
    }

    /// Two accounts' histories, and a document signed over their heads after the first `signed`
    /// entries of each, with its public key.
    fn signed_after(signed: usize) -> (Vec<ShardHistory>, Vec<Transfer>, DigestDocument, Vec<u8>) {
        let amounts = [5, 3, 7, 2];
        let (a, of_a, b, of_b) = history(&amounts);
        // Their records: t0 from a to b, t1 back, and so on.
        let transfers = amounts
            .iter()
            .enumerate()
            .map(|(i, amount)| {
                let (debit, credit) = if i % 2 == 0 { ("a", "b") } else { ("b", "a") };
                committed(transfer(&format!("t{i}"), debit, credit, *amount), OffsetDateTime::UNIX_EPOCH)
            })
            .collect();
        let leaf = |balance: &crate::AccountBalance, entries: &[Entry]| HeadLeaf {
            entry_count: signed as u64,
            head: entries[signed - 1].hash,
            ..HeadLeaf::of(balance)
        };
        let tree = DigestTree::new(vec![leaf(&a, &of_a), leaf(&b, &of_b)]);
        let digest = tree.digest(TenantId::parse("acme").unwrap(), OffsetDateTime::UNIX_EPOCH);
        let key = SigningKey::from_bytes(&[3u8; 32].into()).unwrap();
        let signature: Signature = key.sign(&digest.signed_bytes());
        let signed =
            SignedDigest { digest, key_id: "k".into(), signature: signature.to_der().as_bytes().to_vec() };
        let public = p256::PublicKey::from(key.verifying_key()).to_public_key_der().unwrap().into_vec();
        (vec![shard(&a, &of_a), shard(&b, &of_b)], transfers, DigestDocument::new(signed, &tree), public)
    }

    #[test]
    fn an_untouched_history_passes_against_an_earlier_digest() {
        let (histories, transfers, document, public) = signed_after(3);
        let report = audit(&histories, &transfers, &document, &public);
        assert!(report.passed(), "{report:?}");
        assert_eq!((report.accounts, report.shards, report.entries, report.transfers), (2, 2, 8, 4));
    }

    #[test]
    fn a_transfer_record_that_says_otherwise_than_its_entries_fails_the_audit() {
        let (histories, mut transfers, document, public) = signed_after(3);
        transfers[1].movement.as_mut().unwrap().amount = crate::Amount::new(300).unwrap();
        transfers.remove(0);
        let report = audit(&histories, &transfers, &document, &public);
        let found: Vec<_> =
            report.transfer_findings.iter().map(|f| (f.transfer_id.as_str(), f.fault.to_string())).collect();
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0], ("t0", "entries name it and it has no record".to_owned()));
        assert!(found[1].0 == "t1" && found[1].1.contains("debit b 300 posted"), "{found:?}");
        assert!(report.findings.is_empty() && report.signature.is_ok() && !report.passed());
    }

    #[test]
    fn a_rewritten_chain_a_removed_shard_a_forged_leaf_and_a_foreign_key_are_each_reported() {
        let (mut histories, transfers, document, public) = signed_after(3);
        // a's history rewritten from its first entry, every hash and the head recomputed.
        let a = &mut histories[0];
        a.entries[0].amount = crate::Amount::new(6).unwrap();
        let mut previous = Hash256::GENESIS;
        for entry in &mut a.entries {
            entry.hash = entry.hash_after(&previous);
            previous = entry.hash;
        }
        a.head.as_mut().unwrap().head = previous;
        let report = audit(&histories, &transfers, &document, &public);
        let faults: Vec<_> =
            report.findings.iter().map(|f| (f.account_id.as_str(), f.fault.clone())).collect();
        // The totals no longer follow from the amount, and the signed head is not there.
        assert!(
            faults.contains(&("a", AuditFault::Chain(ChainFault::SignedHeadDiffers { sequence: 3 }))),
            "{faults:?}"
        );
        assert!(report.signature.is_ok() && report.leaves_match_root);

        // b's history missing from the export.
        let (mut histories, transfers, document, public) = signed_after(3);
        histories.pop();
        let report = audit(&histories, &transfers, &document, &public);
        assert_eq!(
            report.findings,
            vec![Finding {
                account_id: AccountId::parse("b").unwrap(),
                shard: 0,
                fault: AuditFault::Chain(ChainFault::SignedHeadMissing { sequence: 3 }),
            }]
        );

        // A leaf of the document changed to match a rewrite: the root no longer does.
        let (histories, transfers, mut document, public) = signed_after(3);
        document.leaves[0].head = Hash256::GENESIS;
        assert!(!audit(&histories, &transfers, &document, &public).leaves_match_root);

        // Another key's signature.
        let (histories, transfers, document, _) = signed_after(3);
        let other = SigningKey::from_bytes(&[4u8; 32].into()).unwrap();
        let foreign = p256::PublicKey::from(other.verifying_key()).to_public_key_der().unwrap();
        let report = audit(&histories, &transfers, &document, foreign.as_bytes());
        assert_eq!(report.signature, Err(DigestError::BadSignature));
        assert!(!report.passed());
    }
}
