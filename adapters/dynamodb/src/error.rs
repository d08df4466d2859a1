//! How SDK errors map onto the port's `StoreError`.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use ledger::port::StoreError;

/// Error codes DynamoDB uses for load and transient faults.
const TRANSIENT_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
];

pub(crate) fn is_transient_code(code: Option<&str>) -> bool {
    code.is_some_and(|c| TRANSIENT_CODES.contains(&c))
}

/// An SDK error as the port reports it: unavailable (the SDK's retries are spent on a timeout, a
/// dispatch failure or a transient code), or unexpected.
pub(crate) fn sdk<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let shown = || format!("{}", aws_smithy_types::error::display::DisplayErrorContext(&err));
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreError::Unavailable(shown())
        }
        SdkError::ServiceError(service) if is_transient_code(service.err().code()) => {
            StoreError::Unavailable(service.err().code().unwrap_or_default().to_owned())
        }
        _ => StoreError::Unexpected(shown()),
    }
}

/// Whether `err` is a failed condition of a single-item write.
pub(crate) fn is_condition_failed<E, R>(err: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

/// A write whose failed condition means there was nothing to do: done either way.
pub(crate) fn moot_unless_written<T, E, R>(sent: Result<T, SdkError<E, R>>) -> Result<(), StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match sent {
        Ok(_) => Ok(()),
        Err(err) if is_condition_failed(&err) => Ok(()),
        Err(err) => Err(sdk(err)),
    }
}

/// A builder that failed to build (a required field missing): a fault of this code.
pub(crate) fn unbuilt(err: impl std::fmt::Display) -> StoreError {
    StoreError::Unexpected(err.to_string())
}
