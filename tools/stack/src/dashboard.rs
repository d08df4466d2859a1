//! The local stack's live dashboard. The functions' code records metrics exactly as in Lambda; here
//! the EMF collector is flushed into `LocalMetrics` (after every request, and every 200 ms for the
//! worker), which reads the EMF lines back, keeps two minutes of per-second figures, samples the
//! queues, and serves them to the page at `/dashboard`, with an anomaly flag on each signal.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_sqs::types::QueueAttributeName;
use axum::Router;
use axum::response::{Html, Json};
use axum::routing::get;
use harness::emf;
use harness::metrics::local_metrics;
use ledger_telemetry::metrics;
use serde_json::{Value, json};

/// Seconds of history the page shows.
pub const WINDOW_SECONDS: u64 = 120;
/// Points the rolling band is computed from, and the fewest that make one.
const BAND_POINTS: usize = 60;
const BAND_MIN_POINTS: usize = 10;
/// Width of the band in standard deviations.
const BAND_SIGMAS: f64 = 3.0;

#[derive(Default)]
struct Second {
    committed: f64,
    rejected: f64,
    errors: f64,
    latencies: Vec<f64>,
    queue_depth: Option<f64>,
    dlq_depth: Option<f64>,
}

/// Per-second figures of the last minutes, fed by every flush of the local metrics.
pub struct Dashboard {
    seconds: Mutex<BTreeMap<u64, Second>>,
}

static DASHBOARD: OnceLock<Dashboard> = OnceLock::new();

/// The dashboard of this process, fed from the local metrics from its first use on.
pub fn dashboard() -> &'static Dashboard {
    DASHBOARD.get_or_init(|| {
        local_metrics().set_sink(|samples| dashboard().ingest(samples));
        Dashboard { seconds: Mutex::new(BTreeMap::new()) }
    })
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}

impl Dashboard {
    fn ingest(&self, samples: &[emf::Sample]) {
        let mut seconds = self.seconds.lock().unwrap_or_else(|e| e.into_inner());
        for sample in samples {
            let second = seconds.entry(sample.timestamp / 1000).or_default();
            let total: f64 = sample.values.iter().sum();
            match sample.name.as_str() {
                metrics::TRANSFERS_COMMITTED => second.committed += total,
                metrics::TRANSFERS_REJECTED => second.rejected += total,
                metrics::API_ERRORS => second.errors += total,
                metrics::API_LATENCY => second.latencies.extend(&sample.values),
                _ => {}
            }
        }
        let oldest = now_ms() / 1000 - WINDOW_SECONDS - BAND_POINTS as u64;
        seconds.retain(|second, _| *second >= oldest);
    }

    fn record_depths(&self, queue: Option<f64>, dlq: Option<f64>) {
        let mut seconds = self.seconds.lock().unwrap_or_else(|e| e.into_inner());
        let second = seconds.entry(now_ms() / 1000).or_default();
        second.queue_depth = queue;
        second.dlq_depth = dlq;
    }

    /// Every second: sample the queues' depth.
    pub async fn sample_queues(&'static self, sqs: aws_sdk_sqs::Client, queue_url: String, dlq_url: String) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let queue = depth(&sqs, &queue_url).await;
            let dlq = depth(&sqs, &dlq_url).await;
            self.record_depths(queue, dlq);
        }
    }

    /// The page's data: per-second signals over the window, each with its rolling band.
    pub fn series(&self) -> Value {
        let now = now_ms();
        let last = now / 1000 - 1; // the current second is still filling
        let first = last - WINDOW_SECONDS - BAND_POINTS as u64;
        let seconds = self.seconds.lock().unwrap_or_else(|e| e.into_inner());
        let signal = |id: &str, title: &str, unit: &str, value: &dyn Fn(&Second) -> Option<f64>| {
            let all: Vec<(u64, f64)> = (first..=last)
                .filter_map(|s| match seconds.get(&s) {
                    Some(second) => value(second).map(|v| (s, v)),
                    None => value(&Second::default()).map(|v| (s, v)),
                })
                .collect();
            signal_json(id, title, unit, &all, last - WINDOW_SECONDS)
        };
        let percentile = |q: f64| move |s: &Second| percentile(&s.latencies, q);
        json!({
            "now": now,
            "window_seconds": WINDOW_SECONDS,
            "signals": [
                signal("committed_per_s", "Transfers committed /s", "/s", &|s| Some(s.committed)),
                signal("rejected_per_s", "Transfers rejected /s", "/s", &|s| Some(s.rejected)),
                signal("errors_per_s", "API errors (5xx) /s", "/s", &|s| Some(s.errors)),
                signal("latency_p50_ms", "API latency p50", "ms", &percentile(0.50)),
                signal("latency_p99_ms", "API latency p99", "ms", &percentile(0.99)),
                signal("queue_depth", "Queue depth", "msgs", &|s| s.queue_depth),
                signal("dlq_depth", "Dead-letter queue depth", "msgs", &|s| s.dlq_depth),
            ],
        })
    }
}

fn signal_json(id: &str, title: &str, unit: &str, all: &[(u64, f64)], window_start: u64) -> Value {
    let points: Vec<Value> =
        all.iter().filter(|(s, _)| *s > window_start).map(|(s, v)| json!([s * 1000, v])).collect();
    let latest = all.last().map(|(_, v)| *v);
    let history: Vec<f64> = all.iter().rev().skip(1).take(BAND_POINTS).map(|(_, v)| *v).collect();
    let band = rolling_band(&history);
    let anomalous = matches!((band, latest), (Some((low, high)), Some(v)) if v < low || v > high);
    json!({
        "id": id,
        "title": title,
        "unit": unit,
        "points": points,
        "latest": latest,
        "band": band.map(|(low, high)| json!({"low": low, "high": high})),
        "anomalous": anomalous,
    })
}

/// Mean ± 3 standard deviations of the recent history, as CloudWatch's anomaly band does in spirit.
/// The deviation has a floor (1, or 10% of the mean) so a flat history does not flag every wobble.
pub fn rolling_band(history: &[f64]) -> Option<(f64, f64)> {
    if history.len() < BAND_MIN_POINTS {
        return None;
    }
    let n = history.len() as f64;
    let mean = history.iter().sum::<f64>() / n;
    let variance = history.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let spread = BAND_SIGMAS * variance.sqrt().max(1.0).max(mean.abs() * 0.1);
    Some(((mean - spread).max(0.0), mean + spread))
}

/// Nearest-rank percentile; `None` for no values.
pub fn percentile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> Option<f64> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .ok()?;
    out.attributes()?.get(&QueueAttributeName::ApproximateNumberOfMessages)?.parse().ok()
}

/// `GET /dashboard` (the page) and `GET /dashboard/series` (its data).
pub fn routes() -> Router {
    Router::new()
        .route("/dashboard", get(|| async { Html(include_str!("dashboard.html")) }))
        .route("/dashboard/series", get(|| async { Json(dashboard().series()) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_needs_history_and_flags_what_leaves_it() {
        assert_eq!(rolling_band(&[1.0; 5]), None);
        let (low, high) = rolling_band(&[10.0; 30]).unwrap();
        assert!(low < 10.0 && high > 10.0);
        assert!(high < 100.0, "a spike to 100/s leaves a flat 10/s band");
        assert!(low >= 0.0);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.5), Some(50.0));
        assert_eq!(percentile(&values, 0.99), Some(99.0));
        assert_eq!(percentile(&[7.0], 0.99), Some(7.0));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
