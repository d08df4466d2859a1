//! The functions' configuration, read once at init from the environment that template.yaml sets,
//! into typed values. The one place that names a variable or holds a default: both functions and
//! the local stack build their settings here.

/// The claim of the verified token that names the tenant, unless `TENANT_CLAIM` says otherwise.
pub const DEFAULT_TENANT_CLAIM: &str = "tenant_id";
pub const DEFAULT_METRICS_NAMESPACE: &str = "Ledger";
pub const DEFAULT_SERVICE_NAME: &str = "ledger";

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} is {value:?}: {why}")]
    Invalid { name: &'static str, value: String, why: String },
}

/// Where the settings come from: the process environment in a function, a map in tests.
pub trait Source {
    /// The variable's value; an empty value counts as unset.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct Environment;

impl Source for Environment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl<const N: usize> Source for [(&str, &str); N] {
    fn var(&self, name: &str) -> Option<String> {
        self.iter().find(|(k, v)| *k == name && !v.trim().is_empty()).map(|(_, v)| (*v).to_owned())
    }
}

fn required(source: &impl Source, name: &'static str) -> Result<String, ConfigError> {
    source.var(name).ok_or(ConfigError::Missing(name))
}

/// Logs and metrics of either function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// CloudWatch namespace of the EMF metrics (`METRICS_NAMESPACE`).
    pub metrics_namespace: String,
    /// The `service` dimension of every metric (`SERVICE_NAME`).
    pub service_name: String,
    /// `RUST_LOG`: per-target filter directives; wins over `lambda_log_level`.
    pub rust_log: Option<String>,
    /// `AWS_LAMBDA_LOG_LEVEL`: the level Lambda passes from the function's LoggingConfig.
    pub lambda_log_level: Option<String>,
}

impl TelemetryConfig {
    pub fn from_source(source: &impl Source) -> Self {
        Self {
            metrics_namespace: source
                .var("METRICS_NAMESPACE")
                .unwrap_or_else(|| DEFAULT_METRICS_NAMESPACE.into()),
            service_name: source.var("SERVICE_NAME").unwrap_or_else(|| DEFAULT_SERVICE_NAME.into()),
            rust_log: source.var("RUST_LOG"),
            lambda_log_level: source.var("AWS_LAMBDA_LOG_LEVEL"),
        }
    }

    pub fn from_env() -> Self {
        Self::from_source(&Environment)
    }
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self::from_source(&[])
    }
}

/// The tenant claim (`TENANT_CLAIM`), for the API function and the local stack's token issuer.
pub fn tenant_claim(source: &impl Source) -> String {
    source.var("TENANT_CLAIM").unwrap_or_else(|| DEFAULT_TENANT_CLAIM.into())
}

/// The tenant of each machine client whose tokens carry no tenant claim (`CLIENT_TENANTS`,
/// `client_id=tenant` pairs, comma separated): a client-credentials token names only its client.
pub fn client_tenants(
    source: &impl Source,
) -> Result<std::collections::BTreeMap<String, ledger::TenantId>, ConfigError> {
    let Some(value) = source.var("CLIENT_TENANTS") else { return Ok(Default::default()) };
    let invalid = |why: String| ConfigError::Invalid { name: "CLIENT_TENANTS", value: value.clone(), why };
    value
        .split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (client, tenant) =
                pair.split_once('=').ok_or_else(|| invalid(format!("{pair}: not client_id=tenant")))?;
            let tenant =
                ledger::TenantId::parse(tenant.trim()).map_err(|e| invalid(format!("{pair}: {e}")))?;
            match client.trim() {
                "" => Err(invalid(format!("{pair}: no client id"))),
                client => Ok((client.to_owned(), tenant)),
            }
        })
        .collect()
}

