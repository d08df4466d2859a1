//! The ledger's store on DynamoDB: the port (`ledger::port`) on one table (key design in `keys`).
//! Every transfer is decided by the one engine (`ledger::engine`) and written here as conditional
//! TransactWriteItems (`writer`); every key starts with the tenant.

mod accounts;
mod balance_cache;
mod book;
mod books;
mod cancel;
pub mod chains;
mod changes;
pub mod client;
mod correlation;
mod error;
pub mod events;
pub mod expiry;
pub mod export;
mod history;
pub mod items;
pub mod keys;
mod limits;
mod reads;
mod reconciliations;
pub mod search;
mod shard_history;
mod shards;
mod store;
mod submissions;
mod turns;
pub mod webhooks;
mod writer;

pub use store::DynamoStore;
pub use writer::{MAX_TRANSACTION_BYTES, MAX_TRANSACTION_ITEMS};
