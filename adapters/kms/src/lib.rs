//! The ledger's uses of KMS: sealing webhook signing secrets (`ledger::port::Sealer`, by envelope
//! encryption) and signing digests (`ledger::port::Notary`, with an asymmetric key). Each has a
//! twin under a key of the process's own, for the fast test tier.

mod error;
mod notary;
mod sealer;

pub use notary::{KmsNotary, LocalNotary};
pub use sealer::{KmsSealer, LocalSealer};
