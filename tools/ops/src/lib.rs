//! Operations on a running ledger that work the same against the local stack and a deployed stack:
//! `cargo stack dlq list|redrive` (the SQS API only) and `cargo stack drill` (a restore, proven
//! whole) call them.

pub mod dlq;
pub mod drill;
