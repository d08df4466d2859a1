//! Webhooks end to end: endpoints added through the API, events published from the table's
//! stream and fanned out, delivered by the deliverer's handler (through the local event source on
//! the webhook queue) to real HTTP receivers on this machine, signatures checked as a receiver
//! checks them.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use harness::client::transfer_body as t;
use harness::receiver::{Receiver, Reply};
use harness::{Api, StackOptions, fresh_stack_with};
use http::StatusCode;
use ledger::port::{DeliveryJob, Lease};
use ledger::{EndpointId, EventId, TenantId};
use serde_json::{Value, json};
use time::OffsetDateTime;

async fn funded(api: &Api) {
    api.open_account("acme", "bank", true).await;
    api.open_account("acme", "alice", false).await;
}

/// Commits transfer `id` of `amount` from the bank to alice.
async fn commit(api: &Api, id: &str, amount: u64) {
    let reply = api.post("/v1/transfers", "acme", t(id, "bank", "alice", amount)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
}

/// Adds an endpoint for `url` receiving `types`; its id and secret.
async fn subscribe(api: &Api, url: &str, types: &[&str]) -> (String, String) {
    let reply = api.post("/v1/webhook-endpoints", "acme", json!({"url": url, "event_types": types})).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let secret = reply.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    (reply.body["id"].as_str().unwrap().to_owned(), secret)
}

/// Publishes what the stream holds, then delivers what is due.
async fn publish_and_deliver(api: &Api) {
    api.stack.publish().await.unwrap();
    api.stack.deliver().await.unwrap();
}

async fn set_enabled(api: &Api, endpoint: &str, enabled: bool) -> harness::client::Reply {
    let body = json!({"enabled": enabled}).to_string();
    api.raw("PATCH", &format!("/v1/webhook-endpoints/{endpoint}"), Some("acme"), body).await
}

fn verify(secret: &str, received: &harness::receiver::Received) -> Result<(), String> {
    standardwebhooks::Webhook::new(secret)
        .map_err(|e| e.to_string())?
        .verify(&received.body, &received.headers)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_failing_endpoint_gets_the_event_once_it_recovers_signed_as_standard_webhooks_say() {
    let api = Api::with_events().await;
    let receiver = Receiver::start(vec![Reply::status(500)], Reply::status(204)).await.unwrap();
    let (endpoint, secret) = subscribe(&api, &receiver.url, &["transfer.committed"]).await;
    funded(&api).await;
    commit(&api, "t1", 5).await;
    publish_and_deliver(&api).await;
    assert_eq!(receiver.received().len(), 1, "the first attempt, answered 500");
    // Retried after 5 s (and up to half a second of jitter), not before (its message stays
    // invisible until then: the two attempts' instants, below).
    tokio::time::sleep(Duration::from_millis(6_000)).await;
    api.stack.deliver().await.unwrap();
    let received = receiver.received();
    assert_eq!(received.len(), 2, "{received:?}");
    for r in &received {
        verify(&secret, r).unwrap();
        assert_eq!(r.headers["webhook-id"], "transfer.committed:t1");
        assert_eq!(r.json()["type"], "transfer.committed", "only the subscribed type");
        assert_eq!(r.json()["data"]["object"]["amount"], 5);
    }
    assert!(received[1].at - received[0].at >= Duration::from_secs(5));
    // The receiver's copy is the API's, byte for byte.
    let listed = api.get("/v1/events/transfer.committed:t1", "acme").await.body;
    assert_eq!(received[1].json(), listed);
    // A tampered body does not verify.
    let mut forged = received[1].clone();
    forged.body = forged.body.iter().map(|b| if *b == b'5' { b'9' } else { *b }).collect::<Vec<u8>>().into();
    assert!(verify(&secret, &forged).is_err());

    let deliveries = api.get(&format!("/v1/webhook-endpoints/{endpoint}/deliveries"), "acme").await;
    assert_eq!(deliveries.status, StatusCode::OK, "{}", deliveries.body);
    let delivery = &deliveries.body["data"][0];
    assert_eq!(
        (delivery["event_id"].as_str(), delivery["status"].as_str()),
        (Some("transfer.committed:t1"), Some("delivered"))
    );
    let codes: Vec<Value> =
        delivery["attempts"].as_array().unwrap().iter().map(|a| a["status_code"].clone()).collect();
    assert_eq!(codes, [json!(500), json!(204)]);
    assert_eq!(deliveries.body["data"].as_array().unwrap().len(), 1, "account.opened is not subscribed");
    // Published again (a publisher retry): no second delivery.
    api.stack.deliver().await.unwrap();
    assert_eq!(receiver.received().len(), 2);
}

#[tokio::test]
async fn a_410_disables_the_endpoint_and_an_event_says_so() {
    let api = Api::with_events().await;
    let receiver = Receiver::start(vec![], Reply::status(410)).await.unwrap();
    let (endpoint, _) = subscribe(&api, &receiver.url, &["*"]).await;
    funded(&api).await;
    publish_and_deliver(&api).await;
    let read = api.get(&format!("/v1/webhook-endpoints/{endpoint}"), "acme").await.body;
    assert_eq!(
        (read["enabled"].as_bool(), read["disabled_reason"].as_str()),
        (Some(false), Some("the endpoint answered 410 Gone"))
    );
    let events = api.get("/v1/events?type=webhook_endpoint.disabled", "acme").await.body;
    let disabled = &events["data"].as_array().unwrap();
    assert_eq!(disabled.len(), 1, "{events}");
    assert_eq!(disabled[0]["data"]["object"]["id"], endpoint.as_str());
    assert!(!disabled[0].to_string().contains("whsec_"), "no secret in an event");
    // Disabled: later events are not delivered (the first 410 ended it; the other opening, dropped).
    commit(&api, "t2", 5).await;
    publish_and_deliver(&api).await;
    let after = receiver.received().len();
    assert!(after <= 2, "{after} requests to a disabled endpoint");
    // Enabled again, it receives.
    let enabled = set_enabled(&api, &endpoint, true).await;
    assert_eq!((enabled.status, enabled.body["enabled"].as_bool()), (StatusCode::OK, Some(true)));
}

#[tokio::test]
async fn a_delivery_whose_endpoint_is_disabled_before_its_retry_ends_failed() {
    let api = Api::with_events().await;
    let receiver = Receiver::start(vec![], Reply::status(503)).await.unwrap();
    let (endpoint, _) = subscribe(&api, &receiver.url, &["transfer.committed"]).await;
    funded(&api).await;
    commit(&api, "t1", 5).await;
    publish_and_deliver(&api).await;
    let deliveries = format!("/v1/webhook-endpoints/{endpoint}/deliveries");
    let retrying = api.get(&deliveries, "acme").await.body;
    assert_eq!(retrying["data"][0]["status"], "retrying", "{retrying}");
    assert!(retrying["data"][0]["next_attempt_at"].is_string(), "{retrying}");
    let disabled = set_enabled(&api, &endpoint, false).await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.body);
    // The retry comes due after 5 s: dropped, with no attempt, and listed as failed.
    tokio::time::sleep(Duration::from_millis(6_000)).await;
    api.stack.deliver().await.unwrap();
    assert_eq!(receiver.received().len(), 1, "no attempt on a disabled endpoint");
    let ended = api.get(&deliveries, "acme").await.body;
    let delivery = &ended["data"][0];
    assert_eq!(
        (delivery["status"].as_str(), delivery["next_attempt_at"].is_null()),
        (Some("failed"), true),
        "{ended}"
    );
    assert_eq!(delivery["attempts"].as_array().map(Vec::len), Some(1), "{ended}");
}

/// One copy of the message delivering `event` to `endpoint`, as SQS hands it over.
fn copy_of(n: u32, endpoint: &str, event: &str, since: OffsetDateTime) -> SqsEvent {
    let job = DeliveryJob {
        tenant: TenantId::parse("acme").unwrap(),
        endpoint: EndpointId::parse(endpoint).unwrap(),
        event: EventId::parse(event).unwrap(),
        since,
    };
    let mut message = SqsMessage::default();
    message.message_id = Some(format!("copy-{n}"));
    message.body = Some(serde_json::to_string(&job).unwrap());
    let mut event = SqsEvent::default();
    event.records.push(message);
    event
}

#[tokio::test]
async fn two_copies_of_a_delivery_handled_at_once_attempt_it_once() {
    let api = Api::with_events().await;
    // Slow enough that the second copy arrives while the first attempts, even on a busy machine.
    let receiver = Receiver::start(vec![], Reply::status(200).after(Duration::from_secs(5))).await.unwrap();
    let (endpoint, _) = subscribe(&api, &receiver.url, &["transfer.committed"]).await;
    funded(&api).await;
    commit(&api, "t1", 5).await;
    // SQS delivers at least once: two invocations get the same message at the same moment.
    let (since, deliverer) = (OffsetDateTime::now_utc(), api.stack.deliverer());
    let copy = |n| copy_of(n, &endpoint, "transfer.committed:t1", since);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (first, second) = tokio::join!(deliverer(copy(1), deadline), deliverer(copy(2), deadline));
    assert_eq!(receiver.received().len(), 1, "one attempt for both copies");
    let put_back: Vec<String> = [first, second]
        .into_iter()
        .flat_map(|r| r.batch_item_failures.into_iter().map(|f| f.item_identifier))
        .collect();
    assert_eq!(put_back.len(), 1, "the copy that found the delivery leased is put back: {put_back:?}");
    // Handled again once the lease is released, it finds the delivery done.
    let again = deliverer(copy(3), deadline).await;
    assert!(again.batch_item_failures.is_empty());
    assert_eq!(receiver.received().len(), 1);
    let listed = api.get(&format!("/v1/webhook-endpoints/{endpoint}/deliveries"), "acme").await.body;
    let delivery = &listed["data"][0];
    assert_eq!(delivery["status"], "delivered", "{listed}");
    assert_eq!(delivery["attempts"].as_array().map(Vec::len), Some(1), "{listed}");
}

#[tokio::test]
async fn a_delivery_lease_is_held_by_one_until_released_or_over() {
    let api = Api::with_events().await;
    funded(&api).await;
    let store = &api.stack.store;
    let (tenant, endpoint) = (TenantId::parse("acme").unwrap(), EndpointId::parse("we_lease").unwrap());
    let event = store
        .get_event(&tenant, &EventId::parse("account.opened:bank").unwrap(), OffsetDateTime::now_utc())
        .await
        .unwrap();
    let now = OffsetDateTime::now_utc();
    let until = now + Duration::from_secs(20);
    let lease = |at, until| store.lease_delivery(&tenant, &endpoint, &event, at, until);
    assert_eq!(lease(now, until).await.unwrap(), Lease::Held);
    assert_eq!(lease(now, now + Duration::from_secs(60)).await.unwrap(), Lease::Busy { until });
    // Another holder's end releases nothing.
    store.release_delivery(&tenant, &endpoint, &event, until + Duration::from_secs(1)).await.unwrap();
    assert_eq!(lease(now, until).await.unwrap(), Lease::Busy { until });
    store.release_delivery(&tenant, &endpoint, &event, until).await.unwrap();
    let next = now + Duration::from_secs(30);
    assert_eq!(lease(now, next).await.unwrap(), Lease::Held);
    // Past its end (its holder killed), it is anyone's.
    assert_eq!(lease(next, next + Duration::from_secs(20)).await.unwrap(), Lease::Held);
}

#[tokio::test]
async fn endpoints_are_managed_and_events_redelivered_and_replayed_on_demand() {
    let api = Api::with_events().await;
    let receiver = Receiver::start(vec![], Reply::status(200)).await.unwrap();
    let (endpoint, old_secret) = subscribe(&api, &receiver.url, &["account.opened"]).await;
    // The secret is shown once: not on reads or lists.
    let read = api.get(&format!("/v1/webhook-endpoints/{endpoint}"), "acme").await;
    assert_eq!(read.status, StatusCode::OK);
    assert!(read.body.get("secret").is_none() && !read.body.to_string().contains("whsec_"));
    let list = api.get("/v1/webhook-endpoints", "acme").await.body;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains("whsec_"));
    // Another tenant sees nothing of it.
    assert_eq!(
        api.get(&format!("/v1/webhook-endpoints/{endpoint}"), "globex").await.status,
        StatusCode::NOT_FOUND
    );
    // Bad requests are typed 400s.
    for (body, field) in [
        (json!({"url": "ftp://x/", "event_types": ["*"]}), "url"),
        (json!({"url": receiver.url, "event_types": []}), "event_types"),
        (json!({"url": receiver.url, "event_types": ["transfer.exploded"]}), "event_types"),
        (json!({"url": receiver.url, "event_types": ["*"], "extra": 1}), "extra"),
    ] {
        let reply = api.post("/v1/webhook-endpoints", "acme", body).await;
        assert_eq!(
            (reply.status, reply.body["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{}",
            reply.body
        );
    }

    funded(&api).await;
    publish_and_deliver(&api).await;
    assert_eq!(receiver.received().len(), 2, "bank and alice opened");
    // Rotation: both secrets sign for a day.
    let rotated =
        api.post(&format!("/v1/webhook-endpoints/{endpoint}/rotate-secret"), "acme", json!({})).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let new_secret = rotated.body["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, old_secret);
    // Redelivery on demand: a new delivery of the same event, signed with both.
    let again = api
        .post(
            &format!("/v1/webhook-endpoints/{endpoint}/deliveries"),
            "acme",
            json!({"event_id": "account.opened:alice"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.body);
    api.stack.deliver().await.unwrap();
    let received = receiver.received();
    assert_eq!(received.len(), 3);
    let last = received.last().unwrap();
    assert_eq!(last.headers["webhook-id"], "account.opened:alice");
    assert_eq!(last.headers["webhook-signature"].to_str().unwrap().split(' ').count(), 2);
    verify(&old_secret, last).unwrap();
    verify(&new_secret, last).unwrap();
    // Replay from a time: what the endpoint missed since. It has every event: nothing is queued.
    let replay_path = format!("/v1/webhook-endpoints/{endpoint}/replay");
    let replay = || api.post(&replay_path, "acme", json!({"from": "2026-01-01T00:00:00Z"}));
    let queued = |reply: &harness::client::Reply| {
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
        (reply.body["queued"].as_u64().unwrap(), reply.body["already_delivered"].as_u64().unwrap())
    };
    assert_eq!(queued(&replay().await), (0, 2));
    // Events while it was disabled are missed (their deliveries end failed); a replay sends them,
    // and a replay repeated, or two at once, deliver each once.
    assert_eq!(set_enabled(&api, &endpoint, false).await.status, StatusCode::OK);
    api.open_account("acme", "dave", false).await;
    api.open_account("acme", "erin", false).await;
    publish_and_deliver(&api).await;
    assert_eq!(receiver.received().len(), 3);
    assert_eq!(set_enabled(&api, &endpoint, true).await.status, StatusCode::OK);
    let (first, second) = tokio::join!(replay(), replay());
    let (first, second) = (queued(&first), queued(&second));
    assert_eq!((first.0 + first.1, second.0 + second.1), (4, 4), "four events each");
    assert!(first.0 >= 2 && second.0 >= 2, "dave and erin were missed: {first:?} {second:?}");
    api.stack.deliver().await.unwrap();
    assert_eq!(queued(&replay().await), (0, 4), "a repeated replay queues nothing");
    api.stack.deliver().await.unwrap();
    let ids: Vec<String> =
        receiver.received().iter().map(|r| r.headers["webhook-id"].to_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 5, "dave and erin once each: {ids:?}");
    assert_eq!(ids[3..].iter().filter(|id| id.ends_with(":dave") || id.ends_with(":erin")).count(), 2);
    let missing = api
        .post(
            &format!("/v1/webhook-endpoints/{endpoint}/deliveries"),
            "acme",
            json!({"event_id": "account.opened:nobody"}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    // Deleted: gone, and what was queued for it is dropped.
    assert_eq!(
        api.raw("DELETE", &format!("/v1/webhook-endpoints/{endpoint}"), Some("acme"), "").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.get(&format!("/v1/webhook-endpoints/{endpoint}"), "acme").await.status,
        StatusCode::NOT_FOUND
    );
    api.open_account("acme", "carol", false).await;
    publish_and_deliver(&api).await;
    assert_eq!(receiver.received().len(), 5);
}

#[tokio::test]
async fn a_slow_endpoint_does_not_hold_up_the_others() {
    // The slow endpoint answers after ten minutes, its attempt times out after five: while it is
    // in flight, the fast endpoint gets every delivery, or it was held up behind it.
    const TIMEOUT: Duration = Duration::from_secs(300);
    let options = StackOptions { webhook_timeout: TIMEOUT, events_out: true, ..StackOptions::default() };
    let api = Api::on(fresh_stack_with(options).await);
    let slow = Receiver::start(vec![], Reply::status(200).after(Duration::from_secs(600))).await.unwrap();
    let fast = Receiver::start(vec![], Reply::status(200)).await.unwrap();
    subscribe(&api, &slow.url, &["transfer.committed"]).await;
    subscribe(&api, &fast.url, &["transfer.committed"]).await;
    funded(&api).await;
    for i in 0..6 {
        commit(&api, &format!("t{i}"), 1).await;
    }
    api.stack.publish().await.unwrap();
    let started = std::time::Instant::now();
    let source = api.stack.delivery_source.clone();
    let running = tokio::spawn(source.run(api.stack.deliverer()));
    // Waits for the fast endpoint, while the slow one's first attempt is in flight (it cannot end
    // before the attempt times out).
    while (fast.received().len() < 6 || slow.received().is_empty()) && started.elapsed() < TIMEOUT {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.abort();
    assert_eq!(fast.received().len(), 6, "the fast endpoint was held up behind the slow one");
    assert!(!slow.received().is_empty(), "the slow endpoint was tried too");
}

/// A tenant at its endpoint cap floods events beside a quiet tenant, whose one event is the last
/// of the stream: it is fanned out and delivered before the flood's deliveries are half done (the
/// publisher's work per event is the same whatever the endpoints; the webhook queue groups fan-outs
/// by tenant and deliveries by endpoint, and the fair queue serves the quiet groups first), with
/// the deliverer running as its event source runs it, 10 at once. Every delivery is made once.
/// (How long the quiet tenant waits, beside the flood and alone, is a figure: `cargo stack bench
/// events`.)
#[tokio::test]
async fn a_tenant_flooding_its_endpoints_does_not_hold_up_another() {
    use ledger::webhook::MAX_ENDPOINTS;
    const FLOOD: usize = 30;
    let api = Api::with_events().await;
    let flooded = Receiver::start(vec![], Reply::status(200)).await.unwrap();
    let quiet = Receiver::start(vec![], Reply::status(200)).await.unwrap();
    for n in 0..MAX_ENDPOINTS {
        let body = json!({"url": format!("{}/{n}", flooded.url), "event_types": ["account.opened"]});
        assert_eq!(api.post("/v1/webhook-endpoints", "flood", body).await.status, StatusCode::CREATED);
    }
    let body = json!({"url": quiet.url, "event_types": ["account.opened"]});
    assert_eq!(api.post("/v1/webhook-endpoints", "quiet", body).await.status, StatusCode::CREATED);
    for i in 0..FLOOD {
        api.open_account("flood", &format!("a{i}"), false).await;
    }
    api.open_account("quiet", "q", false).await;
    api.stack.publish().await.unwrap();
    // The publisher queued one message per event, whatever the endpoints behind it.
    assert_eq!(api.stack.delivery_source.depth().await.unwrap(), FLOOD + 1);
    let drained =
        api.stack.delivery_source.drain(&api.stack.deliverer(), Duration::from_secs(300)).await.unwrap();
    assert!(drained.peak_concurrency > 1, "the deliverer ran one invocation at a time");
    let (flood, quiet) = (flooded.received(), quiet.received());
    assert_eq!(quiet.len(), 1, "the quiet tenant's one delivery");
    assert_eq!(quiet[0].headers["webhook-id"], "account.opened:q");
    assert_eq!(flood.len(), FLOOD * MAX_ENDPOINTS, "each event to each endpoint");
    let mut per_event: BTreeMap<String, usize> = BTreeMap::new();
    for received in &flood {
        *per_event.entry(received.headers["webhook-id"].to_str().unwrap().to_owned()).or_default() += 1;
    }
    assert_eq!(per_event.len(), FLOOD);
    assert!(per_event.values().all(|n| *n == MAX_ENDPOINTS), "once to each endpoint: {per_event:?}");
    let before = flood.iter().filter(|r| r.at < quiet[0].at).count();
    assert!(
        before < flood.len() / 2,
        "the quiet tenant waited for {before} of the flood's {} deliveries",
        flood.len()
    );
}

/// Every byte string an item holds (strings and binaries, nested ones too).
fn item_bytes(value: &aws_sdk_dynamodb::types::AttributeValue, out: &mut Vec<Vec<u8>>) {
    use aws_sdk_dynamodb::types::AttributeValue as V;
    match value {
        V::S(s) => out.push(s.as_bytes().to_vec()),
        V::B(b) => out.push(b.as_ref().to_vec()),
        V::L(list) => list.iter().for_each(|v| item_bytes(v, out)),
        V::M(map) => map.values().for_each(|v| item_bytes(v, out)),
        V::Ss(set) => out.extend(set.iter().map(|s| s.as_bytes().to_vec())),
        V::Bs(set) => out.extend(set.iter().map(|b| b.as_ref().to_vec())),
        _ => {}
    }
}

fn record_bytes(value: &aws_sdk_dynamodbstreams::types::AttributeValue, out: &mut Vec<Vec<u8>>) {
    use aws_sdk_dynamodbstreams::types::AttributeValue as V;
    match value {
        V::S(s) => out.push(s.as_bytes().to_vec()),
        V::B(b) => out.push(b.as_ref().to_vec()),
        V::L(list) => list.iter().for_each(|v| record_bytes(v, out)),
        V::M(map) => map.values().for_each(|v| record_bytes(v, out)),
        V::Ss(set) => out.extend(set.iter().map(|s| s.as_bytes().to_vec())),
        V::Bs(set) => out.extend(set.iter().map(|b| b.as_ref().to_vec())),
        _ => {}
    }
}

/// Every byte string of the table's items, of its index's, and of its stream's records (images
/// old and new), read whole.
async fn everything_stored(api: &Api) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let db = &api.stack.dynamodb;
    for index in [None, Some("gsi1")] {
        let items: Vec<_> = db
            .scan()
            .table_name(&api.stack.table)
            .set_index_name(index.map(str::to_owned))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .unwrap();
        assert!(!items.is_empty());
        for item in &items {
            item.values().for_each(|v| item_bytes(v, &mut out));
        }
    }
    let streams = harness::Emulators::shared().streams().await;
    let table = db.describe_table().table_name(&api.stack.table).send().await.unwrap();
    let arn = table.table().and_then(|t| t.latest_stream_arn()).unwrap().to_owned();
    let stream = streams.describe_stream().stream_arn(&arn).send().await.unwrap();
    let mut records = 0;
    for shard in stream.stream_description().map(|d| d.shards()).unwrap_or_default() {
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id().unwrap())
            .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator;
        while let Some(at) = iterator {
            let page = streams.get_records().shard_iterator(at).send().await.unwrap();
            if page.records().is_empty() {
                break;
            }
            for record in page.records() {
                records += 1;
                let change = record.dynamodb().unwrap();
                for image in [change.new_image(), change.old_image()].into_iter().flatten() {
                    image.values().for_each(|v| record_bytes(v, &mut out));
                }
            }
            iterator = page.next_shard_iterator;
        }
    }
    assert!(records > 0, "the stream was read");
    out
}

/// Signing secrets are sealed: once an endpoint is added and its secret rotated, neither secret
/// (its text, or the base64 of its key) is in any item of the table, of its index, or in any
/// record of its stream (the endpoint's item is copied to the index, and the stream carries every
/// write); deliveries are still signed with both; a sealed secret opens for its own endpoint only.
#[tokio::test]
async fn signing_secrets_are_in_clear_nowhere_in_the_table_its_index_or_its_stream() {
    use ledger::port::Sealer;
    let api = Api::with_events().await;
    let receiver = Receiver::start(vec![], Reply::status(200)).await.unwrap();
    let (endpoint, old) = subscribe(&api, &receiver.url, &["account.opened"]).await;
    let rotated =
        api.post(&format!("/v1/webhook-endpoints/{endpoint}/rotate-secret"), "acme", json!({})).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let new = rotated.body["secret"].as_str().unwrap().to_owned();
    funded(&api).await;
    publish_and_deliver(&api).await;
    let stored = everything_stored(&api).await;
    for secret in [&old, &new] {
        let key = secret.trim_start_matches("whsec_");
        for needle in [secret.as_bytes(), key.as_bytes()] {
            assert!(
                !stored.iter().any(|bytes| bytes.windows(needle.len()).any(|w| w == needle)),
                "a secret in clear"
            );
        }
    }
    // Still signed with both.
    let received = receiver.received();
    assert_eq!(received.len(), 2);
    for delivery in &received {
        verify(&old, delivery).unwrap();
        verify(&new, delivery).unwrap();
    }
    // Sealed for acme's endpoint: it opens for no other.
    let (acme, globex) = (TenantId::parse("acme").unwrap(), TenantId::parse("globex").unwrap());
    let id = EndpointId::parse(endpoint.as_str()).unwrap();
    let (stored_endpoint, _) = api.stack.store.get_endpoint(&acme, &id).await.unwrap();
    let sealed = &stored_endpoint.secrets[0].sealed;
    assert_eq!(api.stack.sealer.open(&acme, &id, sealed).await.unwrap().expose(), new);
    assert!(api.stack.sealer.open(&globex, &id, sealed).await.is_err());
    assert!(api.stack.sealer.open(&acme, &EndpointId::generate(), sealed).await.is_err());
}
