//! The one place the DynamoDB client's retry and timeout behaviour is set. Throttling and transient
//! errors are retried by the SDK (standard mode: exponential backoff with full jitter); what is
//! still failing after that surfaces as `StoreError::Unavailable`.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader};
use aws_sdk_dynamodb::config::interceptors::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use ledger_telemetry::metrics;

/// Attempts per call, the first included.
pub const MAX_ATTEMPTS: u32 = 4;

/// The shared SDK configuration, to be loaded once at init. Callers may add to it (the local stack
/// and the tests point it at the emulator).
pub fn config_loader() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(25))
                .with_max_backoff(Duration::from_millis(500)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(Duration::from_secs(2))
                .operation_timeout(Duration::from_secs(6))
                .build(),
        )
}

/// The DynamoDB client, counting retries and throttles into the metrics.
pub fn dynamodb_client(config: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::config::Builder::from(config).interceptor(CallMetrics).build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// Counts every attempt after the first as a retry, and every attempt DynamoDB refused for
/// throughput (throttling, or a transaction cancelled for it) as a throttle.
#[derive(Debug)]
struct CallMetrics;

/// Error names DynamoDB uses for throughput refusals (the last one is a transaction's cancellation
/// reason).
const THROTTLE_ERRORS: [&str; 4] =
    ["ProvisionedThroughputExceeded", "ThrottlingException", "RequestLimitExceeded", "ThrottlingError"];

impl Intercept for CallMetrics {
    fn name(&self) -> &'static str {
        "LedgerCallMetrics"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<RequestAttempts>().is_some_and(|a| a.attempts() > 1) {
            metrics::dynamodb_retry();
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // The orchestrator has buffered an error response's body by now, so it can be read here.
        let throttled = context.response().is_some_and(|response| {
            response.status().as_u16() == 400
                && response.body().bytes().is_some_and(|body| {
                    let body = String::from_utf8_lossy(body);
                    THROTTLE_ERRORS.iter().any(|name| body.contains(name))
                })
        });
        if throttled {
            metrics::dynamodb_throttle();
        }
        Ok(())
    }
}
