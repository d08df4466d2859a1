//! Webhook endpoints (versioned: a change over a stale read fails) and deliveries (attempts
//! recorded, listed newest first, one copy of a message attempting at a time).

use std::sync::Arc;

use ledger::port::{Attempt, DeliveryPosition, DeliveryStatus, Lease, MAX_ATTEMPTS_KEPT, Store, StoredEvent};
use ledger::webhook::{EndpointFields, SealedSecret, UrlPolicy, WebhookEndpoint};
use ledger::{EndpointId, EventId, EventType};
use time::OffsetDateTime;

use super::{now, tenant};

fn endpoint(url: &str) -> WebhookEndpoint {
    let fields = EndpointFields { url: url.into(), event_types: vec!["*".into()], description: None };
    fields.parse(UrlPolicy::LOCAL).unwrap().open(
        EndpointId::generate(),
        SealedSecret::from_bytes(vec![7; 64]),
        now(),
    )
}

fn event(id: &str, created: OffsetDateTime) -> StoredEvent {
    let id = EventId::parse(id).unwrap();
    StoredEvent {
        kind: id.kind(),
        id,
        tenant: tenant("acme"),
        created,
        body: "{}".into(),
        correlation_id: None,
    }
}

fn attempt(status_code: Option<u16>) -> Attempt {
    Attempt { at: now(), status_code, error: None, duration_ms: 3 }
}

