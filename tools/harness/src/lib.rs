//! The local world the stack and the tests run in, shaped by template.yaml: the emulators (AWS's
//! DynamoDB Local, moto for SQS), the table and queues, the worker's event source with Lambda's
//! concurrency, faults on demand, development tokens, the functions' metrics read back, and the
//! tests' API client.

pub mod auth;
pub mod client;
pub mod emf;
pub mod emulators;
pub mod event_source;
pub mod faults;
pub mod install;
pub mod metrics;
pub mod paths;
pub mod queues;
pub mod receiver;
pub mod stack;
pub mod stream_source;
pub mod template;

pub use auth::DevAuth;
pub use client::{Api, Reply};
pub use emulators::Emulators;
pub use faults::{FaultPlan, Faults};
pub use stack::{Stack, StackOptions, fresh_stack, fresh_stack_with, fresh_stack_with_events, local_router};
