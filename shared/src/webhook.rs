//! Webhook endpoints: where a tenant wants its events delivered, and the rules of delivery. An
//! endpoint's URL is checked here (https where deployed, never a private, loopback, link-local or
//! metadata address); the delivery adapter checks the addresses the name resolves to again at
//! each delivery, with the same rule (`is_public`), against DNS rebinding. The retry schedule and
//! what a response means are Standard Webhooks'.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::event_type::EventType;
use crate::field::FieldError;
use crate::ids::EndpointId;

/// The longest URL accepted, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// What a deployment accepts as an endpoint's URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UrlPolicy {
    /// Plain `http` too (the local stack, whose receivers run on this machine).
    pub allow_http: bool,
    /// Private, loopback and link-local hosts too (the local stack only).
    pub allow_private: bool,
}

impl UrlPolicy {
    /// What a deployed stack accepts: public https only.
    pub const DEPLOYED: UrlPolicy = UrlPolicy { allow_http: false, allow_private: false };
    /// What the local stack accepts: anything http(s) (its receivers listen on loopback).
    pub const LOCAL: UrlPolicy = UrlPolicy { allow_http: true, allow_private: true };
}

/// An endpoint's URL, as accepted by a `UrlPolicy`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct EndpointUrl(String);

impl EndpointUrl {
    pub fn parse(raw: &str, policy: UrlPolicy) -> Result<Self, FieldError> {
        if raw.len() > MAX_URL_LEN {
            return Err(FieldError::new(format!("must be at most {MAX_URL_LEN} characters")));
        }
        let url =
            url::Url::parse(raw).map_err(|e| FieldError::new(format!("must be an absolute URL ({e})")))?;
        match url.scheme() {
            "https" => {}
            "http" if policy.allow_http => {}
            _ if policy.allow_http => return Err(FieldError::new("must be an http or https URL")),
            _ => return Err(FieldError::new("must be an https URL")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(FieldError::new("must not carry credentials"));
        }
        let private = match url.host() {
            None => return Err(FieldError::new("must name a host")),
            Some(url::Host::Ipv4(ip)) => !is_public(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => !is_public(IpAddr::V6(ip)),
            Some(url::Host::Domain(name)) => is_internal_name(name),
        };
        if private && !policy.allow_private {
            return Err(FieldError::new("must not be a private, loopback, link-local or metadata address"));
        }
        Ok(Self(url.into()))
    }

    /// A URL as stored: it passed `parse` when accepted.
    pub fn stored(raw: String) -> Self {
        Self(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<EndpointUrl> for String {
    fn from(url: EndpointUrl) -> String {
        url.0
    }
}

/// Names that resolve inside the network by convention, whatever DNS says.
fn is_internal_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.ends_with(".internal")
        || name.ends_with(".local")
        || name == "metadata"
}

/// Whether a delivery may connect to `ip`: not loopback, private, link-local (the cloud metadata
/// services live there), shared, unspecified, broadcast, multicast, documentation or reserved,
/// and for IPv6 none of those nor an IPv4 address in disguise (mapped, compatible, NAT64).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                return is_public_v4(Ipv4Addr::new(
                    (s[6] >> 8) as u8,
                    s[6] as u8,
                    (s[7] >> 8) as u8,
                    s[7] as u8,
                ));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local, AWS's fd00:ec2::254 metadata among them
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x2001 && s[1] == 0) // Teredo: an IPv4 address in disguise
                || s[0] == 0x2002 // 6to4: likewise
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // local-use NAT64
                || s[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible (deprecated)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 192 && b == 88 && c == 99) // 6to4 relays
        || a >= 240) // reserved
}

/// The event types an endpoint receives: some, or every type (`*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subscription {
    All,
    Only(Vec<EventType>),
}

impl Subscription {
    pub fn parse(raw: &[String]) -> Result<Self, FieldError> {
        if raw.is_empty() {
            return Err(FieldError::new("must name at least one event type, or \"*\" for all"));
        }
        if raw.iter().any(|t| t == "*") {
            return if raw.len() == 1 { Ok(Self::All) } else { Err(FieldError::new("\"*\" stands alone")) };
        }
        let mut types = raw.iter().map(|t| EventType::parse(t)).collect::<Result<Vec<_>, _>>()?;
        types.sort();
        types.dedup();
        Ok(Self::Only(types))
    }

