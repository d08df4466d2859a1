//! Digests signed by an asymmetric KMS key (`ECC_NIST_P256`, `SIGN_VERIFY`): `Sign` with
//! `ECDSA_SHA_256` over the digest's signed bytes, and `GetPublicKey` to export the key that
//! checks it. The private key never leaves KMS. `LocalNotary` signs with a key of its own process:
//! the fast test tier's.

use async_trait::async_trait;
use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use ledger::digest::{Digest, SignedDigest};
use ledger::port::{Notary, StoreError};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePublicKey;

use crate::error::kms_error;

/// Signs with the KMS key `key_id`; the digests name the key's ARN.
#[derive(Clone, Debug)]
pub struct KmsNotary {
    client: Client,
    key_id: String,
}

impl KmsNotary {
    pub fn new(client: Client, key_id: impl Into<String>) -> Self {
        Self { client, key_id: key_id.into() }
    }
}

#[async_trait]
impl Notary for KmsNotary {
    async fn sign(&self, digest: Digest) -> Result<SignedDigest, StoreError> {
        let out = self
            .client
            .sign()
            .key_id(&self.key_id)
            .message(Blob::new(digest.signed_bytes()))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(|err| kms_error(aws_sdk_kms::error::DisplayErrorContext(err)))?;
        let signature = out.signature.ok_or_else(|| kms_error("Sign returned no signature"))?.into_inner();
        let key_id = out.key_id.unwrap_or_else(|| self.key_id.clone());
        Ok(SignedDigest { digest, key_id, signature })
    }

    async fn public_key(&self) -> Result<Vec<u8>, StoreError> {
        let out = self
            .client
            .get_public_key()
            .key_id(&self.key_id)
            .send()
            .await
            .map_err(|err| kms_error(aws_sdk_kms::error::DisplayErrorContext(err)))?;
        Ok(out.public_key.ok_or_else(|| kms_error("GetPublicKey returned no key"))?.into_inner())
    }
}

/// Signs with a P-256 key made for this process, no KMS.
#[derive(Clone)]
pub struct LocalNotary {
    key: SigningKey,
}

impl LocalNotary {
    pub fn new() -> Self {
        // 32 random bytes fail to be a key (zero, or past the curve's order) with odds of about
        // 2^-128: draw again then.
        loop {
            if let Ok(key) = SigningKey::from_bytes(&rand::random::<[u8; 32]>().into()) {
                return Self { key };
            }
        }
    }
}

impl Default for LocalNotary {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for LocalNotary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalNotary")
    }
}

#[async_trait]
impl Notary for LocalNotary {
    async fn sign(&self, digest: Digest) -> Result<SignedDigest, StoreError> {
        let signature: Signature = self.key.sign(&digest.signed_bytes());
        Ok(SignedDigest { digest, key_id: "local".into(), signature: signature.to_der().as_bytes().to_vec() })
    }

    async fn public_key(&self) -> Result<Vec<u8>, StoreError> {
        let der = p256::PublicKey::from(self.key.verifying_key())
            .to_public_key_der()
            .map_err(|err| StoreError::Unexpected(format!("the public key does not encode: {err}")))?;
        Ok(der.into_vec())
    }
}

#[cfg(test)]
mod tests {
    use ledger::TenantId;
    use ledger::digest::{DigestTree, HeadLeaf};
    use time::OffsetDateTime;

    use super::*;

    #[tokio::test]
    async fn a_local_digest_checks_with_its_public_key() {
        let notary = LocalNotary::new();
        let leaves: Vec<HeadLeaf> = Vec::new();
        let digest =
            DigestTree::new(leaves).digest(TenantId::parse("acme").unwrap(), OffsetDateTime::UNIX_EPOCH);
        let signed = notary.sign(digest).await.unwrap();
        assert_eq!(signed.verify(&notary.public_key().await.unwrap()), Ok(()));
        let other = LocalNotary::new().public_key().await.unwrap();
        assert!(signed.verify(&other).is_err());
    }
}
