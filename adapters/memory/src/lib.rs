//! The ledger's store in process: the port (`ledger::port`) on in-memory tables, for the fast test
//! tier. Not a mock: it keeps DynamoDB's semantics where
//! they matter to the ledger, and the transfer paths run the same engine (`ledger::engine`) on it:
//!
//! - a read is one consistent snapshot; the engine plans outside any lock;
//! - a write is all-or-nothing and conditioned on what was read (an id still absent or still this
//!   submission's claim, a balance still at its version, a hold still pending, a reversed sum
//!   still as read, a batch's cursor still where it stood), so concurrent writers conflict and the
//!   engine reads and plans again, as on DynamoDB;
//! - creates are put-if-absent, replays compare what is stored.
//!
//! One contract suite (`harness::contract`) holds it and the DynamoDB store to the same behaviour;
//! DynamoDB Local stays the truth for everything the suite does not cover.

mod accounts;
mod book;
mod books;
mod changes;
mod events;
mod limits;
mod queues;
mod reconciliations;
mod search;
mod store;
mod submissions;
mod tables;
mod webhooks;

pub use books::MemoryArchive;
pub use queues::MemoryQueues;
pub use store::MemoryStore;
