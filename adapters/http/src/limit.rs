//! Per-tenant request limits at the HTTP edge. Every request that names a tenant spends one
//! operation of that tenant's bucket before its body is read (`extract::Tenant`); a batch or a
//! linked chain then spends one more per transfer beyond the first, once its body parses, so a
//! tenant's limit bounds the work it causes, not only its requests.

use ledger::TenantId;
use ledger_dynamodb::Admission;
use time::OffsetDateTime;

use crate::problem::ApiError;
use crate::state::AppState;

/// Spends `operations` of `tenant`'s bucket, or refuses with `429`. Without limits configured,
/// everything passes. If the store cannot be asked, the request passes (and a warning is logged):
/// the limit protects capacity; it must not take the ledger down with it.
pub async fn spend(app: &AppState, tenant: &TenantId, operations: u32) -> Result<(), ApiError> {
    let Some(limits) = app.limits.as_ref().filter(|_| operations > 0) else { return Ok(()) };
    match limits.admit(tenant, operations, OffsetDateTime::now_utc()).await {
        Ok(Admission::Admitted) => Ok(()),
        Ok(Admission::Limited { retry_after }) => {
            ledger_telemetry::metrics::request_limited();
            Err(ApiError::RateLimited { retry_after, limit: limits.limit() })
        }
        Err(err) => {
            tracing::warn!(error = %err, "request limit not checked: admitted");
            Ok(())
        }
    }
}

/// What a submission of `transfers` spends beyond the request itself.
pub fn beyond_the_request(transfers: usize) -> u32 {
    u32::try_from(transfers.saturating_sub(1)).unwrap_or(u32::MAX)
}
