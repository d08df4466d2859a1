//! The DynamoDB-backed store: a client, its table, and the balances this instance saw.

use std::sync::Arc;

use aws_sdk_dynamodb::Client;

use crate::balance_cache::BalanceCache;
use crate::turns::Turns;

/// The DynamoDB-backed ledger store. Cheap to clone (clones share the balance cache); build it once
/// at init, in a function's `main.rs`, and hand it on as `Arc<dyn ledger::port::Store>`.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    pub(crate) client: Client,
    pub(crate) table: String,
    pub(crate) balances: Arc<BalanceCache>,
    pub(crate) turns: Arc<Turns>,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), balances: Arc::default(), turns: Arc::default() }
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

pub(crate) use crate::correlation::current_correlation;