    pub fn includes(&self, kind: EventType) -> bool {
        match self {
            Self::All => true,
            Self::Only(types) => types.contains(&kind),
        }
    }

    /// As the API shows it: `["*"]` or the types' names.
    pub fn names(&self) -> Vec<&'static str> {
        match self {
            Self::All => vec!["*"],
            Self::Only(types) => types.iter().map(|t| t.as_str()).collect(),
        }
    }
}

/// A request to add an endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEndpoint {
    pub url: EndpointUrl,
    pub subscription: Subscription,
    pub description: String,
}

/// The JSON of a request to add an endpoint, before the policy of the deployment checks its URL.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointFields {
    pub url: String,
    pub event_types: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// The longest description accepted, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// The most endpoints a tenant may have (PayPal allows 10 an application): what bounds the
/// deliveries one event fans out to.
pub const MAX_ENDPOINTS: usize = 10;

impl EndpointFields {
    /// The request, or the first field at fault and why.
    pub fn parse(self, policy: UrlPolicy) -> Result<NewEndpoint, (&'static str, FieldError)> {
        let url = EndpointUrl::parse(&self.url, policy).map_err(|e| ("url", e))?;
        let subscription = Subscription::parse(&self.event_types).map_err(|e| ("event_types", e))?;
        let description = self.description.unwrap_or_default();
        if description.chars().count() > MAX_DESCRIPTION_CHARS {
            let reason = format!("must be at most {MAX_DESCRIPTION_CHARS} characters");
            return Err(("description", FieldError::new(reason)));
        }
        Ok(NewEndpoint { url, subscription, description })
    }
}

/// A signing secret: `whsec_` and the base64 of 32 random bytes (Standard Webhooks: 24 to 64).
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(String);

impl SigningSecret {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        use base64::Engine;
        Self(format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(bytes)))
    }

    /// A secret as stored: it came from `from_bytes`.
    pub fn stored(raw: String) -> Self {
        Self(raw)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(…)")
    }
}

/// A signing secret as the ledger keeps it: sealed (envelope encryption, `crate::port::Sealer`),
/// bound to its tenant and endpoint. Only the sealer opens it; nothing stored holds it in clear.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret(Vec<u8>);

impl SealedSecret {
    /// Sealed bytes, as a sealer made them (or as stored).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedSecret({} bytes)", self.0.len())
    }
}

/// A secret an endpoint signs with, until `expires_at` if it was rotated out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Secret {
    pub sealed: SealedSecret,
    pub expires_at: Option<OffsetDateTime>,
}

/// The most secrets an endpoint keeps: the current one and the two rotated out last (a third
/// rotation within a day ends the oldest one's overlap at once).
pub const MAX_SECRETS: usize = 3;

/// How long a rotated-out secret still signs, so receivers can switch without missing a delivery.
pub const ROTATION_OVERLAP: time::Duration = time::Duration::hours(24);

/// An endpoint that has failed every delivery for this long is disabled (and an event says so).
pub const DISABLE_AFTER_FAILING: time::Duration = time::Duration::days(5);

/// A webhook endpoint as the ledger holds it. Its JSON never shows its secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub id: EndpointId,
    pub url: EndpointUrl,
    pub subscription: Subscription,
    pub description: String,
    pub enabled: bool,
    /// Why it was disabled, when the ledger disabled it.
    pub disabled_reason: Option<String>,
    pub created_at: OffsetDateTime,
    /// Since when every delivery has failed (`None`: the last one succeeded).
    pub failing_since: Option<OffsetDateTime>,
    /// The current secret first, then rotated-out ones until they expire.
    pub secrets: Vec<Secret>,
}

impl NewEndpoint {
    pub fn open(self, id: EndpointId, secret: SealedSecret, now: OffsetDateTime) -> WebhookEndpoint {
        WebhookEndpoint {
            id,
            url: self.url,
            subscription: self.subscription,
            description: self.description,
            enabled: true,
            disabled_reason: None,
            created_at: now,
            failing_since: None,
            secrets: vec![Secret { sealed: secret, expires_at: None }],
        }
    }
}

