//! Webhook signing secrets sealed by envelope encryption (`ledger::port::Sealer`). Each secret is
//! encrypted (AES-256-GCM) under a data key of its own; the data key is kept only encrypted under
//! the KMS key (`GenerateDataKey`, opened by `Decrypt`), with the tenant and the endpoint as the
//! encryption context and as the cipher's associated data, so a sealed secret opens for its own
//! endpoint only. Sealed, a secret is
//! `[1][length of the encrypted data key: u16 big-endian][encrypted data key][nonce: 12][ciphertext and tag]`.
//!
//! The deliverer opens the same secrets again and again: opened secrets are kept in memory (by
//! tenant, endpoint and sealed bytes), so a delivery costs no KMS call once its secret is known.
//! `LocalSealer` seals under a key of its own process, no KMS: the fast test tier's.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use ledger::port::{Sealer, StoreError};
use ledger::webhook::{SealedSecret, SigningSecret};
use ledger::{EndpointId, TenantId};

use crate::error::kms_error;

const VERSION: u8 = 1;
const NONCE_BYTES: usize = 12;
/// Opened secrets kept by one instance; beyond it, the cache starts again.
const CACHED: usize = 1_024;

/// What a sealed secret is bound to: the cipher's associated data.
fn binding(tenant: &TenantId, endpoint: &EndpointId) -> String {
    format!("ledger-webhook-secret:{tenant}:{endpoint}")
}

fn seal_with(
    key: &[u8],
    wrapped_key: &[u8],
    bound: &str,
    secret: &SigningSecret,
) -> Result<SealedSecret, StoreError> {
    let cipher = Aes256Gcm::new_from_slice(key)
        .map_err(|_| StoreError::Unexpected("a data key of the wrong size".into()))?;
    let nonce: [u8; NONCE_BYTES] = rand::random();
    let sealed = cipher
        .encrypt(&Nonce::from(nonce), Payload { msg: secret.expose().as_bytes(), aad: bound.as_bytes() })
        .map_err(|_| StoreError::Unexpected("the secret could not be sealed".into()))?;
    let length = u16::try_from(wrapped_key.len())
        .map_err(|_| StoreError::Unexpected("an encrypted data key over 64 KiB".into()))?;
    let mut out = Vec::with_capacity(3 + wrapped_key.len() + NONCE_BYTES + sealed.len());
    out.push(VERSION);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(wrapped_key);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(SealedSecret::from_bytes(out))
}

/// A sealed secret's parts.
struct Parts<'s> {
    wrapped_key: &'s [u8],
    nonce: &'s [u8],
    ciphertext: &'s [u8],
}

/// The encrypted data key, the nonce and the ciphertext of a sealed secret.
fn parts(sealed: &SealedSecret) -> Result<Parts<'_>, StoreError> {
    let corrupt = || StoreError::Corrupt("a sealed webhook secret does not parse".into());
    let bytes = sealed.as_bytes();
    let (&version, rest) = bytes.split_first().ok_or_else(corrupt)?;
    if version != VERSION || rest.len() < 2 {
        return Err(corrupt());
    }
    let length = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
    let rest = &rest[2..];
    if rest.len() < length + NONCE_BYTES {
        return Err(corrupt());
    }
    let (wrapped, rest) = rest.split_at(length);
    let (nonce, ciphertext) = rest.split_at(NONCE_BYTES);
    Ok(Parts { wrapped_key: wrapped, nonce, ciphertext })
}

fn open_with(key: &[u8], nonce: &[u8], ciphertext: &[u8], bound: &str) -> Result<SigningSecret, StoreError> {
    let refused = || StoreError::Corrupt("a sealed webhook secret does not open for this endpoint".into());
    let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| refused())?;
    let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| refused())?;
    let plain = cipher
        .decrypt(&Nonce::from(nonce), Payload { msg: ciphertext, aad: bound.as_bytes() })
        .map_err(|_| refused())?;
    String::from_utf8(plain).map(SigningSecret::stored).map_err(|_| refused())
}

type MakeClient = Box<dyn FnOnce() -> Client + Send>;
/// Opened secrets, by what they were opened for.
type Opened = HashMap<(TenantId, EndpointId, Vec<u8>), SigningSecret>;

/// Seals under a KMS key: a data key per secret, the tenant and endpoint its encryption context.
#[derive(Clone)]
pub struct KmsSealer {
    client: Arc<LazyLock<Client, MakeClient>>,
    key_id: String,
    opened: Arc<Mutex<Opened>>,
}