/// Every tenant's request limit: `TENANT_OPERATIONS_PER_SECOND` with bursts of `TENANT_BURST`
/// (default: one second's worth). Unset: no limit.
pub fn tenant_limit(source: &impl Source) -> Result<Option<ledger::RateLimit>, ConfigError> {
    let number = |name: &'static str| -> Result<Option<u32>, ConfigError> {
        source
            .var(name)
            .map(|value| {
                value.trim().parse().map_err(|e: std::num::ParseIntError| ConfigError::Invalid {
                    name,
                    value,
                    why: e.to_string(),
                })
            })
            .transpose()
    };
    let Some(per_second) = number("TENANT_OPERATIONS_PER_SECOND")? else { return Ok(None) };
    let given_burst = number("TENANT_BURST")?;
    let burst = given_burst.unwrap_or(per_second);
    ledger::RateLimit::new(per_second, burst).map(Some).map_err(|e| {
        let (name, value) = match given_burst {
            Some(0) => ("TENANT_BURST", 0),
            _ => ("TENANT_OPERATIONS_PER_SECOND", per_second),
        };
        ConfigError::Invalid { name, value: value.to_string(), why: e.to_string() }
    })
}

/// The API function's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiConfig {
    pub table_name: String,
    pub queue_url: String,
    /// Where webhook redeliveries and replays are queued.
    pub webhook_queue_url: String,
    pub webhook_urls: ledger::webhook::UrlPolicy,
    /// The KMS key that seals webhook signing secrets (its id, ARN or alias).
    pub webhook_secrets_key: String,
    pub tenant_claim: String,
    pub client_tenants: std::collections::BTreeMap<String, ledger::TenantId>,
    pub tenant_limit: Option<ledger::RateLimit>,
    pub telemetry: TelemetryConfig,
}

impl ApiConfig {
    pub fn from_source(source: &impl Source) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required(source, "TABLE_NAME")?,
            queue_url: required(source, "QUEUE_URL")?,
            webhook_queue_url: required(source, "WEBHOOK_QUEUE_URL")?,
            webhook_urls: webhook_url_policy(source),
            webhook_secrets_key: required(source, "WEBHOOK_SECRETS_KEY")?,
            tenant_claim: tenant_claim(source),
            client_tenants: client_tenants(source)?,
            tenant_limit: tenant_limit(source)?,
            telemetry: TelemetryConfig::from_source(source),
        })
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Environment)
    }
}

/// The sweeper's settings: the table, and telemetry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweeperConfig {
    pub table_name: String,
    pub telemetry: TelemetryConfig,
}

impl SweeperConfig {
    pub fn from_source(source: &impl Source) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required(source, "TABLE_NAME")?,
            telemetry: TelemetryConfig::from_source(source),
        })
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Environment)
    }
}

/// The auditor's settings: the table, the KMS key that signs digests, the bucket that archives
/// checkpoints, and telemetry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditorConfig {
    pub table_name: String,
    /// The asymmetric KMS key (`ECC_NIST_P256`, `SIGN_VERIFY`) that signs digests.
    pub digest_key: String,
    /// The S3 bucket (Object Lock, compliance mode) that keeps each checkpoint.
    pub archive_bucket: String,
    /// Whether S3 is addressed by path (a local emulator's endpoint, `AWS_ENDPOINT_URL_S3`) rather
    /// than by virtual host (AWS).
    pub s3_path_style: bool,
    pub telemetry: TelemetryConfig,
}

impl AuditorConfig {
    pub fn from_source(source: &impl Source) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required(source, "TABLE_NAME")?,
            digest_key: required(source, "DIGEST_KEY")?,
            archive_bucket: required(source, "ARCHIVE_BUCKET")?,
            s3_path_style: source.var("AWS_ENDPOINT_URL_S3").is_some(),
            telemetry: TelemetryConfig::from_source(source),
        })
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Environment)
    }
}

/// The worker's settings: the table, its queue (a batch that progressed but did not finish
/// continues in a new message there), and telemetry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerConfig {
    pub table_name: String,
    pub queue_url: String,
    pub telemetry: TelemetryConfig,
}

impl WorkerConfig {
    pub fn from_source(source: &impl Source) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required(source, "TABLE_NAME")?,
            queue_url: required(source, "QUEUE_URL")?,
            telemetry: TelemetryConfig::from_source(source),
        })
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Environment)
    }
}

