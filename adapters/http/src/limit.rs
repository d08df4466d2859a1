//! Per-tenant request limits at the HTTP edge. Every request that names a tenant spends one
//! operation of that tenant's bucket before its body is read (`extract::Tenant`), except a batch
//! or a linked chain, which spends one per transfer at once, as soon as its body parses and before
//! anything is written (`extract::SubmittingTenant`): a tenant's limit bounds the work it causes,
//! not only its requests.

use ledger::TenantId;
use ledger_dynamodb::Admission;
use time::OffsetDateTime;

use crate::problem::ApiError;
use crate::state::AppState;

/// Spends `operations` of `tenant`'s bucket, or refuses with `429`. Without limits configured,
/// everything passes. If the store cannot be asked, the request fails as any store call does
/// (`503`): a limit that let requests through whenever its item is throttled would give way
/// exactly under the flood it is for.
pub async fn spend(app: &AppState, tenant: &TenantId, operations: u32) -> Result<(), ApiError> {
    let Some(limits) = &app.limits else { return Ok(()) };
    match limits.admit(tenant, operations, OffsetDateTime::now_utc()).await? {
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
