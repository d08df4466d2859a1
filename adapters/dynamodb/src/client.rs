//! The one place the DynamoDB client's retry and timeout behaviour is set. Throttling and transient
//! errors are retried by the SDK (standard mode: exponential backoff with full jitter); what is
//! still failing after that surfaces as `StoreError::Unavailable`.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader};

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
