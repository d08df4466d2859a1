//! Correctness under concurrency and faults, against a reference model: a Jepsen-style bank, and a
//! model-based test of every operation on every route.

mod bank;
mod model;
