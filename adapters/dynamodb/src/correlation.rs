//! The request the running work serves.

/// The id of the request the running work serves (`ledger_telemetry::correlation::scope`): what
/// the items it writes record as their cause.
pub(crate) fn current_correlation() -> Option<String> {
    ledger_telemetry::correlation::current().map(|c| c.as_str().to_owned())
}