impl WebhookEndpoint {
    /// The secrets that sign a delivery at `now`, sealed: the current one and those still in
    /// overlap.
    pub fn signing_secrets(&self, now: OffsetDateTime) -> impl Iterator<Item = &SealedSecret> {
        self.secrets.iter().filter(move |s| s.expires_at.is_none_or(|at| at > now)).map(|s| &s.sealed)
    }

    /// The endpoint with `fresh` as its secret; the one it had signs on for `ROTATION_OVERLAP`
    /// (those already rotated out keep their expiry). Those expired are dropped, and at most
    /// `MAX_SECRETS` are kept (the newest), so an endpoint's item stays small however often it
    /// rotates.
    pub fn rotated(&self, fresh: SealedSecret, now: OffsetDateTime) -> WebhookEndpoint {
        let mut secrets = vec![Secret { sealed: fresh, expires_at: None }];
        let signing = self.secrets.iter().filter(|s| s.expires_at.is_none_or(|at| at > now));
        for old in signing.take(MAX_SECRETS - 1) {
            secrets.push(Secret {
                expires_at: Some(old.expires_at.unwrap_or(now + ROTATION_OVERLAP)),
                ..old.clone()
            });
        }
        WebhookEndpoint { secrets, ..self.clone() }
    }

    /// Whether it receives an event of `kind` now.
    pub fn receives(&self, kind: EventType) -> bool {
        self.enabled && self.subscription.includes(kind)
    }
}

#[derive(Serialize)]
struct EndpointView<'a> {
    id: &'a EndpointId,
    url: &'a str,
    event_types: Vec<&'static str>,
    description: &'a str,
    enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled_reason: Option<&'a str>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    failing_since: Option<OffsetDateTime>,
}

impl Serialize for WebhookEndpoint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        EndpointView {
            id: &self.id,
            url: self.url.as_str(),
            event_types: self.subscription.names(),
            description: &self.description,
            enabled: self.enabled,
            disabled_reason: self.disabled_reason.as_deref(),
            created_at: self.created_at,
            failing_since: self.failing_since,
        }
        .serialize(serializer)
    }
}

/// Standard Webhooks' schedule: the delay before each retry (the first attempt is at once). Ten
/// attempts over about three days.
pub const RETRY_SCHEDULE: [Duration; 9] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(14 * 3600),
    Duration::from_secs(20 * 3600),
    Duration::from_secs(24 * 3600),
];

/// What the endpoint's answer to an attempt means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: delivered.
    Delivered,
    /// 410 Gone: the endpoint asks to stop; it is disabled.
    Gone,
    /// Anything else (a timeout, a refused connection, another status): try again later.
    Retry,
}

impl Verdict {
    /// `None`: no answer (timeout, connection refused or reset, an address refused).
    pub fn of(status: Option<u16>) -> Self {
        match status {
            Some(200..=299) => Self::Delivered,
            Some(410) => Self::Gone,
            _ => Self::Retry,
        }
    }
}