/// The deliverer's settings: the table, its queue, what endpoint URLs it may reach, the attempt
/// timeout, and telemetry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DelivererConfig {
    pub table_name: String,
    pub queue_url: String,
    /// The KMS key that sealed the webhook signing secrets.
    pub webhook_secrets_key: String,
    pub url_policy: ledger::webhook::UrlPolicy,
    pub timeout: std::time::Duration,
    pub telemetry: TelemetryConfig,
}

impl DelivererConfig {
    pub fn from_source(source: &impl Source) -> Result<Self, ConfigError> {
        let seconds = match source.var("WEBHOOK_TIMEOUT_SECONDS") {
            None => 15,
            Some(raw) => raw.parse::<u64>().ok().filter(|s| (1..=30).contains(s)).ok_or_else(|| {
                ConfigError::Invalid {
                    name: "WEBHOOK_TIMEOUT_SECONDS",
                    value: raw.clone(),
                    why: "must be an integer from 1 to 30".into(),
                }
            })?,
        };
        Ok(Self {
            table_name: required(source, "TABLE_NAME")?,
            queue_url: required(source, "WEBHOOK_QUEUE_URL")?,
            webhook_secrets_key: required(source, "WEBHOOK_SECRETS_KEY")?,
            url_policy: webhook_url_policy(source),
            timeout: std::time::Duration::from_secs(seconds),
            telemetry: TelemetryConfig::from_source(source),
        })
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Environment)
    }
}

/// What webhook endpoint URLs a deployment accepts and reaches: public https ones, unless
/// `WEBHOOK_ALLOW_PRIVATE_URLS=true` (the local stack only: its receivers listen on loopback).
pub fn webhook_url_policy(source: &impl Source) -> ledger::webhook::UrlPolicy {
    match source.var("WEBHOOK_ALLOW_PRIVATE_URLS").as_deref() {
        Some("true") => ledger::webhook::UrlPolicy::LOCAL,
        _ => ledger::webhook::UrlPolicy::DEPLOYED,
    }
}

/// The publisher's settings: the bus its events go to, their `source`, and telemetry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublisherConfig {
    pub event_bus_name: String,
    pub event_source: String,
    /// Where webhook deliveries are queued.
    pub webhook_queue_url: String,
    pub telemetry: TelemetryConfig,
}

/// The `source` of the ledger's events on the bus, unless `EVENT_SOURCE` names another.
pub const DEFAULT_EVENT_SOURCE: &str = "ledger";

