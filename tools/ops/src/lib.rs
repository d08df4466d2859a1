//! Operations on a running ledger that work the same against the local stack and a deployed stack
//! (they use only the SQS API): `cargo stack dlq list|redrive` calls them.

pub mod dlq;