/// When to try again after failed attempt number `attempt` (1-based), honouring the endpoint's
/// `Retry-After` when it asks for longer; `None` when the schedule is spent. `jitter` in [0, 1)
/// spreads retries up to a tenth later, so a recovering endpoint is not hit all at once.
pub fn next_attempt_in(attempt: u32, retry_after: Option<Duration>, jitter: f64) -> Option<Duration> {
    let base = *RETRY_SCHEDULE.get(usize::try_from(attempt).ok()?.checked_sub(1)?)?;
    let base = base.max(retry_after.unwrap_or_default().min(Duration::from_secs(24 * 3600)));
    Some(base + base.mul_f64(jitter.clamp(0.0, 1.0) / 10.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<EndpointUrl, FieldError> {
        EndpointUrl::parse(raw, UrlPolicy::DEPLOYED)
    }

    #[test]
    fn deployed_endpoints_are_public_https_urls() {
        assert!(parse("https://hooks.example.com/ledger?x=1").is_ok());
        assert!(parse("https://93.184.216.34/").is_ok());
        for bad in [
            "http://hooks.example.com/",
            "ftp://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "hooks.example.com/x",
            "https://localhost/",
            "https://api.localhost/",
            "https://metadata.google.internal/",
            "https://127.0.0.1/",
            "https://10.1.2.3/",
            "https://172.16.0.1/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://[::1]/",
            "https://[fd00:ec2::254]/",
            "https://[fe80::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://2130706433/",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse(&format!("https://example.com/{}", "a".repeat(MAX_URL_LEN))).is_err());
        // Locally, anything http(s): the receivers listen on loopback.
        assert!(EndpointUrl::parse("http://127.0.0.1:4000/hook", UrlPolicy::LOCAL).is_ok());
        assert!(EndpointUrl::parse("ftp://127.0.0.1/", UrlPolicy::LOCAL).is_err());
    }

    #[test]
    fn public_addresses_are_exactly_the_routable_ones() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "64:ff9b::808:808"] {
            assert!(is_public(ip(public)), "{public}");
        }
        for private in [
            "169.254.170.2",
            "198.18.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "192.88.99.1",
            "2002:7f00:1::",
            "2001:0:4136:e378::1",
            "64:ff9b:1::a00:1",
            "224.0.0.1",
            "::",
            "ff02::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(ip(private)), "{private}");
        }
    }

    #[test]
    fn a_subscription_is_some_types_or_all() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(Subscription::parse(&names(&["*"])).unwrap(), Subscription::All);
        let some =
            Subscription::parse(&names(&["hold.expired", "transfer.committed", "hold.expired"])).unwrap();
        assert!(some.includes(EventType::HoldExpired) && !some.includes(EventType::AccountOpened));
        assert_eq!(some.names(), ["transfer.committed", "hold.expired"]);
        for bad in [names(&[]), names(&["*", "hold.expired"]), names(&["hold.exploded"])] {
            assert!(Subscription::parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn retries_follow_the_schedule_and_honour_retry_after() {
        assert_eq!(next_attempt_in(1, None, 0.0), Some(Duration::from_secs(5)));
        assert_eq!(next_attempt_in(2, None, 0.0), Some(Duration::from_secs(300)));
        assert_eq!(next_attempt_in(2, Some(Duration::from_secs(900)), 0.0), Some(Duration::from_secs(900)));
        assert_eq!(next_attempt_in(1, None, 0.5), Some(Duration::from_millis(5_250)));
        assert_eq!(next_attempt_in(9, None, 0.0), Some(Duration::from_secs(24 * 3600)));
        assert_eq!(next_attempt_in(10, None, 0.0), None);
        assert_eq!(next_attempt_in(0, None, 0.0), None);
        let total: Duration = RETRY_SCHEDULE.iter().sum();
        assert!(total > Duration::from_secs(24 * 3600), "retries span more than a day: {total:?}");
        assert_eq!(
            [Some(200), Some(204), Some(410), Some(429), Some(500), Some(404), None].map(Verdict::of),
            [
                Verdict::Delivered,
                Verdict::Delivered,
                Verdict::Gone,
                Verdict::Retry,
                Verdict::Retry,
                Verdict::Retry,
                Verdict::Retry
            ]
        );
    }

    #[test]
    fn a_rotated_secret_signs_on_for_a_day_beside_the_new_one_and_at_most_three_are_kept() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let fields = EndpointFields {
            url: "https://example.com/h".into(),
            event_types: vec!["*".into()],
            description: None,
        };
        let sealed = |n: u8| SealedSecret::from_bytes(vec![n; 8]);
        let endpoint =
            fields.parse(UrlPolicy::DEPLOYED).unwrap().open(EndpointId::generate(), sealed(1), now);
        let rotated = endpoint.rotated(sealed(2), now);
        let signing: Vec<_> = rotated.signing_secrets(now).cloned().collect();
        assert_eq!(signing, [sealed(2), sealed(1)]);
        let later = now + ROTATION_OVERLAP;
        assert_eq!(rotated.signing_secrets(later).count(), 1);
        assert!(SigningSecret::from_bytes([1; 32]).expose().starts_with("whsec_"));
        let json = serde_json::to_value(&rotated).unwrap();
        assert_eq!(json["event_types"], serde_json::json!(["*"]));
        assert!(json.get("secrets").is_none(), "{json}");
        // Rotated again and again within the day: the newest three sign.
        let many = (3..10).fold(rotated, |e, n| e.rotated(sealed(n), now));
        let signing: Vec<_> = many.signing_secrets(now).cloned().collect();
        assert_eq!(signing, [sealed(9), sealed(8), sealed(7)]);
        assert_eq!(many.secrets.len(), MAX_SECRETS);
    }
}
