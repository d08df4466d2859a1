//! Signing digests (`crate::digest`) with a key that signs and cannot be exported: KMS's
//! asymmetric key in AWS, one of the process's own in the fast tier. Anyone checks a signature
//! with the public key alone.

use async_trait::async_trait;

use super::error::StoreError;
use crate::digest::{Digest, SignedDigest};

#[async_trait]
pub trait Notary: Send + Sync + std::fmt::Debug {
    /// `digest`, signed (ECDSA P-256 over SHA-256 of its signed bytes).
    async fn sign(&self, digest: Digest) -> Result<SignedDigest, StoreError>;

    /// The public key that checks its signatures: DER SubjectPublicKeyInfo.
    async fn public_key(&self) -> Result<Vec<u8>, StoreError>;
}
