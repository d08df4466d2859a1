//! The one place the SDK clients are set up: their retry and timeout behaviour, the roots their HTTPS
//! client trusts, and region and credentials taken from Lambda's environment. Throttling and
//! transient errors are retried by the SDK (standard mode: exponential backoff with full jitter);
//! what is still failing after that surfaces as `StoreError::Unavailable`.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, Region};
use aws_sdk_dynamodb::config::interceptors::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, RuntimeComponents};
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use ledger_telemetry::metrics;

/// Attempts per call, the first included.
pub const MAX_ATTEMPTS: u32 = 4;

/// The shared SDK configuration, to be loaded once at init. Callers may add to it (the local stack
/// and the tests point it at the emulator).
pub fn config_loader() -> ConfigLoader {
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
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
        );
    from_environment(loader)
}

/// Region and credentials straight from the environment when it names them, as Lambda's does (the
/// region, and the role's session credentials). The default chains would pick exactly these, as
/// both try the environment first, but building them took 0.5 ms of each cold start.
fn from_environment(mut loader: ConfigLoader) -> ConfigLoader {
    let set = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if let Some(region) = set("AWS_REGION") {
        loader = loader.region(Region::new(region));
    }
    if set("AWS_ACCESS_KEY_ID").is_some() && set("AWS_SECRET_ACCESS_KEY").is_some() {
        loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
    }
    loader
}

/// The HTTPS client of every SDK client: rustls trusting only the roots AWS endpoints chain to
/// (Amazon Trust Services' Amazon Root CA 1-4, and the Starfield root that cross-signs them, as
/// AWS documents), taken from Mozilla's set compiled into the binary (webpki-root-certs).
/// Loading the OS store (a bundle, then every file of /etc/ssl/certs) was half of each function's
/// init time (`cargo stack bench cold-start`), and a certificate mis-issued by any other CA cannot
/// stand in for DynamoDB or SQS.
fn https_client() -> SharedHttpClient {
    let roots = TrustStore::empty().with_pem_certificate(pem_bundle(aws_roots()));
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        // Building the context only moves the store in; were it to fail, the OS store would do.
        .tls_context(TlsContext::builder().with_trust_store(roots).build().unwrap_or_default())
        .build_https()
}

/// Names in the subject of the roots AWS endpoints chain to.
const AWS_ROOT_SUBJECTS: [&[u8]; 2] =
    [b"Amazon Root CA ", b"Starfield Services Root Certificate Authority - G2"];

/// The DER certificates of those roots.
fn aws_roots() -> impl Iterator<Item = &'static [u8]> {
    let subjects = AWS_ROOT_SUBJECTS.map(memchr::memmem::Finder::new);
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|c| c.as_ref())
        .filter(move |der: &&[u8]| subjects.iter().any(|subject| subject.find(der).is_some()))
}

/// DER certificates as one PEM bundle, the form the SDK's trust store takes.
fn pem_bundle<'a>(certificates: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut pem = String::new();
    for der in certificates {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        pem.push_str(&BASE64.encode(der));
        pem.push_str("\n-----END CERTIFICATE-----\n");
    }
    pem.into_bytes()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_trusts_exactly_the_roots_aws_endpoints_chain_to() {
        let contains = |der: &[u8], name: &[u8]| memchr::memmem::find(der, name).is_some();
        let roots: Vec<&[u8]> = aws_roots().collect();
        assert_eq!(roots.len(), 5);
        for n in 1..=4 {
            let name = format!("Amazon Root CA {n}");
            assert!(roots.iter().any(|der| contains(der, name.as_bytes())), "{name}");
        }
        assert!(roots.iter().any(|der| contains(der, AWS_ROOT_SUBJECTS[1])));
        let pem = String::from_utf8(pem_bundle(aws_roots())).unwrap();
        assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----").count(), 5);
    }

    #[tokio::test]
    async fn a_client_builds_its_tls_connector_from_the_bundle() {
        // Building the client builds its TLS connector, which parses the bundle (the SDK panics on
        // a certificate it cannot parse).
        let sdk = config_loader()
            .region(Region::new("eu-west-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("a", "b", None, None, "test"))
            .load()
            .await;
        let client = dynamodb_client(&sdk);
        assert_eq!(client.config().region().map(|r| r.as_ref()), Some("eu-west-1"));
    }
}
