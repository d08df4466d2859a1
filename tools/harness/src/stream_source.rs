//! The local stand-in for Lambda's DynamoDB Streams event source mapping, as template.yaml
//! configures it, on DynamoDB Local's streams: the stream read from its start, filtered by the
//! mapping's pattern, each shard's records split into `ParallelizationFactor` lanes by item key
//! (one item's records stay in order) and each lane invoked with batches of up to `BatchSize`.
//! The handler reports the first record it failed; the lane resumes from it. A killed invocation
//! (an injected fault) is a function error: its batch is halved (`BisectBatchOnFunctionError`)
//! and retried. After `MaximumRetryAttempts`, the batch goes to the on-failure destination (an SQS
//! queue) and the lane moves on, as Lambda does.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tracing::Instrument;

use crate::faults::Faults;

/// The function the mapping invokes: one batch of stream records in, the first failed one out.
pub type StreamHandler =
    Arc<dyn Fn(Event) -> Pin<Box<dyn Future<Output = DynamoDbEventResponse> + Send>> + Send + Sync>;

/// The publisher function's handler, as the Lambda runtime would call it.
pub fn publisher_handler(publisher: publisher::Publisher) -> StreamHandler {
    let publisher = Arc::new(publisher);
    Arc::new(move |event| {
        let publisher = publisher.clone();
        Box::pin(async move { publisher::handle(&publisher, event).await })
    })
}

/// The mapping's settings, from template.yaml.
#[derive(Clone, Debug)]
pub struct StreamSpec {
    pub batch_size: usize,
    pub parallelization: usize,
    pub max_retries: u32,
    pub bisect: bool,
    /// The filter's patterns: a record passes if it matches any (none: every record passes).
    pub patterns: Vec<Value>,
}

/// What a lane holds: the records read and not yet handled, and the retries of its head batch.
#[derive(Default)]
struct Lane {
    records: VecDeque<Value>,
    attempts: u32,
    /// The size of the next batch (less than `batch_size` while a failing batch is bisected).
    batch: Option<usize>,
}

/// Longest a killed invocation may run before it is killed.
const KILL_WITHIN: Duration = Duration::from_millis(400);
/// Pause of a poller that found the stream empty (DynamoDB Streams is polled 4 times a second).
const IDLE_POLL: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct LocalStreamSource {
    streams: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    spec: StreamSpec,
    faults: Arc<Faults>,
    on_failure: (aws_sdk_sqs::Client, String),
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// Each shard's iterator (`None`: the shard is closed and read to its end).
    iterators: HashMap<String, Option<String>>,
    lanes: Vec<Lane>,
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// Records read from the stream (filtered in or out).
    pub read: usize,
    pub invocations: usize,
    /// Records still waiting in the lanes (being retried).
    pub waiting: usize,
    /// Batches sent to the on-failure destination.
    pub dead_lettered: usize,
}

impl LocalStreamSource {
    pub fn new(
        streams: aws_sdk_dynamodbstreams::Client,
        stream_arn: impl Into<String>,
        spec: StreamSpec,
        faults: Arc<Faults>,
        on_failure: (aws_sdk_sqs::Client, String),
    ) -> Self {
        let lanes = (0..spec.parallelization.max(1)).map(|_| Lane::default()).collect();
        Self {
            streams,
            stream_arn: stream_arn.into(),
            spec,
            faults,
            on_failure,
            state: Arc::new(Mutex::new(State { iterators: HashMap::new(), lanes })),
        }
    }

    /// Reads what the stream has now, then invokes every lane once with its head batch, at once.
    pub async fn pass(&self, handler: &StreamHandler) -> io::Result<Pass> {
        let mut state = self.state.lock().await;
        let read = self.read(&mut state).await?;
        let lanes = state.lanes.len();
        let mut pass = Pass { read, ..Pass::default() };
        let invocations =
            state.lanes.iter_mut().enumerate().filter(|(_, lane)| !lane.records.is_empty()).map(
                |(i, lane)| {
                    let size = lane.batch.unwrap_or(self.spec.batch_size).min(lane.records.len()).max(1);
                    let batch: Vec<Value> = lane.records.iter().take(size).cloned().collect();
                    let handler = handler.clone();
                    async move { (i, size, self.invoke(&handler, batch).await) }
                },
            );
        let outcomes = futures::future::join_all(invocations).await;
        pass.invocations = outcomes.len();
        for (i, size, outcome) in outcomes {
            let lane = &mut state.lanes[i % lanes];
            match outcome {
                // Done: the batch leaves the lane.
                Some(None) => {
                    lane.records.drain(..size);
                    (lane.attempts, lane.batch) = (0, None);
                }
                // The handler failed from `failed` on: what came before it is done.
                Some(Some(failed)) => {
                    let done =
                        lane.records.iter().take(size).position(|r| sequence(r) == failed).unwrap_or(0);
                    lane.records.drain(..done);
                    lane.attempts = if done > 0 { 1 } else { lane.attempts + 1 };
                }
                // Killed: a function error.
                None => {
                    lane.attempts += 1;
                    if self.spec.bisect && size > 1 {
                        lane.batch = Some(size.div_ceil(2));
                    }
                }
            }
            if lane.attempts > self.spec.max_retries {
                let size = lane.batch.unwrap_or(self.spec.batch_size).min(lane.records.len());
                let batch: Vec<Value> = lane.records.drain(..size).collect();
                self.dead_letter(&batch).await?;
                (lane.attempts, lane.batch) = (0, None);
                pass.dead_lettered += 1;
            }
        }
        pass.waiting = state.lanes.iter().map(|l| l.records.len()).sum();
        Ok(pass)
    }

