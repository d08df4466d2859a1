//! The correlation id ties together every log line of one request, across the API, the queue and the
//! worker; the X-Ray trace header does the same for traces.

use std::fmt;

/// The request and response header that carries the correlation id.
pub const CORRELATION_HEADER: &str = "x-correlation-id";
/// The SQS message attribute that carries it to the worker.
pub const CORRELATION_ATTRIBUTE: &str = "correlation_id";
/// The header API Gateway and Lambda use for the X-Ray trace.
pub const TRACE_HEADER: &str = "x-amzn-trace-id";

const MAX_LEN: usize = 128;

/// 1-128 characters of letters, digits and `-_.:/`: safe to echo in a header and to log.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CorrelationId(String);

impl CorrelationId {
    /// The caller's id if it is acceptable, else `None` (the caller then gets a fresh one: a bad
    /// correlation header is not worth refusing a payment for).
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = (1..=MAX_LEN).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b));
        ok.then(|| Self(raw.to_owned()))
    }

    /// A new, time-ordered id (UUID v7).
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    /// The caller's id when it is acceptable, else a new one.
    pub fn parse_or_generate(raw: Option<&str>) -> Self {
        raw.and_then(Self::parse).unwrap_or_else(Self::generate)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a request hands on to the work it queues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    pub correlation: CorrelationId,
    /// The X-Ray trace header (`Root=…;Parent=…;Sampled=…`) when the request is traced.
    pub xray: Option<String>,
}

impl TraceContext {
    pub fn new(correlation: CorrelationId, xray: Option<String>) -> Self {
        Self { correlation, xray }
    }
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// Runs `work` as caused by the request `trace` names: what it writes (an event, a queued claim)
/// records its correlation id, and what it queues carries the whole context, so the work's
/// consequences can be traced back to it.
pub async fn scope<F: std::future::Future>(trace: TraceContext, work: F) -> F::Output {
    CURRENT.scope(trace, work).await
}

/// The id of the request the running work serves, if it runs in a `scope`.
pub fn current() -> Option<CorrelationId> {
    CURRENT.try_with(|trace| trace.correlation.clone()).ok()
}

/// The whole context of the request the running work serves, if it runs in a `scope`.
pub fn current_trace() -> Option<TraceContext> {
    CURRENT.try_with(Clone::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_safe_ids_and_refuses_the_rest() {
        assert_eq!(CorrelationId::parse("order-42:retry/1").unwrap().as_str(), "order-42:retry/1");
        for bad in ["", "has space", "quote\"", "new\nline", &"x".repeat(129)] {
            assert_eq!(CorrelationId::parse(bad), None, "{bad:?}");
        }
        assert_eq!(CorrelationId::parse(&"x".repeat(128)).unwrap().as_str().len(), 128);
    }

    #[test]
    fn a_missing_or_bad_id_is_replaced_by_a_fresh_one() {
        let fresh = CorrelationId::parse_or_generate(Some("bad id"));
        assert_eq!(fresh.as_str().len(), 36);
        assert_ne!(fresh, CorrelationId::parse_or_generate(None));
        assert_eq!(CorrelationId::parse_or_generate(Some("abc")).as_str(), "abc");
    }
}
