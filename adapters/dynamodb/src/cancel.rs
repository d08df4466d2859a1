//! Why DynamoDB cancelled a transaction, read the same way by every path, for writes and snapshot
//! reads alike: which items' own conditions failed, or whether the transaction only met another one
//! (or a capacity limit) and can simply be redone.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_get_items::TransactGetItemsError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::CancellationReason;

use ledger::port::StoreError;

use crate::error::{is_transient_code, sdk};

/// A cancelled transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Cancelled {
    /// The conditions of these items (by position) failed: the state differs from what was read.
    Conditions(Vec<usize>),
    /// Another transaction held one of the items, or the throughput ran out: redo it.
    Contended,
}

/// What the cancellation of `err` says, or `err` as a store error if it is no cancellation (or one
/// for a reason redoing cannot cure, such as an item over the size limit).
pub(crate) fn cancellation<R>(err: SdkError<TransactWriteItemsError, R>) -> Result<Cancelled, StoreError>
where
    R: std::fmt::Debug,
{
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
            classify(cancelled.cancellation_reasons())
        }
        _ => Err(sdk(err)),
    }
}

/// The items whose own conditions failed, by position, as the cancellation returned them (those
/// written with `ReturnValuesOnConditionCheckFailure::AllOld`).
pub(crate) fn failed_items<R>(
    err: &SdkError<TransactWriteItemsError, R>,
) -> Vec<(usize, crate::items::Item)> {
    let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) = err.as_service_error()
    else {
        return Vec::new();
    };
    cancelled
        .cancellation_reasons()
        .iter()
        .enumerate()
        .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
        .filter_map(|(i, r)| r.item().map(|item| (i, item.clone())))
        .collect()
}

/// As `cancellation`, for a TransactGetItems (which has no conditions of its own).
pub(crate) fn read_cancellation<R>(err: SdkError<TransactGetItemsError, R>) -> Result<Cancelled, StoreError>
where
    R: std::fmt::Debug,
{
    match err.as_service_error() {
        Some(TransactGetItemsError::TransactionCanceledException(cancelled)) => {
            classify(cancelled.cancellation_reasons())
        }
        _ => Err(sdk(err)),
    }
}

fn classify(reasons: &[CancellationReason]) -> Result<Cancelled, StoreError> {
    let codes: Vec<Option<&str>> = reasons.iter().map(|r| r.code()).collect();
    let conditions: Vec<usize> = codes
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == Some("ConditionalCheckFailed"))
        .map(|(i, _)| i)
        .collect();
    // A cancellation reason names throughput without the `Exception` suffix of an error code.
    let curable = |c: &Option<&str>| {
        matches!(
            c,
            None | Some(
                "None"
                    | "ConditionalCheckFailed"
                    | "TransactionConflict"
                    | "ThrottlingError"
                    | "ProvisionedThroughputExceeded"
            )
        ) || is_transient_code(*c)
    };
    if !codes.iter().all(curable) {
        return Err(StoreError::Unexpected(format!("transaction cancelled: {codes:?}")));
    }
    Ok(if conditions.is_empty() { Cancelled::Contended } else { Cancelled::Conditions(conditions) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(codes: &[&str]) -> Vec<CancellationReason> {
        codes.iter().map(|c| CancellationReason::builder().code(*c).build()).collect()
    }

    #[test]
    fn conflicts_and_throughput_are_redone_failed_conditions_named_the_rest_unexpected() {
        for codes in [
            &["None", "TransactionConflict"][..],
            &["ThrottlingError", "None"],
            &["ProvisionedThroughputExceeded"],
        ] {
            assert!(matches!(classify(&reasons(codes)), Ok(Cancelled::Contended)), "{codes:?}");
        }
        let failed = classify(&reasons(&["None", "ConditionalCheckFailed", "TransactionConflict"]));
        assert_eq!(failed.ok(), Some(Cancelled::Conditions(vec![1])));
        for codes in [&["ValidationError"][..], &["None", "ItemCollectionSizeLimitExceeded"]] {
            assert!(matches!(classify(&reasons(codes)), Err(StoreError::Unexpected(_))), "{codes:?}");
        }
    }
}
