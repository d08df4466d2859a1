//! The publisher end to end: changes made through the API, their events read from DynamoDB
//! Local's stream by the local event source mapping (filter, lanes, retries, bisection, on-failure
//! destination as template.yaml sets them), published by the publisher's handler to the event bus,
//! and read back from a queue a rule on the bus copies every event to.

use std::collections::{BTreeMap, BTreeSet};

use harness::client::transfer_body as t;
use harness::{Api, FaultPlan, StackOptions, fresh_stack_with};
use http::StatusCode;
use serde_json::Value;

/// Every event on the bus since the last look (EventBridge envelopes).
async fn on_the_bus(api: &Api) -> Vec<Value> {
    api.stack.on_the_bus().await.unwrap().into_iter().map(|e| e.envelope).collect()
}

/// The tenant's events as the API lists them, by id.
async fn listed(api: &Api, tenant: &str) -> BTreeMap<String, Value> {
    let mut events = BTreeMap::new();
    let mut path = "/v1/events?limit=100".to_owned();
    loop {
        let page = api.get(&path, tenant).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        for event in page.body["data"].as_array().unwrap() {
            events.insert(event["id"].as_str().unwrap().to_owned(), event.clone());
        }
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/events?limit=100&cursor={cursor}"),
            None => return events,
        }
    }
}

async fn some_changes(api: &Api, transfers: usize) {
    api.open_account("acme", "bank", true).await;
    api.open_account("acme", "alice", false).await;
    for i in 0..transfers {
        let reply =
            api.post("/v1/transfers", "acme", t(&format!("t{i}"), "bank", "alice", 1 + i as u64)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
    let refused = api.post("/v1/transfers", "acme", t("over", "alice", "bank", 1_000_000)).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn every_event_reaches_the_bus_as_the_api_lists_it_with_its_correlation_id() {
    let api = Api::with_events().await;
    some_changes(&api, 5).await;
    let request = http::Request::post("/v1/transfers")
        .header("authorization", format!("Bearer {}", api.token("acme")))
        .header("content-type", "application/json")
        .header("x-correlation-id", "order-42")
        .body(t("traced", "bank", "alice", 3).to_string().into())
        .unwrap();
    assert_eq!(api.send_request(request).await.status, StatusCode::CREATED);
    let pass = api.stack.publish().await.unwrap();
    assert_eq!(pass.dead_lettered, 0);
    let listed = listed(&api, "acme").await;
    assert_eq!(listed.len(), 2 + 5 + 1 + 1, "{:?}", listed.keys());
    let bus = on_the_bus(&api).await;
    let mut published = BTreeMap::new();
    for envelope in &bus {
        assert_eq!(envelope["source"], "ledger");
        let detail = envelope["detail"].clone();
        assert_eq!(envelope["detail-type"], detail["type"]);
        published.insert(detail["id"].as_str().unwrap().to_owned(), detail);
    }
    assert_eq!(bus.len(), published.len(), "no event published twice without a fault");
    assert_eq!(published.keys().collect::<Vec<_>>(), listed.keys().collect::<Vec<_>>());
    for (id, detail) in &published {
        // The event as listed, with the correlation id of the request that caused it.
        let mut detail = detail.clone();
        let correlation = detail.as_object_mut().unwrap().remove("correlation_id").unwrap();
        assert_eq!(&detail, &listed[id], "{id}");
        assert!(correlation.is_string(), "{id}: every event here was caused by a request");
    }
    assert_eq!(published["transfer.committed:traced"]["correlation_id"], "order-42");
    // Nothing new: a second drain publishes nothing.
    assert_eq!(api.stack.publish().await.unwrap().invocations, 0);
    assert!(on_the_bus(&api).await.is_empty());
}

#[tokio::test]
async fn a_publisher_killed_mid_batch_loses_no_event() {
    // A third of the publisher's invocations are killed at a random moment (and as many of the
    // worker's, which this test does not use): their batches come back from the stream.
    let plan = FaultPlan { seed: 11, kill: 0.35, ..FaultPlan::none() };
    let stack =
        fresh_stack_with(StackOptions { faults: plan, events_out: true, ..StackOptions::default() }).await;
    let api = Api::on(stack);
    some_changes(&api, 60).await;
    let pass = api.stack.publish().await.unwrap();
    let kills = api.stack.faults.counts().kills;
    assert!(kills > 0, "no invocation was killed: the test proves nothing ({pass:?})");
    assert_eq!(pass.dead_lettered, 0, "{pass:?}");
    let listed: BTreeSet<String> = listed(&api, "acme").await.into_keys().collect();
    let bus = on_the_bus(&api).await;
    let published: BTreeSet<String> =
        bus.iter().map(|e| e["detail"]["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(published, listed, "every event published, none invented");
    println!(
        "{} events, {} on the bus ({} again), {kills} invocations killed, {} invocations",
        listed.len(),
        bus.len(),
        bus.len() - listed.len(),
        pass.invocations
    );
}

#[tokio::test]
async fn the_sample_stream_event_is_published_and_a_record_that_is_no_event_is_skipped() {
    let api = Api::with_events().await;
    let raw =
        std::fs::read_to_string(harness::paths::workspace_root().join("events/dynamodb-stream-event.json"))
            .unwrap();
    let event: aws_lambda_events::dynamodb::Event = serde_json::from_str(&raw).unwrap();
    let response = (api.stack.publisher())(event.clone()).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let bus = on_the_bus(&api).await;
    assert_eq!(bus.len(), 1);
    assert_eq!(bus[0]["detail"]["id"], "transfer.committed:t-1001");
    assert_eq!(bus[0]["detail"]["correlation_id"], "order-77-checkout");
    assert_eq!(bus[0]["detail-type"], "transfer.committed");

    // A record that is not an event (here: its body is gone) is skipped, and what follows it is
    // published: nothing could ever publish it, so it must not hold its shard.
    let mut broken = event.clone();
    let mut bad = broken.records[0].clone();
    bad.change.sequence_number = Some("2".into());
    bad.change.new_image.remove("body");
    let mut after = broken.records[0].clone();
    after.change.sequence_number = Some("3".into());
    broken.records = vec![bad, after];
    let response = (api.stack.publisher())(broken).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(on_the_bus(&api).await.len(), 1, "the event after the bad record");
}
