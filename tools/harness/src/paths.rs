//! Where the project's files are, found from this crate's location (two levels below the root).

use std::path::PathBuf;

pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.ancestors().nth(2).map(PathBuf::from).unwrap_or(manifest)
}

pub fn template() -> PathBuf {
    workspace_root().join("template.yaml")
}

/// The project-local tools: a Python venv (moto, and CI's SAM CLI, cfn-lint, cargo-lambda) and,
/// beside its Python, DynamoDB Local.
pub fn venv() -> PathBuf {
    workspace_root().join(".venv")
}

/// checkov's own venv, inside the project's (its pins conflict with SAM CLI's).
pub fn scanner_venv() -> PathBuf {
    venv().join("scanner")
}

/// schemathesis's own venv, inside the project's.
pub fn fuzzer_venv() -> PathBuf {
    venv().join("fuzzer")
}

pub fn venv_python() -> PathBuf {
    venv().join("bin").join("python")
}

/// DynamoDB Local: `DynamoDBLocal.jar` and its `DynamoDBLocal_lib/`.
pub fn dynamodb_local() -> PathBuf {
    venv().join("dynamodb-local")
}

/// Local state that is not committed (the dev signing key, the running stack's addresses).
pub fn local_dir() -> PathBuf {
    workspace_root().join(".local")
}

/// Where tests write what they produce (under target/, never into tracked files).
pub fn test_output() -> PathBuf {
    workspace_root().join("target").join("test-output")
}
