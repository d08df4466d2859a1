//! The ledger's telemetry, shared by both functions and the local stack so that what runs locally is
//! what runs in AWS:
//! - `logs`: one JSON object per line, span fields (request id, correlation id, tenant, ids) flattened
//!   onto it, level from the environment;
//! - `metrics`: the catalogue of metrics and the one function that records each, written as
//!   CloudWatch Embedded Metric Format by `metrics_cloudwatch_embedded`;
//! - `correlation`: the correlation id and X-Ray trace header that travel from the API through SQS
//!   to the worker;
//! - `lambda`: the run loop that flushes the metrics after every invocation.

pub mod correlation;
pub mod lambda;
pub mod logs;
pub mod metrics;

pub use correlation::{CorrelationId, TraceContext};
pub use ledger_config::TelemetryConfig;
pub use metrics::Function;

/// Initialises logs and metrics for one function, once per execution environment (a cold start).
pub fn init(
    function: Function,
    config: &TelemetryConfig,
) -> Result<&'static metrics::Collector, lambda_runtime::Error> {
    logs::init(config);
    let collector = metrics::init(config)?;
    metrics::cold_start(function);
    Ok(collector)
}
