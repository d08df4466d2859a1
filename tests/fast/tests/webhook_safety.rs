//! What a delivery will not do: connect to a private address, whether the URL names it or a name
//! resolves to it at delivery time (DNS rebinding); follow a redirect; read more than `MAX_ANSWER`
//! of an answer; wait longer than its timeout.

use std::time::Duration;

use harness::receiver::{Receiver, Reply};
use ledger::port::StoredEvent;
use ledger::webhook::{EndpointFields, EndpointUrl, SealedSecret, SigningSecret, UrlPolicy, WebhookEndpoint};
use ledger_webhooks::{MAX_ANSWER, WebhookClient};
use time::OffsetDateTime;

fn endpoint(url: &str) -> WebhookEndpoint {
    let fields = EndpointFields {
        url: "https://example.com/".into(),
        event_types: vec!["*".into()],
        description: None,
    };
    let mut endpoint = fields.parse(UrlPolicy::DEPLOYED).unwrap().open(
        ledger::EndpointId::generate(),
        SealedSecret::from_bytes(vec![3; 64]),
        OffsetDateTime::now_utc(),
    );
    // As if the URL had been accepted, and its name now resolved elsewhere.
    endpoint.url = EndpointUrl::stored(url.to_owned());
    endpoint
}

fn secrets() -> [SigningSecret; 1] {
    [SigningSecret::from_bytes([3; 32])]
}

fn event() -> StoredEvent {
    StoredEvent {
        id: ledger::EventId::parse("transfer.committed:t1").unwrap(),
        tenant: ledger::TenantId::parse("acme").unwrap(),
        kind: ledger::EventType::TransferCommitted,
        created: OffsetDateTime::now_utc(),
        body: r#"{"id":"transfer.committed:t1"}"#.into(),
        correlation_id: None,
    }
}

#[tokio::test]
async fn a_deployed_delivery_never_reaches_a_private_address() {
    let receiver = Receiver::start(vec![], Reply::status(200)).await.unwrap();
    let port = receiver.url.trim_start_matches("http://127.0.0.1:").split('/').next().unwrap().to_owned();
    let deployed = WebhookClient::new(UrlPolicy::DEPLOYED, Duration::from_secs(5)).unwrap();
    for url in [
        receiver.url.clone(),
        // A name that resolves to loopback, as a rebinding attack's name does at delivery time.
        format!("http://localhost:{port}/hook"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[::1]:1/".to_owned(),
    ] {
        let answer = deployed.attempt(&endpoint(&url), &secrets(), &event(), OffsetDateTime::now_utc()).await;
        assert_eq!(answer.status, None, "{url}: {answer:?}");
        let detail = answer.detail.unwrap_or_default();
        assert!(detail.contains("not a public address"), "{url}: {detail}");
    }
    assert!(receiver.received().is_empty(), "nothing reached the receiver");
    // The local stack's policy reaches it.
    let local = WebhookClient::new(UrlPolicy::LOCAL, Duration::from_secs(5)).unwrap();
    let answer =
        local.attempt(&endpoint(&receiver.url), &secrets(), &event(), OffsetDateTime::now_utc()).await;
    assert_eq!(answer.status, Some(200));
}

#[tokio::test]
async fn answers_are_capped_redirects_not_followed_and_slow_endpoints_timed_out() {
    let local = WebhookClient::new(UrlPolicy::LOCAL, Duration::from_secs(1)).unwrap();
    let huge =
        Receiver::start(vec![], Reply::status(200).with_body("x".repeat(20 * MAX_ANSWER))).await.unwrap();
    let answer = local.attempt(&endpoint(&huge.url), &secrets(), &event(), OffsetDateTime::now_utc()).await;
    assert_eq!(answer.status, Some(200));
    assert!(answer.detail.unwrap().len() <= 200);
    let moved = Receiver::start(vec![], Reply::status(307)).await.unwrap();
    let answer = local.attempt(&endpoint(&moved.url), &secrets(), &event(), OffsetDateTime::now_utc()).await;
    assert_eq!(answer.status, Some(307), "a redirect is an answer, not followed");
    let slow = Receiver::start(vec![], Reply::status(200).after(Duration::from_secs(10))).await.unwrap();
    let answer = local.attempt(&endpoint(&slow.url), &secrets(), &event(), OffsetDateTime::now_utc()).await;
    // No answer, and the attempt's own timeout (1 s) ended it, not the endpoint's 10 s reply.
    assert_eq!(answer.status, None);
    assert!(answer.detail.unwrap().contains("timed out"));
}
