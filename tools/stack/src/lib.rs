//! `cargo stack …`, the local tooling's commands (see `main.rs`): serving the whole backend locally,
//! its live dashboard, the load generator, the bench, and the capacity table.

pub mod bench;
pub mod browser;
pub mod capacity;
pub mod cold_start;
pub mod cost;
pub mod dashboard;
pub mod events_bench;
pub mod functions;
pub mod listen;
pub mod load;
pub mod local;
pub mod runtime_api;

/// A duration in milliseconds, as the commands print them.
pub fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Any error as an `io::Error`, the error of the commands' I/O-bound steps.
pub fn io_error(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// `cargo`, as the one running this tool, without the variables `cargo run` set for this process:
/// build scripts that watch them would otherwise rebuild half the dependencies.
pub fn cargo() -> std::process::Command {
    let mut cargo = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let ours =
            ["CARGO_HOME", "CARGO_TARGET_DIR"].contains(&name.as_ref()) || name.starts_with("CARGO_TERM");
        if name.starts_with("CARGO_") && !ours {
            cargo.env_remove(name.as_ref());
        }
    }
    cargo.current_dir(harness::paths::workspace_root());
    cargo
}
