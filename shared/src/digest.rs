//! Signed digests: what an auditor checks a tenant's history against without trusting the table.
//!
//! A digest commits, at one instant, to the head of every account shard's chain (its latest
//! entry's hash and how many entries it has), as the leaves of a Merkle tree (`crate::merkle`) in
//! account and shard order. The ledger signs the digest with a key no one can export (ECDSA P-256
//! over SHA-256, by KMS in AWS) and keeps it outside the table. A history read later must extend
//! every head a digest signed (`chain::extends`): whoever rewrites a chain, even recomputing every
//! hash after the change, cannot make it end at a head signed before, nor sign a new digest.
//!
//! Each account gets a [`Proof`]: its leaf and the path up to the signed root, which an auditor
//! checks alone, with the digest and the exported public key.

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::account::AccountBalance;
use crate::hash256::Hash256;
use crate::ids::{AccountId, TenantId};
use crate::merkle;

/// One account shard's chain head, a leaf of a digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadLeaf {
    pub account_id: AccountId,
    /// Which shard of the account (`crate::shard`); 0 for an account that is not hot.
    pub shard: u16,
    /// How many entries the shard had: the sequence of the entry `head` is the hash of.
    pub entry_count: u64,
    /// Its latest entry's hash ([`Hash256::GENESIS`] before any).
    pub head: Hash256,
}

impl HeadLeaf {
    pub fn of(balance: &AccountBalance) -> HeadLeaf {
        HeadLeaf {
            account_id: balance.id.clone(),
            shard: balance.shard,
            entry_count: balance.entry_count,
            head: balance.head,
        }
    }

    /// Its leaf hash: over a fixed, versioned, length-prefixed encoding.
    pub fn hash(&self) -> Hash256 {
        let mut bytes = Vec::with_capacity(128);
        for field in [
            b"ledger.head.v1".as_slice(),
            self.account_id.as_str().as_bytes(),
            &self.shard.to_be_bytes(),
            &self.entry_count.to_be_bytes(),
            self.head.as_bytes(),
        ] {
            bytes.extend_from_slice(&(field.len() as u32).to_be_bytes());
            bytes.extend_from_slice(field);
        }
        merkle::leaf_hash(&bytes)
    }
}

/// What a digest commits to: a tenant's heads at an instant, by the root of their tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub tenant: TenantId,
    #[serde(with = "time::serde::rfc3339")]
    pub taken_at: OffsetDateTime,
    /// How many leaves (account shards) the tree has.
    pub size: u64,
    pub root: Hash256,
}

impl Digest {
    /// The bytes signed: a fixed, versioned, length-prefixed encoding of every field.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(128);
        for field in [
            b"ledger.digest.v1".as_slice(),
            self.tenant.as_str().as_bytes(),
            &self.taken_at.unix_timestamp_nanos().to_be_bytes(),
            &self.size.to_be_bytes(),
            self.root.as_bytes(),
        ] {
            bytes.extend_from_slice(&(field.len() as u32).to_be_bytes());
            bytes.extend_from_slice(field);
        }
        bytes
    }
}

/// A tenant's heads in tree order, with their leaf hashes: what digests and proofs are made of.
#[derive(Debug, Clone, Default)]
pub struct DigestTree {
    leaves: Vec<HeadLeaf>,
    hashes: Vec<Hash256>,
}

impl DigestTree {
    /// The tree over `leaves`, put in account and shard order (one leaf per shard: of two for
    /// the same shard, the one with more entries is kept, being the later read).
    pub fn new(mut leaves: Vec<HeadLeaf>) -> DigestTree {
        // Of two leaves for one shard, the one with more entries sorts first and is kept.
        fn order(leaf: &HeadLeaf) -> (&str, u16, std::cmp::Reverse<u64>) {
            (leaf.account_id.as_str(), leaf.shard, std::cmp::Reverse(leaf.entry_count))
        }
        leaves.sort_by(|a, b| order(a).cmp(&order(b)));
        leaves.dedup_by(|later, kept| later.account_id == kept.account_id && later.shard == kept.shard);
        let hashes = leaves.iter().map(HeadLeaf::hash).collect();
        DigestTree { leaves, hashes }
    }

    pub fn leaves(&self) -> &[HeadLeaf] {
        &self.leaves
    }

    pub fn digest(&self, tenant: TenantId, taken_at: OffsetDateTime) -> Digest {
        Digest { tenant, taken_at, size: self.leaves.len() as u64, root: merkle::root(&self.hashes) }
    }

    /// The proofs of `account`'s shards, one per shard it has in the tree (none if it has none).
    pub fn proofs(&self, account: &AccountId) -> Vec<Proof> {
        let first = self.leaves.partition_point(|leaf| leaf.account_id.as_str() < account.as_str());
        self.leaves[first..]
            .iter()
            .take_while(|leaf| &leaf.account_id == account)
            .enumerate()
            .filter_map(|(offset, leaf)| {
                let index = first + offset;
                let path = merkle::inclusion_path(&self.hashes, index)?;
                Some(Proof { leaf: leaf.clone(), index: index as u64, path })
            })
            .collect()
    }
}

/// That one account shard's head is in a digest: its leaf, where, and the path to the root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    pub leaf: HeadLeaf,
    pub index: u64,
    pub path: Vec<Hash256>,
}

impl Proof {
    /// Whether it proves its leaf is in `digest`'s tree.
    pub fn verify(&self, digest: &Digest) -> bool {
        merkle::verify_inclusion(&self.leaf.hash(), self.index, digest.size, &self.path, &digest.root)
    }
}

