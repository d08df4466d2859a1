//! The store's one error type, and how SDK errors map onto it.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use ledger::LedgerError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The ledger refused the operation: the caller's request is at fault.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// DynamoDB stayed throttled or unreachable through every retry, or the items stayed contended:
    /// the same request may succeed later.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// A stored item does not parse: a fault of the store, never of the request.
    #[error("corrupt item: {0}")]
    Corrupt(String),
    /// Anything else DynamoDB answered that the code does not expect.
    #[error("unexpected store error: {0}")]
    Unexpected(String),
}

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

impl<E, R> From<SdkError<E, R>> for StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    fn from(err: SdkError<E, R>) -> Self {
        match &err {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
                StoreError::Unavailable(format!(
                    "{}",
                    aws_smithy_types::error::display::DisplayErrorContext(&err)
                ))
            }
            SdkError::ServiceError(service) if is_transient_code(service.err().code()) => {
                StoreError::Unavailable(service.err().code().unwrap_or_default().to_owned())
            }
            _ => StoreError::Unexpected(format!(
                "{}",
                aws_smithy_types::error::display::DisplayErrorContext(&err)
            )),
        }
    }
}

/// A write whose failed condition means there was nothing to do: done either way.
pub(crate) fn moot_unless_written<T, E, R>(sent: Result<T, SdkError<E, R>>) -> Result<(), StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match sent {
        Ok(_) => Ok(()),
        Err(err)
            if err.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException") =>
        {
            Ok(())
        }
        Err(err) => Err(err.into()),
    }
}
