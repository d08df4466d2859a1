//! Where the project's files are, found from this crate's location (two levels below the root).

use std::path::PathBuf;

pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.ancestors().nth(2).map(PathBuf::from).unwrap_or(manifest)
}

pub fn template() -> PathBuf {
    workspace_root().join("template.yaml")
}

/// The project-local Python environment holding the emulator (and CI's tools).
pub fn venv() -> PathBuf {
    workspace_root().join(".venv")
}

pub fn venv_python() -> PathBuf {
    std::env::var_os("LEDGER_PYTHON").map(PathBuf::from).unwrap_or_else(|| venv().join("bin").join("python"))
}

/// Local state that is not committed (the dev signing key).
pub fn local_dir() -> PathBuf {
    workspace_root().join(".local")
}
