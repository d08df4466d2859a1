//! Sealing webhook signing secrets: envelope encryption under a key only the API (to seal a new
//! secret) and the deliverer (to sign with it) may use. A sealed secret is bound to its tenant and
//! endpoint: opened for another, it does not open. So the table, its index, its stream and its
//! backups hold no secret in clear, and a role that can read the table cannot sign as a tenant.

use async_trait::async_trait;

use super::error::StoreError;
use crate::ids::{EndpointId, TenantId};
use crate::webhook::{SealedSecret, SigningSecret};

#[async_trait]
pub trait Sealer: Send + Sync + std::fmt::Debug {
    /// `secret`, sealed for `tenant`'s endpoint `endpoint`.
    async fn seal(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        secret: &SigningSecret,
    ) -> Result<SealedSecret, StoreError>;

    /// The secret `sealed` holds, if it was sealed for `tenant`'s endpoint `endpoint`.
    async fn open(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        sealed: &SealedSecret,
    ) -> Result<SigningSecret, StoreError>;
}