impl KmsSealer {
    /// A sealer under the KMS key `key_id` (its id, ARN or alias), whose client `make` builds at
    /// its first use (the API's cold starts skip it).
    pub fn on_first_use(make: impl FnOnce() -> Client + Send + 'static, key_id: impl Into<String>) -> Self {
        Self {
            client: Arc::new(LazyLock::new(Box::new(make))),
            key_id: key_id.into(),
            opened: Arc::default(),
        }
    }

    fn cached(&self) -> std::sync::MutexGuard<'_, Opened> {
        self.opened.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for KmsSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsSealer").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

#[async_trait]
impl Sealer for KmsSealer {
    async fn seal(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        secret: &SigningSecret,
    ) -> Result<SealedSecret, StoreError> {
        let key = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .encryption_context("tenant", tenant.as_str())
            .encryption_context("endpoint", endpoint.as_str())
            .send()
            .await
            .map_err(|e| kms_error(aws_sdk_kms::error::DisplayErrorContext(e)))?;
        let (Some(plain), Some(wrapped)) = (key.plaintext(), key.ciphertext_blob()) else {
            return Err(StoreError::Unexpected("KMS returned no data key".into()));
        };
        seal_with(plain.as_ref(), wrapped.as_ref(), &binding(tenant, endpoint), secret)
    }

    async fn open(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        sealed: &SealedSecret,
    ) -> Result<SigningSecret, StoreError> {
        let cache_key = (tenant.clone(), endpoint.clone(), sealed.as_bytes().to_vec());
        if let Some(secret) = self.cached().get(&cache_key) {
            return Ok(secret.clone());
        }
        let parts = parts(sealed)?;
        let key = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(parts.wrapped_key))
            .encryption_context("tenant", tenant.as_str())
            .encryption_context("endpoint", endpoint.as_str())
            .send()
            .await
            .map_err(|e| {
                let refused = e.as_service_error().is_some_and(|s| s.is_invalid_ciphertext_exception());
                let detail = aws_sdk_kms::error::DisplayErrorContext(e);
                if refused {
                    StoreError::Corrupt(format!(
                        "a sealed webhook secret does not open for this endpoint: {detail}"
                    ))
                } else {
                    kms_error(detail)
                }
            })?;
        let plain =
            key.plaintext().ok_or_else(|| StoreError::Unexpected("KMS returned no data key".into()))?;
        let secret = open_with(plain.as_ref(), parts.nonce, parts.ciphertext, &binding(tenant, endpoint))?;
        let mut cached = self.cached();
        if cached.len() >= CACHED {
            cached.clear();
        }
        cached.insert(cache_key, secret.clone());
        Ok(secret)
    }
}

/// Seals under a key of this process, no KMS: the fast test tier's sealer (what it seals opens
/// only in this process).
#[derive(Clone)]
pub struct LocalSealer {
    key: [u8; 32],
}

impl LocalSealer {
    pub fn new() -> Self {
        Self { key: rand::random() }
    }
}

impl Default for LocalSealer {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for LocalSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalSealer")
    }
}

#[async_trait]
impl Sealer for LocalSealer {
    async fn seal(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        secret: &SigningSecret,
    ) -> Result<SealedSecret, StoreError> {
        seal_with(&self.key, &[], &binding(tenant, endpoint), secret)
    }

    async fn open(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        sealed: &SealedSecret,
    ) -> Result<SigningSecret, StoreError> {
        let parts = parts(sealed)?;
        open_with(&self.key, parts.nonce, parts.ciphertext, &binding(tenant, endpoint))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sealed_secret_opens_for_its_endpoint_only_and_holds_nothing_in_clear() {
        let sealer = LocalSealer::new();
        let (acme, globex) = (TenantId::parse("acme").unwrap(), TenantId::parse("globex").unwrap());
        let (e1, e2) = (EndpointId::generate(), EndpointId::generate());
        let secret = SigningSecret::from_bytes([9; 32]);
        let sealed = sealer.seal(&acme, &e1, &secret).await.unwrap();
        assert_eq!(sealer.open(&acme, &e1, &sealed).await.unwrap(), secret);
        for (tenant, endpoint) in [(&globex, &e1), (&acme, &e2)] {
            assert!(matches!(sealer.open(tenant, endpoint, &sealed).await, Err(StoreError::Corrupt(_))));
        }
        let clear = secret.expose().as_bytes();
        assert!(!sealed.as_bytes().windows(clear.len()).any(|w| w == clear));
        // Sealed twice, never the same bytes (a nonce each).
        assert_ne!(sealer.seal(&acme, &e1, &secret).await.unwrap(), sealed);
        // Another process's key does not open it.
        assert!(LocalSealer::new().open(&acme, &e1, &sealed).await.is_err());
        let mut tampered = sealed.as_bytes().to_vec();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(sealer.open(&acme, &e1, &SealedSecret::from_bytes(tampered)).await.is_err());
    }
}
