//! `cargo stack …`, the local tooling's commands (see `main.rs`): serving the whole backend locally,
//! its live dashboard, the load generator, the bench, and the capacity table.

pub mod bench;
pub mod browser;
pub mod capacity;
pub mod dashboard;
pub mod load;
pub mod local;
