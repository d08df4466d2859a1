//! Local tooling: the emulator, tables created from template.yaml, development tokens, and the
//! pieces the one-command local stack (`devstack`) and the tests share.

pub mod auth;
pub mod emulator;
pub mod paths;
pub mod setup;
pub mod template;
pub mod throttle;

use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use ledger_dynamodb::DynamoStore;
use ledger_http::AppState;

pub use auth::DevAuth;
pub use emulator::Emulator;

/// The template's logical id of the ledger table.
pub const LEDGER_TABLE: &str = "LedgerTable";

/// Creates the ledger table under `name` in the emulator, shaped as template.yaml declares it.
pub async fn create_ledger_table(emulator: &Emulator, name: &str) -> std::io::Result<DynamoStore> {
    let client = emulator.dynamodb().await;
    template::table(&paths::template(), LEDGER_TABLE)?.create(&client, name).await?;
    Ok(DynamoStore::new(client, name))
}

/// A ledger table of its own for one test, in the process's shared emulator: tests run in parallel
/// without seeing each other's data.
pub async fn fresh_store() -> DynamoStore {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = format!("ledger-test-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
    match create_ledger_table(Emulator::shared(), &name).await {
        Ok(store) => store,
        Err(err) => panic!("cannot create table {name}: {err}"),
    }
}

/// The API router as the local stack serves it: API Gateway's JWT check in front of the same router
/// the Lambda function runs.
pub fn local_router(state: AppState, auth: DevAuth) -> Router {
    ledger_http::router(state).layer(axum::middleware::from_fn_with_state(auth, auth::authorize))
}