/// A digest and its signature: ECDSA P-256 over SHA-256 of [`Digest::signed_bytes`], DER-encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedDigest {
    #[serde(flatten)]
    pub digest: Digest,
    /// Which key signed it (in AWS, the KMS key's ARN).
    pub key_id: String,
    #[serde(with = "hex::serde")]
    pub signature: Vec<u8>,
}

/// Why a signed digest does not check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("the public key is not a DER-encoded P-256 public key (SubjectPublicKeyInfo)")]
    PublicKey,
    #[error("the signature is not a DER-encoded ECDSA signature")]
    SignatureEncoding,
    #[error("the signature is not the key's over this digest")]
    BadSignature,
}

impl SignedDigest {
    /// Checks the signature with the signer's public key (DER SubjectPublicKeyInfo, as KMS's
    /// `GetPublicKey` exports it).
    pub fn verify(&self, public_key_der: &[u8]) -> Result<(), DigestError> {
        let key = VerifyingKey::from_public_key_der(public_key_der).map_err(|_| DigestError::PublicKey)?;
        let signature = Signature::from_der(&self.signature).map_err(|_| DigestError::SignatureEncoding)?;
        key.verify(&self.digest.signed_bytes(), &signature).map_err(|_| DigestError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer;
    use p256::pkcs8::EncodePublicKey;
    use proptest::prelude::*;

    use super::*;

    fn leaf(account: &str, shard: u16, entries: u64) -> HeadLeaf {
        let head = if entries == 0 {
            Hash256::GENESIS
        } else {
            merkle::leaf_hash(format!("{account}/{shard}/{entries}").as_bytes())
        };
        HeadLeaf { account_id: AccountId::parse(account).unwrap(), shard, entry_count: entries, head }
    }

    fn tenant() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    fn signed(key: &SigningKey, digest: Digest) -> SignedDigest {
        let signature: Signature = key.sign(&digest.signed_bytes());
        SignedDigest { digest, key_id: "test".into(), signature: signature.to_der().as_bytes().to_vec() }
    }

    #[test]
    fn a_signed_digest_checks_with_its_key_only() {
        let key = SigningKey::from_bytes(&[7u8; 32].into()).unwrap();
        let other = SigningKey::from_bytes(&[8u8; 32].into()).unwrap();
        let public = p256::PublicKey::from(key.verifying_key()).to_public_key_der().unwrap();
        let tree = DigestTree::new(vec![leaf("a", 0, 3), leaf("b", 0, 0)]);
        let digest = signed(&key, tree.digest(tenant(), OffsetDateTime::UNIX_EPOCH));
        assert_eq!(digest.verify(public.as_bytes()), Ok(()));
        let other_public = p256::PublicKey::from(other.verifying_key()).to_public_key_der().unwrap();
        assert_eq!(digest.verify(other_public.as_bytes()), Err(DigestError::BadSignature));
        assert_eq!(digest.verify(b"not a key"), Err(DigestError::PublicKey));
        let mut changed = digest.clone();
        changed.digest.size += 1;
        assert_eq!(changed.verify(public.as_bytes()), Err(DigestError::BadSignature));
        let mut garbled = digest.clone();
        garbled.signature = vec![1, 2, 3];
        assert_eq!(garbled.verify(public.as_bytes()), Err(DigestError::SignatureEncoding));
        // As stored and sent: JSON, the signature in hex, and back.
        let json = serde_json::to_string(&digest).unwrap();
        assert_eq!(serde_json::from_str::<SignedDigest>(&json).unwrap(), digest);
    }

    #[test]
    fn the_tree_keeps_one_leaf_per_shard_in_order() {
        let tree = DigestTree::new(vec![leaf("b", 1, 2), leaf("a", 0, 1), leaf("b", 0, 5), leaf("b", 1, 4)]);
        let kept: Vec<_> =
            tree.leaves().iter().map(|l| (l.account_id.as_str(), l.shard, l.entry_count)).collect();
        assert_eq!(kept, [("a", 0, 1), ("b", 0, 5), ("b", 1, 4)]);
        let digest = tree.digest(tenant(), OffsetDateTime::UNIX_EPOCH);
        let proofs = tree.proofs(&AccountId::parse("b").unwrap());
        assert_eq!(proofs.len(), 2);
        assert!(proofs.iter().all(|proof| proof.verify(&digest)));
        assert!(tree.proofs(&AccountId::parse("c").unwrap()).is_empty());
    }

    proptest! {
        /// Every account's proofs verify against its tenant's digest, and a proof of a head the
        /// digest did not sign (another count, another hash, another shard) does not.
        #[test]
        fn every_account_proves_its_signed_heads(counts in prop::collection::vec((0u16..3, 0u64..5), 1..40)) {
            let leaves: Vec<_> = counts.iter().enumerate().map(|(i, (shards, n))| (i, *shards, *n))
                .flat_map(|(i, shards, n)| (0..=shards).map(move |s| leaf(&format!("acct-{i:03}"), s, n + u64::from(s))))
                .collect();
            let tree = DigestTree::new(leaves.clone());
            let digest = tree.digest(tenant(), OffsetDateTime::UNIX_EPOCH);
            prop_assert_eq!(digest.size, leaves.len() as u64);
            for original in &leaves {
                let proofs = tree.proofs(&original.account_id);
                let proof = proofs.iter().find(|p| p.leaf.shard == original.shard).unwrap();
                prop_assert!(proof.verify(&digest));
                let mut later = proof.clone();
                later.leaf.entry_count += 1;
                prop_assert!(!later.verify(&digest));
                let mut rewritten = proof.clone();
                rewritten.leaf.head = merkle::leaf_hash(b"rewritten");
                prop_assert!(!rewritten.verify(&digest));
                let mut moved = proof.clone();
                moved.leaf.shard += 7;
                prop_assert!(!moved.verify(&digest));
            }
        }
    }
}
