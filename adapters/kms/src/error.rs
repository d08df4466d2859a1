//! KMS's failures as the store's: the service unavailable.

use ledger::port::StoreError;

pub(crate) fn kms_error(err: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("KMS: {err}"))
}
