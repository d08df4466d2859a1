//! The local world the stack and the tests run in: a backend in process (`memory`, the fast tier)
//! or on the emulators shaped by template.yaml (AWS's DynamoDB Local, moto for SQS: `emulated`), the
//! worker's event source with Lambda's concurrency, faults on demand, development tokens, the
//! functions' metrics read back, the tests' API client, and what runs on either backend: the store
//! contract (`contract`) and the API's scenarios (`scenarios`).

pub mod auth;
pub mod backend;
pub mod client;
pub mod clock;
pub mod contract;
pub mod emf;
pub mod emulated;
pub mod emulators;
pub mod event_source;
pub mod faults;
pub mod flood;
pub mod install;
pub mod instances;
pub mod memory;
pub mod metrics;
pub mod paths;
pub mod queues;
pub mod receiver;
pub mod scenarios;
pub mod stream_source;
pub mod template;

pub use auth::DevAuth;
pub use backend::Backend;
pub use client::{Api, Reply};
pub use clock::ManualClock;
pub use emulated::{
    EmulatedStack, StackOptions, fresh_stack, fresh_stack_with, fresh_stack_with_events, local_router,
};
pub use emulators::Emulators;
pub use faults::{FaultPlan, Faults};
pub use memory::MemoryStack;