    /// Passes for as long as the process runs, as the deployed mapping polls: a failed pass (the
    /// emulator restarting, say) is logged and the next one carries on from the same place.
    pub async fn run(self, handler: StreamHandler) {
        loop {
            match self.pass(&handler).await {
                // Nothing new: wait (a lane still retrying retries at this pace).
                Ok(pass) if pass.read == 0 => tokio::time::sleep(IDLE_POLL).await,
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "stream poll failed; retrying");
                    tokio::time::sleep(IDLE_POLL).await;
                }
            }
        }
    }

    /// Passes until the stream has nothing new and every lane is empty, or `limit` runs out.
    pub async fn drain(&self, handler: &StreamHandler, limit: Duration) -> io::Result<Pass> {
        let started = std::time::Instant::now();
        let mut total = Pass::default();
        let mut quiet = 0;
        loop {
            let pass = self.pass(handler).await?;
            total.read += pass.read;
            total.invocations += pass.invocations;
            total.dead_lettered += pass.dead_lettered;
            total.waiting = pass.waiting;
            // Two empty reads in a row: DynamoDB Local may publish a record a moment after its write.
            quiet = if pass.read == 0 && pass.waiting == 0 { quiet + 1 } else { 0 };
            if quiet >= 2 {
                return Ok(total);
            }
            if started.elapsed() > limit {
                return Err(io::Error::other(format!(
                    "the stream did not drain within {limit:?}: {total:?}"
                )));
            }
            if pass.read == 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// One invocation: `None` if killed, else the first failed record's sequence number, if any.
    async fn invoke(&self, handler: &StreamHandler, batch: Vec<Value>) -> Option<Option<String>> {
        let event: Event = match serde_json::from_value(json!({ "Records": batch })) {
            Ok(event) => event,
            Err(err) => {
                tracing::error!(error = %err, "a stream record does not fit Lambda's event shape");
                return None;
            }
        };
        let span = tracing::info_span!("Lambda runtime invoke", requestId = %uuid::Uuid::new_v4());
        let invocation = handler(event).instrument(span);
        let response = match self.faults.kill_after(KILL_WITHIN) {
            None => invocation.await,
            Some(after) => match tokio::time::timeout(after, invocation).await {
                Ok(response) => response,
                Err(_) => {
                    tracing::warn!(records = batch.len(), "publisher invocation killed (injected)");
                    return None;
                }
            },
        };
        Some(response.batch_item_failures.into_iter().find_map(|f| f.item_identifier))
    }

    /// Reads every shard from where it stands, keeping the records the filter passes.
    async fn read(&self, state: &mut State) -> io::Result<usize> {
        let shards = self
            .streams
            .describe_stream()
            .stream_arn(&self.stream_arn)
            .send()
            .await
            .map_err(streams_err)?
            .stream_description
            .map(|d| d.shards.unwrap_or_default())
            .unwrap_or_default();
        let mut read = 0;
        for shard in shards {
            let Some(id) = shard.shard_id else { continue };
            if !state.iterators.contains_key(&id) {
                let iterator = self
                    .streams
                    .get_shard_iterator()
                    .stream_arn(&self.stream_arn)
                    .shard_id(&id)
                    .shard_iterator_type(ShardIteratorType::TrimHorizon)
                    .send()
                    .await
                    .map_err(streams_err)?
                    .shard_iterator;
                state.iterators.insert(id.clone(), iterator);
            }
            let Some(Some(iterator)) = state.iterators.get(&id).cloned() else { continue };
            let out =
                self.streams.get_records().shard_iterator(iterator).send().await.map_err(streams_err)?;
            state.iterators.insert(id, out.next_shard_iterator);
            for record in out.records.unwrap_or_default() {
                read += 1;
                let record = record_json(&record, &self.stream_arn);
                if self.spec.patterns.is_empty() || self.spec.patterns.iter().any(|p| matches(p, &record)) {
                    let lanes = state.lanes.len();
                    state.lanes[lane_of(&record, lanes)].records.push_back(record);
                }
            }
        }
        Ok(read)
    }

    /// What Lambda sends an on-failure destination: where the records are, not the records.
    async fn dead_letter(&self, batch: &[Value]) -> io::Result<()> {
        let first = batch.first().map(sequence).unwrap_or_default();
        let last = batch.last().map(sequence).unwrap_or_default();
        let body = json!({
            "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": self.spec.max_retries + 1},
            "DDBStreamBatchInfo": {
                "streamArn": self.stream_arn,
                "startSequenceNumber": first,
                "endSequenceNumber": last,
                "batchSize": batch.len(),
            }
        });
        tracing::error!(records = batch.len(), "stream batch sent to the on-failure destination");
        let (client, url) = &self.on_failure;
        client
            .send_message()
            .queue_url(url)
            .message_body(body.to_string())
            .send()
            .await
            .map_err(|e| io::Error::other(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}

fn streams_err(e: impl std::error::Error + 'static) -> io::Error {
    io::Error::other(aws_sdk_dynamodbstreams::error::DisplayErrorContext(e).to_string())
}

fn sequence(record: &Value) -> String {
    record["dynamodb"]["SequenceNumber"].as_str().unwrap_or_default().to_owned()
}

/// The lane of a record: by a hash of its item's key, so one item's records keep their order.
fn lane_of(record: &Value, lanes: usize) -> usize {
    let key = record["dynamodb"]["Keys"].to_string();
    let hash = key.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    hash as usize % lanes.max(1)
}

/// An EventBridge-style pattern, as Lambda's filter criteria use it: every key of the pattern is
/// in the record and matches; a list matches a value equal to one of its elements.
pub fn matches(pattern: &Value, record: &Value) -> bool {
    match pattern {
        Value::Object(fields) => fields.iter().all(|(k, p)| record.get(k).is_some_and(|r| matches(p, r))),
        Value::Array(allowed) => allowed.iter().any(|a| a == record),
        other => other == record,
    }
}

/// A stream record as Lambda hands it to a function.
fn record_json(record: &Record, stream_arn: &str) -> Value {
    let change = record.dynamodb.as_ref();
    let image = |m: Option<&HashMap<String, AttributeValue>>| -> Value {
        Value::Object(m.into_iter().flatten().map(|(k, v)| (k.clone(), attribute_json(v))).collect())
    };
    let mut dynamodb = json!({
        "ApproximateCreationDateTime": change.and_then(|c| c.approximate_creation_date_time).map_or(0, |t| t.secs()),
        "Keys": image(change.and_then(|c| c.keys.as_ref())),
        "SequenceNumber": change.and_then(|c| c.sequence_number.clone()),
        "SizeBytes": change.and_then(|c| c.size_bytes).unwrap_or_default(),
        "StreamViewType": change.and_then(|c| c.stream_view_type.as_ref()).map(|v| v.as_str().to_owned()),
    });
    if let Some(new) = change.and_then(|c| c.new_image.as_ref()) {
        dynamodb["NewImage"] = image(Some(new));
    }
    if let Some(old) = change.and_then(|c| c.old_image.as_ref()) {
        dynamodb["OldImage"] = image(Some(old));
    }
    json!({
        "eventID": record.event_id,
        "eventName": record.event_name.as_ref().map(|n| n.as_str().to_owned()),
        "eventVersion": record.event_version,
        "eventSource": record.event_source,
        "awsRegion": record.aws_region,
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    })
}

/// An attribute in DynamoDB's JSON (`{"S": "…"}`), as stream events carry it.
fn attribute_json(value: &AttributeValue) -> Value {
    let b64 = |b: &aws_smithy_types::Blob| base64::engine::general_purpose::STANDARD.encode(b.as_ref());
    match value {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::B(b) => json!({"B": b64(b)}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        AttributeValue::Null(_) => json!({"NULL": true}),
        AttributeValue::Ss(v) => json!({"SS": v}),
        AttributeValue::Ns(v) => json!({"NS": v}),
        AttributeValue::Bs(v) => json!({"BS": v.iter().map(b64).collect::<Vec<_>>()}),
        AttributeValue::L(v) => json!({"L": v.iter().map(attribute_json).collect::<Vec<_>>()}),
        AttributeValue::M(m) => {
            json!({"M": m.iter().map(|(k, v)| (k.clone(), attribute_json(v))).collect::<serde_json::Map<_, _>>()})
        }
        _ => json!({"NULL": true}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_pattern_passes_event_inserts_only() {
        let pattern: Value =
            serde_json::from_str(r#"{"eventName": ["INSERT"], "dynamodb": {"Keys": {"sk": {"S": ["V"]}}}}"#)
                .unwrap();
        let record = |name: &str, sk: &str| json!({"eventName": name, "dynamodb": {"Keys": {"pk": {"S": "x"}, "sk": {"S": sk}}}});
        assert!(matches(&pattern, &record("INSERT", "V")));
        assert!(!matches(&pattern, &record("MODIFY", "V")));
        assert!(!matches(&pattern, &record("INSERT", "X")));
        assert!(!matches(&pattern, &json!({"eventName": "INSERT"})));
    }
}
