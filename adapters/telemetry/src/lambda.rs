//! The Lambda run loops: lambda_runtime's tracing span (request id, X-Ray trace id) around each
//! invocation, and a metrics flush after it, so each invocation's EMF lines carry its request id.

use metrics_cloudwatch_embedded::lambda::service;

use crate::metrics::Collector;

/// Serves an HTTP router (API Gateway events).
pub async fn run_http<S, R, E>(collector: &'static Collector, router: S) -> Result<(), lambda_runtime::Error>
where
    S: tower::Service<lambda_http::Request, Response = R, Error = E>,
    S::Future: Send + 'static,
    R: lambda_http::IntoResponse,
    E: std::fmt::Debug + Into<lambda_runtime::Diagnostic>,
{
    service::run_http(collector, router).await
}

pub use service::run;
