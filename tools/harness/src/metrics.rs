//! The functions' metrics, locally: the same EMF collector the Lambda functions install, flushed
//! where the Lambda run loop flushes it (after each API request, and periodically for the worker),
//! and read back as CloudWatch would read it. The tests assert on those lines; the local dashboard
//! charts them.

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use ledger_telemetry::TelemetryConfig;
use ledger_telemetry::metrics::{self, Collector};

use crate::emf::{self, Sample};

/// EMF lines kept for `recent_emf`.
const RECENT_LINES: usize = 20_000;

type Sink = Box<dyn Fn(&[Sample]) + Send + Sync>;

pub struct LocalMetrics {
    collector: &'static Collector,
    recent: Mutex<VecDeque<String>>,
    sink: OnceLock<Sink>,
}

static LOCAL: OnceLock<LocalMetrics> = OnceLock::new();

/// Installs the EMF collector for this process (once) and returns the local metrics fed by it.
///
/// # Panics
/// If another metrics recorder was installed in this process first.
pub fn local_metrics() -> &'static LocalMetrics {
    LOCAL.get_or_init(|| {
        let collector =
            metrics::init(&TelemetryConfig::from_env()).expect("the metrics recorder is installed once");
        LocalMetrics { collector, recent: Mutex::new(VecDeque::new()), sink: OnceLock::new() }
    })
}

impl LocalMetrics {
    /// Flushes the collector, as the Lambda run loop does after an invocation, hands the samples to
    /// the sink, and keeps the lines. Returns the EMF text.
    pub fn flush(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(err) = self.collector.flush(&mut buffer) {
            tracing::warn!(error = %err, "metrics flush failed");
        }
        let text = String::from_utf8_lossy(&buffer).into_owned();
        if let Some(sink) = self.sink.get() {
            sink(&emf::read(&text));
        }
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.extend(text.lines().map(str::to_owned));
        let excess = recent.len().saturating_sub(RECENT_LINES);
        recent.drain(..excess);
        text
    }

    /// Flushes, then returns the latest EMF lines written (up to 20,000), oldest first.
    pub fn recent_emf(&self) -> String {
        self.flush();
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.iter().map(|line| format!("{line}\n")).collect()
    }

    /// Where every flush's samples go from now on (the dashboard). Set once.
    pub fn set_sink(&self, sink: impl Fn(&[Sample]) + Send + Sync + 'static) {
        let _ = self.sink.set(Box::new(sink));
    }

    /// Flushes every `period`: what the worker's invocations recorded.
    pub async fn flush_every(&'static self, period: Duration) {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            self.flush();
        }
    }
}

/// Middleware: flushes the metrics after each request, as the Lambda run loop does after each
/// invocation (if this process installed the local collector).
pub async fn flush_after(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if let Some(local) = LOCAL.get() {
        local.flush();
    }
    response
}
