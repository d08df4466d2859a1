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
pub mod noisy_neighbour;
pub mod runtime_api;
pub mod tenant_cost;

/// A duration in milliseconds, as the commands print them.
pub fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Any error as an `io::Error`, the error of the commands' I/O-bound steps.
pub fn io_error(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// `cargo`, as the one running this tool, without the variables `cargo run` set for this process
/// (build scripts that watch them would otherwise rebuild half the dependencies). The caller's own
/// Cargo settings (`CARGO_PROFILE_*`, `CARGO_INCREMENTAL`, `CARGO_TARGET_DIR`, …) pass through.
pub fn cargo() -> std::process::Command {
    let mut cargo = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if set_by_cargo_run(&name) {
            cargo.env_remove(name.as_ref());
        }
    }
    cargo.current_dir(harness::paths::workspace_root());
    cargo
}

/// What `cargo run` sets for the process it starts (Cargo's reference, "Environment variables Cargo
/// sets for crates").
fn set_by_cargo_run(name: &str) -> bool {
    const SET: [&str; 7] = [
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_RUSTC_CURRENT_DIR",
        "CARGO_TARGET_TMPDIR",
    ];
    SET.iter().any(|set| name.starts_with(set))
}

#[cfg(test)]
mod tests {
    use super::set_by_cargo_run;

    #[test]
    fn cargo_drops_what_cargo_run_set_and_keeps_the_callers_settings() {
        for set in ["CARGO_PKG_NAME", "CARGO_PKG_VERSION_MAJOR", "CARGO_MANIFEST_DIR", "CARGO_BIN_NAME"] {
            assert!(set_by_cargo_run(set), "{set}");
        }
        for setting in [
            "CARGO_PROFILE_DEV_DEBUG",
            "CARGO_INCREMENTAL",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_TERM_COLOR",
            "CARGO_BUILD_JOBS",
        ] {
            assert!(!set_by_cargo_run(setting), "{setting}");
        }
        // The command itself: `cargo test` sets the package's variables for this test, as `cargo run` does.
        let command = super::cargo();
        assert!(command.get_envs().any(|(name, value)| name == "CARGO_PKG_NAME" && value.is_none()));
    }
}
