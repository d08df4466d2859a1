//! The store contract on DynamoDB Local (the same list the fast tier runs on the memory store),
//! through the real aws-sdk-dynamodb client over HTTP, and what only the DynamoDB store does: its
//! retries and its transaction limits, its cache, its faults.

harness::contract_tests!(harness::fresh_stack().await.store);

mod auditor;
mod chains;
mod drill;
mod hot;
mod search;
mod store;
