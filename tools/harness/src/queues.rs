//! The transfer queue and its dead-letter queue, created in the emulator as template.yaml declares
//! them (visibility timeout, retention, redrive policy), and the worker's SQS event source settings.

use std::io;
use std::path::Path;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_norway::Value;

use crate::template::resources;

/// The template's logical ids.
pub const TRANSFER_QUEUE: &str = "TransferQueue";
pub const WORKER_FUNCTION: &str = "WorkerFunction";

fn invalid(why: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("template.yaml: {why}"))
}

/// `!GetAtt X.Arn` (short or long form) → `X`.
fn get_att_arn(v: &Value) -> Option<String> {
    let args = match v {
        Value::Tagged(tagged) if tagged.tag == "GetAtt" => &tagged.value,
        Value::Mapping(_) => v.get("Fn::GetAtt")?,
        _ => return None,
    };
    match args {
        Value::String(s) => s.strip_suffix(".Arn").map(str::to_owned),
        Value::Sequence(parts) => parts.first().and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

fn number(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str()?.parse().ok())
}

/// A queue as the template declares it.
#[derive(Clone, Debug)]
pub struct QueueSpec {
    pub logical_id: String,
    pub visibility_timeout: Option<u64>,
    pub retention: Option<u64>,
    /// (dead-letter queue's logical id, maxReceiveCount)
    pub redrive: Option<(String, u64)>,
}

pub fn queue(template: &Path, logical_id: &str) -> io::Result<QueueSpec> {
    let resources = resources(template)?;
    let resource = resources.get(logical_id).ok_or_else(|| invalid(format!("no resource {logical_id}")))?;
    if resource["Type"] != "AWS::SQS::Queue" {
        return Err(invalid(format!("{logical_id} is not an AWS::SQS::Queue")));
    }
    let p = &resource["Properties"];
    let redrive = match &p["RedrivePolicy"] {
        Value::Null => None,
        policy => {
            let dlq =
                get_att_arn(&policy["deadLetterTargetArn"]).ok_or_else(|| invalid("deadLetterTargetArn"))?;
            Some((dlq, number(&policy["maxReceiveCount"]).ok_or_else(|| invalid("maxReceiveCount"))?))
        }
    };
    Ok(QueueSpec {
        logical_id: logical_id.to_owned(),
        visibility_timeout: number(&p["VisibilityTimeout"]),
        retention: number(&p["MessageRetentionPeriod"]),
        redrive,
    })
}

/// The worker's SQS event source: how many messages per invocation, how long to gather them, and
/// how many invocations at once.
#[derive(Clone, Copy, Debug)]
pub struct EventSourceSpec {
    pub batch_size: usize,
    pub batching_window_secs: u64,
    /// `ScalingConfig.MaximumConcurrency` (Lambda's minimum, 2, when the template sets none).
    pub max_concurrency: usize,
    /// How long an invocation may run: the function's `Timeout` (Lambda's default, 3 s, when the
    /// template sets none).
    pub timeout: std::time::Duration,
}

impl EventSourceSpec {
    /// This event source on a queue whose visibility timeout is `seconds`: its invocations end
    /// within three quarters of it, as AWS's rule (a visibility timeout of six times the
    /// function's) keeps them within it, so no message is received again while its run goes on.
    pub fn within_visibility(mut self, seconds: u64) -> Self {
        self.timeout = self.timeout.min(std::time::Duration::from_millis(seconds * 750));
        self
    }
}

pub fn event_source(template: &Path, function: &str) -> io::Result<EventSourceSpec> {
    let resources = resources(template)?;
    let events = &resources.get(function).ok_or_else(|| invalid(format!("no resource {function}")))?["Properties"]
        ["Events"];
    let sqs = events
        .as_mapping()
        .and_then(|m| m.values().find(|e| e["Type"] == "SQS"))
        .ok_or_else(|| invalid(format!("{function} has no SQS event")))?;
    Ok(EventSourceSpec {
        batch_size: number(&sqs["Properties"]["BatchSize"]).unwrap_or(10) as usize,
        batching_window_secs: number(&sqs["Properties"]["MaximumBatchingWindowInSeconds"]).unwrap_or(0),
        max_concurrency: number(&sqs["Properties"]["ScalingConfig"]["MaximumConcurrency"]).unwrap_or(2)
            as usize,
        timeout: std::time::Duration::from_secs(
            number(&resources[function]["Properties"]["Timeout"]).unwrap_or(3),
        ),
    })
}

/// Queue URLs of a created queue and its dead-letter queue.
#[derive(Clone, Debug)]
pub struct CreatedQueues {
    pub url: String,
    pub dead_letter_url: Option<String>,
}

fn sqs_err(e: impl std::error::Error + 'static) -> io::Error {
    io::Error::other(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
}

pub async fn arn_of(client: &Client, url: &str) -> io::Result<String> {
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await;
    let out = out.map_err(sqs_err)?;
    out.attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| invalid("no QueueArn"))
}

impl QueueSpec {
    /// Creates the queue as `{prefix}-{logical id}` (and its dead-letter queue first, if any).
    /// `visibility_override` replaces the template's visibility timeout (tests use a short one).
    pub async fn create(
        &self,
        client: &Client,
        template: &Path,
        prefix: &str,
        visibility_override: Option<u64>,
    ) -> io::Result<CreatedQueues> {
        let mut create = client.create_queue().queue_name(format!("{prefix}-{}", self.logical_id));
        if let Some(v) = visibility_override.or(self.visibility_timeout) {
            create = create.attributes(QueueAttributeName::VisibilityTimeout, v.to_string());
        }
        if let Some(r) = self.retention {
            create = create.attributes(QueueAttributeName::MessageRetentionPeriod, r.to_string());
        }
        let mut dead_letter_url = None;
        if let Some((dlq, max_receives)) = &self.redrive {
            let dlq_spec = queue(template, dlq)?;
            let dlq_url = Box::pin(dlq_spec.create(client, template, prefix, None)).await?.url;
            let policy = serde_json::json!({"deadLetterTargetArn": arn_of(client, &dlq_url).await?, "maxReceiveCount": max_receives});
            create = create.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
            dead_letter_url = Some(dlq_url);
        }
        let url = create.send().await.map_err(sqs_err)?.queue_url().unwrap_or_default().to_owned();
        Ok(CreatedQueues { url, dead_letter_url })
    }
}

pub const PUBLISHER_FUNCTION: &str = "PublisherFunction";
pub const WEBHOOK_QUEUE: &str = "WebhookQueue";
pub const DELIVERER_FUNCTION: &str = "DelivererFunction";

/// The DynamoDB stream event source of `function` (its mapping's settings and filter) and the
/// logical id of its on-failure destination, as the template configures them.
pub fn stream_source(
    template: &Path,
    function: &str,
) -> io::Result<(crate::stream_source::StreamSpec, String)> {
    let resources = resources(template)?;
    let events = &resources.get(function).ok_or_else(|| invalid(format!("no resource {function}")))?["Properties"]
        ["Events"];
    let stream = events
        .as_mapping()
        .and_then(|m| m.values().find(|e| e["Type"] == "DynamoDB"))
        .ok_or_else(|| invalid(format!("{function} has no DynamoDB event")))?;
    let p = &stream["Properties"];
    let mut patterns = Vec::new();
    for filter in p["FilterCriteria"]["Filters"].as_sequence().into_iter().flatten() {
        let pattern = filter["Pattern"].as_str().ok_or_else(|| invalid("a filter without a Pattern"))?;
        patterns.push(serde_json::from_str(pattern).map_err(invalid)?);
    }
    let on_failure = get_att_arn(&p["DestinationConfig"]["OnFailure"]["Destination"])
        .ok_or_else(|| invalid(format!("{function}'s stream has no on-failure destination")))?;
    let spec = crate::stream_source::StreamSpec {
        batch_size: number(&p["BatchSize"]).unwrap_or(100) as usize,
        parallelization: number(&p["ParallelizationFactor"]).unwrap_or(1) as usize,
        // Lambda's default: retry until the record expires from the stream.
        max_retries: number(&p["MaximumRetryAttempts"]).map_or(u32::MAX, |n| n as u32),
        bisect: p["BisectBatchOnFunctionError"].as_bool().unwrap_or(false),
        patterns,
    };
    Ok((spec, on_failure))
}
