//! Correctness under concurrency and faults, against a reference model: a Jepsen-style bank, and a
//! model-based test of every operation on every route.

mod bank;
mod model;

/// The two tests take turns. Each runs its own clients, worker invocations and faults; side by side
/// on two cores they overloaded DynamoDB Local until the model test's compressed deadlines (an
/// 8-second visibility timeout) passed with no write of a batch landing, and the batch went
/// unsettled. Neither test needs the other's load: each makes its own concurrency.
async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}