impl PublisherConfig {
    pub fn from_source(source: &impl Source) -> Result<Self, ConfigError> {
        Ok(Self {
            webhook_queue_url: required(source, "WEBHOOK_QUEUE_URL")?,
            event_bus_name: required(source, "EVENT_BUS_NAME")?,
            event_source: source.var("EVENT_SOURCE").unwrap_or_else(|| DEFAULT_EVENT_SOURCE.to_owned()),
            telemetry: TelemetryConfig::from_source(source),
        })
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Environment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_needs_its_table_and_queue_and_defaults_the_rest() {
        assert_eq!(ApiConfig::from_source(&[("TABLE_NAME", "t")]), Err(ConfigError::Missing("QUEUE_URL")));
        let config = ApiConfig::from_source(&[
            ("TABLE_NAME", "t"),
            ("QUEUE_URL", "q"),
            ("WEBHOOK_QUEUE_URL", "w"),
            ("TENANT_CLAIM", " "),
        ]);
        assert_eq!(config, Err(ConfigError::Missing("WEBHOOK_SECRETS_KEY")));
        let config = ApiConfig::from_source(&[
            ("TABLE_NAME", "t"),
            ("QUEUE_URL", "q"),
            ("WEBHOOK_QUEUE_URL", "w"),
            ("WEBHOOK_SECRETS_KEY", "alias/ledger-webhook-secrets"),
            ("TENANT_CLAIM", " "),
        ])
        .unwrap();
        assert_eq!(config.webhook_urls, ledger::webhook::UrlPolicy::DEPLOYED);
        assert_eq!(config.tenant_claim, DEFAULT_TENANT_CLAIM);
        assert_eq!(config.telemetry.metrics_namespace, "Ledger");
        assert_eq!(config.telemetry.rust_log, None);
        assert_eq!(config.tenant_limit, None);
    }

    #[test]
    fn client_tenants_are_pairs_of_client_and_tenant() {
        assert!(client_tenants(&[]).unwrap().is_empty());
        let map = client_tenants(&[("CLIENT_TENANTS", "abc123=acme, def456=globex,")]).unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(map["def456"].as_str(), "globex");
        for bad in ["abc123", "=acme", "abc=not a tenant"] {
            assert!(
                matches!(client_tenants(&[("CLIENT_TENANTS", bad)]), Err(ConfigError::Invalid { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_tenant_limit_is_a_rate_and_a_burst_that_defaults_to_one_seconds_worth() {
        let limit = tenant_limit(&[("TENANT_OPERATIONS_PER_SECOND", "50")]).unwrap().unwrap();
        assert_eq!((limit.per_second(), limit.burst()), (50, 50));
        let limit = tenant_limit(&[("TENANT_OPERATIONS_PER_SECOND", "50"), ("TENANT_BURST", "1000")])
            .unwrap()
            .unwrap();
        assert_eq!(limit.burst(), 1000);
        assert!(matches!(
            tenant_limit(&[("TENANT_OPERATIONS_PER_SECOND", "fifty")]),
            Err(ConfigError::Invalid { name: "TENANT_OPERATIONS_PER_SECOND", .. })
        ));
        assert!(matches!(
            tenant_limit(&[("TENANT_OPERATIONS_PER_SECOND", "0")]),
            Err(ConfigError::Invalid { name: "TENANT_OPERATIONS_PER_SECOND", .. })
        ));
        assert!(matches!(
            tenant_limit(&[("TENANT_OPERATIONS_PER_SECOND", "5000")]),
            Err(ConfigError::Invalid { name: "TENANT_OPERATIONS_PER_SECOND", .. })
        ));
        assert!(matches!(
            tenant_limit(&[("TENANT_OPERATIONS_PER_SECOND", "5"), ("TENANT_BURST", "0")]),
            Err(ConfigError::Invalid { name: "TENANT_BURST", .. })
        ));
        assert_eq!(tenant_limit(&[("TENANT_BURST", "10")]), Ok(None));
    }

    #[test]
    fn the_sweeper_needs_only_its_table_and_the_worker_its_queue_too() {
        assert_eq!(SweeperConfig::from_source(&[]), Err(ConfigError::Missing("TABLE_NAME")));
        let config =
            SweeperConfig::from_source(&[("TABLE_NAME", "t"), ("SERVICE_NAME", "payments")]).unwrap();
        assert_eq!((config.table_name.as_str(), config.telemetry.service_name.as_str()), ("t", "payments"));
        assert_eq!(WorkerConfig::from_source(&[("TABLE_NAME", "t")]), Err(ConfigError::Missing("QUEUE_URL")));
        let config = WorkerConfig::from_source(&[("TABLE_NAME", "t"), ("QUEUE_URL", "q")]).unwrap();
        assert_eq!((config.table_name.as_str(), config.queue_url.as_str()), ("t", "q"));
    }

    #[test]
    fn the_auditor_needs_its_key_and_bucket_and_addresses_a_local_s3_by_path() {
        assert_eq!(
            AuditorConfig::from_source(&[("TABLE_NAME", "t")]),
            Err(ConfigError::Missing("DIGEST_KEY"))
        );
        let aws = [("TABLE_NAME", "t"), ("DIGEST_KEY", "k"), ("ARCHIVE_BUCKET", "b")];
        let config = AuditorConfig::from_source(&aws).unwrap();
        assert_eq!((config.digest_key.as_str(), config.archive_bucket.as_str()), ("k", "b"));
        assert!(!config.s3_path_style);
        let local = [aws[0], aws[1], aws[2], ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:5000")];
        assert!(AuditorConfig::from_source(&local).unwrap().s3_path_style);
    }
}