pub async fn endpoints_are_versioned_and_changes_over_a_stale_read_fail(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let first = endpoint("http://127.0.0.1:9/a");
    store.create_endpoint(&t, &first).await.unwrap();
    for _ in 0..3 {
        store.create_endpoint(&t, &endpoint("http://127.0.0.1:9/b")).await.unwrap();
    }
    let (read, version) = store.get_endpoint(&t, &first.id).await.unwrap();
    assert_eq!((read.url.as_str(), version), ("http://127.0.0.1:9/a", 1));
    let changed = WebhookEndpoint { description: "changed".into(), ..read.clone() };
    assert!(store.replace_endpoint(&t, &changed, version).await.unwrap());
    assert!(!store.replace_endpoint(&t, &changed, version).await.unwrap(), "a stale version");
    let failing_since = store.endpoint_failing(&t, &first.id, now()).await.unwrap();
    assert_eq!(
        store.endpoint_failing(&t, &first.id, now()).await.unwrap(),
        failing_since,
        "failing since the first"
    );
    let (failing, version) = store.get_endpoint(&t, &first.id).await.unwrap();
    assert_eq!(
        (failing.description.as_str(), failing.failing_since.is_some(), version),
        ("changed", true, 4)
    );
    store.endpoint_healthy(&t, &first.id).await.unwrap();
    assert_eq!(store.get_endpoint(&t, &first.id).await.unwrap().0.failing_since, None);
    let (mut listed, mut after) = (Vec::new(), None);
    loop {
        let page = store.list_endpoints(&t, 3, after.as_ref()).await.unwrap();
        listed.extend(page.items.into_iter().map(|e| e.id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(listed.len(), 4);
    assert_eq!(store.receivers(&t, EventType::HoldCreated).await.unwrap().len(), 4);
    assert!(store.receivers(&tenant("globex"), EventType::HoldCreated).await.unwrap().is_empty());
    store.delete_endpoint(&t, &first.id).await.unwrap();
    assert!(store.delete_endpoint(&t, &first.id).await.unwrap_err().is_not_found());
    assert!(store.get_endpoint(&t, &first.id).await.unwrap_err().is_not_found());
}

pub async fn disabling_an_endpoint_writes_its_event_once(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let target = endpoint("http://127.0.0.1:9/a");
    store.create_endpoint(&t, &target).await.unwrap();
    let at = now();
    assert!(store.disable_endpoint(&t, &target, "the endpoint answered 410 Gone", at).await.unwrap());
    assert!(!store.disable_endpoint(&t, &target, "again", at).await.unwrap());
    let (disabled, _) = store.get_endpoint(&t, &target.id).await.unwrap();
    assert_eq!(
        (disabled.enabled, disabled.disabled_reason.as_deref()),
        (false, Some("the endpoint answered 410 Gone"))
    );
    let events = store.list_events(&t, &Default::default(), 10, None, now()).await.unwrap().items;
    assert_eq!(events.iter().map(|e| e.kind).collect::<Vec<_>>(), [EventType::WebhookEndpointDisabled]);
}

pub async fn deliveries_record_attempts_and_list_newest_first(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let target = endpoint("http://127.0.0.1:9/a");
    store.create_endpoint(&t, &target).await.unwrap();
    let start = now();
    let events: Vec<StoredEvent> = (0..5)
        .map(|i| event(&format!("transfer.committed:t{i}"), start + time::Duration::milliseconds(i)))
        .collect();
    assert_eq!(store.delivery(&t, &target.id, &events[0]).await.unwrap(), None);
    for e in &events {
        store
            .record_attempt(&t, &target.id, e, &attempt(Some(500)), DeliveryStatus::Retrying, Some(start))
            .await
            .unwrap();
    }
    store
        .record_attempt(&t, &target.id, &events[0], &attempt(Some(204)), DeliveryStatus::Delivered, None)
        .await
        .unwrap();
    let first = store.delivery(&t, &target.id, &events[0]).await.unwrap().unwrap();
    assert_eq!(
        (first.status, first.attempts.len(), first.next_attempt_at),
        (DeliveryStatus::Delivered, 2, None)
    );
    store.give_up_delivery(&t, &target.id, &events[0]).await.unwrap();
    store.give_up_delivery(&t, &target.id, &events[1]).await.unwrap();
    let given_up = store.delivery(&t, &target.id, &events[1]).await.unwrap().unwrap();
    assert_eq!((given_up.status, given_up.next_attempt_at), (DeliveryStatus::Failed, None));
    assert_eq!(
        store.delivery(&t, &target.id, &events[0]).await.unwrap().unwrap().status,
        DeliveryStatus::Delivered
    );
    let (mut listed, mut before): (Vec<String>, Option<DeliveryPosition>) = (Vec::new(), None);
    loop {
        let page = store.list_deliveries(&t, &target.id, 2, before.as_ref()).await.unwrap();
        listed.extend(page.items.iter().map(|d| d.event_id.to_string()));
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    let newest_first: Vec<String> = (0..5).rev().map(|i| format!("transfer.committed:t{i}")).collect();
    assert_eq!(listed, newest_first);
    // Redelivered again and again: the delivery keeps its newest attempts only.
    for ms in 0..(MAX_ATTEMPTS_KEPT as u64 + 5) {
        let at = Attempt { duration_ms: ms, ..attempt(Some(500)) };
        store
            .record_attempt(&t, &target.id, &events[2], &at, DeliveryStatus::Retrying, Some(start))
            .await
            .unwrap();
    }
    let kept = store.delivery(&t, &target.id, &events[2]).await.unwrap().unwrap().attempts;
    let durations: Vec<u64> = kept.iter().map(|a| a.duration_ms).collect();
    assert_eq!(durations, (5..MAX_ATTEMPTS_KEPT as u64 + 5).collect::<Vec<_>>());
}

pub async fn a_delivery_is_leased_by_one_copy_at_a_time(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let target = endpoint("http://127.0.0.1:9/a");
    let e = event("hold.created:h1", now());
    let start = now();
    let (until, other) = (start + time::Duration::seconds(45), start + time::Duration::seconds(46));
    assert_eq!(store.lease_delivery(&t, &target.id, &e, start, until).await.unwrap(), Lease::Held);
    assert_eq!(store.lease_delivery(&t, &target.id, &e, start, other).await.unwrap(), Lease::Busy { until });
    // Another holder's release frees nothing; the holder's does.
    store.release_delivery(&t, &target.id, &e, other).await.unwrap();
    assert_eq!(store.lease_delivery(&t, &target.id, &e, start, other).await.unwrap(), Lease::Busy { until });
    store.release_delivery(&t, &target.id, &e, until).await.unwrap();
    assert_eq!(store.lease_delivery(&t, &target.id, &e, start, other).await.unwrap(), Lease::Held);
    // A lease past its end is anyone's.
    let after = other + time::Duration::seconds(1);
    let later = after + time::Duration::seconds(45);
    assert_eq!(store.lease_delivery(&t, &target.id, &e, after, later).await.unwrap(), Lease::Held);
}
