//! JSON logs: one object per line with `timestamp`, `level`, `target`, `message`, the event's fields
//! and the fields of every enclosing span flattened on top (Lambda's `requestId` and `xrayTraceId`,
//! and the ledger's `function`, `correlationId`, `tenant`, `transferId`, …), so a log query can filter
//! on any of them. An event must not repeat a field of its spans: the key would appear twice.

use json_subscriber::JsonLayer;
use ledger_config::TelemetryConfig;
use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// `RUST_LOG` when set (it allows per-target directives), else the level Lambda passes from the
/// function's LoggingConfig (`AWS_LAMBDA_LOG_LEVEL`), else `info`.
pub fn level_filter(config: &TelemetryConfig) -> EnvFilter {
    filter_from(config.rust_log.clone(), config.lambda_log_level.clone())
}

fn filter_from(rust_log: Option<String>, lambda_level: Option<String>) -> EnvFilter {
    if let Some(filter) = rust_log.filter(|v| !v.trim().is_empty()).and_then(|d| EnvFilter::try_new(d).ok()) {
        return filter;
    }
    // Lambda's variable holds a plain level name (TRACE … FATAL); anything else means the default.
    let level = lambda_level.and_then(|l| match l.to_ascii_uppercase().as_str() {
        "FATAL" => Some(LevelFilter::ERROR),
        other => other.parse::<LevelFilter>().ok(),
    });
    EnvFilter::new(level.unwrap_or(LevelFilter::INFO).to_string())
}

/// The JSON layer, writing to `writer` (stdout in Lambda; a buffer in the log tests).
pub fn json_layer<S, W>(writer: W) -> JsonLayer<S, W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    let mut layer = JsonLayer::new(writer);
    layer
        .with_timer("timestamp", tracing_subscriber::fmt::time::SystemTime)
        .with_level("level")
        .with_target("target")
        .with_flattened_event()
        .with_top_level_flattened_span_list();
    layer
}

/// Installs the JSON logger on stdout for the whole process.
pub fn init(config: &TelemetryConfig) {
    tracing_subscriber::registry().with(level_filter(config)).with(json_layer(std::io::stdout)).init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_wins_then_lambda_level_then_info() {
        let f =
            |r: Option<&str>, l: Option<&str>| filter_from(r.map(Into::into), l.map(Into::into)).to_string();
        assert_eq!(f(Some("debug"), Some("ERROR")), "debug");
        assert_eq!(f(None, Some("WARN")), "warn");
        assert_eq!(f(Some(" "), Some("TRACE")), "trace");
        assert_eq!(f(None, None), "info");
        assert_eq!(f(None, Some("not a level!")), "info");
        assert_eq!(f(None, Some("FATAL")), "error");
    }
}
