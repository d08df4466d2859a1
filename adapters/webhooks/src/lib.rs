//! Webhook deliveries over HTTP. One POST per attempt, signed as Standard Webhooks says
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature`: `v1,` and the base64 HMAC-SHA256 of
//! `{id}.{timestamp}.{body}` with each secret that signs, space-separated). Deployed, a delivery
//! connects only to public addresses: the name is resolved at each attempt and refused if any
//! address it resolves to is private, loopback, link-local or a metadata service (so a name that
//! turns private later, DNS rebinding, is refused too), an address in the URL is checked the same
//! way, and redirects are not followed. An attempt gives up after `timeout`; at most `MAX_ANSWER`
//! bytes of the answer are read.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ledger::port::StoredEvent;
use ledger::webhook::{SigningSecret, UrlPolicy, WebhookEndpoint, is_public};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use time::OffsetDateTime;

/// The most of an endpoint's answer that is read (and kept, in part, with the attempt).
pub const MAX_ANSWER: usize = 4 * 1024;
/// How much of the answer an attempt's record keeps.
const KEPT: usize = 200;
/// Standard Webhooks advises 15 to 30 s; the deliverer's Lambda timeout is set above its batch.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// What one attempt got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The status code (`None`: no answer: timeout, refused address, connection failed).
    pub status: Option<u16>,
    /// How long the endpoint's `Retry-After` asks to wait (delay-seconds or an HTTP-date).
    pub retry_after: Option<Duration>,
    /// Why there was no answer, or the start of the answer's body.
    pub detail: Option<String>,
    pub took: Duration,
}

/// The HTTP client deliveries go through. Build it once at init.
#[derive(Clone, Debug)]
pub struct WebhookClient {
    http: reqwest::Client,
    policy: UrlPolicy,
    timeout: Duration,
}

/// A resolver that refuses names resolving to any address that is not public.
#[derive(Debug)]
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(private) = addrs.iter().find(|a| !is_public(a.ip())) {
                let refused = format!("{host} resolves to {}, which is not a public address", private.ip());
                return Err(refused.into());
            }
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no address").into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the webhook HTTP client: {0}")]
pub struct BuildError(String);

impl WebhookClient {
    /// A client for deliveries under `policy` (`UrlPolicy::DEPLOYED`: public addresses only).
    pub fn new(policy: UrlPolicy, timeout: Duration) -> Result<Self, BuildError> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            // A proxy from the environment would connect on the delivery's behalf, past the checks.
            .no_proxy()
            .user_agent("ledger-webhooks/1");
        if !policy.allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        Ok(Self { http: builder.build().map_err(|e| BuildError(e.to_string()))?, policy, timeout })
    }

    /// The longest an attempt takes.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// One attempt to deliver `event` to `endpoint`, signed at `now` with each of `secrets` (the
    /// endpoint's signing secrets then, opened).
    pub async fn attempt(
        &self,
        endpoint: &WebhookEndpoint,
        secrets: &[SigningSecret],
        event: &StoredEvent,
        now: OffsetDateTime,
    ) -> Answer {
        let started = Instant::now();
        let refused = |why: String| Answer {
            status: None,
            retry_after: None,
            detail: Some(why),
            took: started.elapsed(),
        };
        // An address in the URL is not resolved, so not checked by the resolver: check it here.
        if let Some(host) =
            url::Url::parse(endpoint.url.as_str()).ok().and_then(|u| u.host().map(|h| h.to_owned()))
        {
            let literal = match host {
                url::Host::Ipv4(ip) => Some(std::net::IpAddr::V4(ip)),
                url::Host::Ipv6(ip) => Some(std::net::IpAddr::V6(ip)),
                url::Host::Domain(_) => None,
            };
            if let Some(ip) = literal.filter(|ip| !self.policy.allow_private && !is_public(*ip)) {
                return refused(format!("{ip} is not a public address"));
            }
        }
        let timestamp = now.unix_timestamp();
        let id = event.id.to_string();
        let signatures = match sign(secrets, &id, timestamp, event.body.as_bytes()) {
            Ok(signatures) => signatures,
            Err(why) => return refused(why),
        };
        let sent = self
            .http
            .post(endpoint.url.as_str())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(standardwebhooks::HEADER_WEBHOOK_ID, &id)
            .header(standardwebhooks::HEADER_WEBHOOK_TIMESTAMP, timestamp.to_string())
            .header(standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signatures)
            .body(event.body.clone())
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(err) => return refused(no_answer(&err)),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| retry_after(v.to_str().ok()?, SystemTime::now()));
        let mut body = Vec::new();
        while body.len() < MAX_ANSWER {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk[..chunk.len().min(MAX_ANSWER - body.len())]),
                _ => break,
            }
        }
        let text = String::from_utf8_lossy(&body);
        let detail = (!text.trim().is_empty()).then(|| text.chars().take(KEPT).collect());
        Answer { status: Some(status), retry_after, detail, took: started.elapsed() }
    }
}

/// A `Retry-After` value read at `now` (RFC 9110 §10.2.3): delay-seconds, or an HTTP-date, which
/// asks for no wait once past.
fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    match value.parse::<u64>() {
        Ok(seconds) => Some(Duration::from_secs(seconds)),
        Err(_) => Some(httpdate::parse_http_date(value).ok()?.duration_since(now).unwrap_or_default()),
    }
}

/// `webhook-signature`: one `v1,…` per secret.
pub fn sign(secrets: &[SigningSecret], id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let mut signatures = Vec::new();
    for secret in secrets {
        let webhook = standardwebhooks::Webhook::new(secret.expose()).map_err(|e| e.to_string())?;
        signatures.push(webhook.sign(id, timestamp, body).map_err(|e| e.to_string())?);
    }
    Ok(signatures.join(" "))
}

/// A few words on why a request got no answer (never the URL's query, which may hold a token).
fn no_answer(err: &reqwest::Error) -> String {
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_redirect() {
        "redirected"
    } else {
        "failed"
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(err);
    let mut cause = String::new();
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    let detail = if cause.is_empty() { what.to_owned() } else { format!("{what}: {cause}") };
    detail.chars().take(KEPT).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_standard_webhooks_test_vector() {
        // The example of the Standard Webhooks specification.
        let secret = SigningSecret::stored("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
        let (id, body) = ("msg_p5jXN8AQM9LWM0D4loKWxJek", br#"{"test": 2432232314}"#);
        let signed = sign(std::slice::from_ref(&secret), id, 1614265330, body).unwrap();
        assert_eq!(signed, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        // Two secrets (a rotation): both sign, in order.
        let both = sign(&[SigningSecret::from_bytes([7; 32]), secret], id, 1614265330, body).unwrap();
        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1], "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        // 2015-10-21 07:28:00 UTC, RFC 9110's example date.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:30:00 GMT", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), Some(Duration::ZERO), "past");
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-5", now), None);
    }
}
