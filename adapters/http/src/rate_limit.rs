//! Per-tenant request limits at the HTTP edge. Every request that names a tenant spends one
//! operation of that tenant's bucket (`tenant_limits`) before its body is read (the [`Admitted`]
//! extractor), except a batch or a linked chain, which spends one per transfer at once, as soon as
//! its body parses and before anything is written ([`spend`]): a tenant's limit bounds the work it
//! causes, not only its requests. If the store cannot be asked, the request fails as any store
//! call does (`503`): a limit that let requests through whenever its item is throttled would give
//! way exactly under the flood it is for.

use axum::extract::{FromRef, FromRequestParts};
use http::request::Parts;
use ledger::TenantId;

use crate::extract::Tenant;
use crate::problem::ApiError;
use crate::state::AppState;
use crate::tenant_limits::Admission;

/// Spends `operations` of `tenant`'s bucket, or refuses with `429`. Without limits configured,
/// everything passes.
pub async fn spend(app: &AppState, tenant: &TenantId, operations: u32) -> Result<(), ApiError> {
    let Some(limits) = &app.rate_limit else { return Ok(()) };
    match limits.admit(tenant, operations, app.now()).await? {
        Admission::Admitted => Ok(()),
        Admission::Limited { retry_after } => {
            ledger_telemetry::metrics::request_limited();
            Err(ApiError::RateLimited { retry_after, limit: limits.limit() })
        }
    }
}

/// The operations a submission of `transfers` transfers is.
pub fn operations(transfers: usize) -> u32 {
    u32::try_from(transfers).unwrap_or(u32::MAX)
}

/// The request's tenant, admitted by its rate limit for one operation: over its limit, `429`.
pub struct Admitted(pub TenantId);

impl<S> FromRequestParts<S> for Admitted
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Tenant(tenant) = Tenant::from_request_parts(parts, state).await?;
        spend(&AppState::from_ref(state), &tenant, 1).await?;
        Ok(Admitted(tenant))
    }
}
