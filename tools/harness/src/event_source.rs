//! The local stand-in for Lambda's SQS event source mapping, as template.yaml configures it: up to
//! `MaximumConcurrency` worker invocations at once, each with its own receive of up to `BatchSize`
//! messages gathered within `MaximumBatchingWindowInSeconds`, handed the same `SqsEvent` Lambda
//! would hand it. What the worker did not report as failed is deleted; the rest reappears after the
//! queue's visibility timeout and, after `maxReceiveCount` receives, goes to the dead-letter queue,
//! as SQS does. Faults: duplicate deliveries and invocations killed mid-batch (see `faults`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageAttributeValue, MessageSystemAttributeName,
    QueueAttributeName,
};
use tokio::sync::Mutex;
use tracing::Instrument;

use crate::faults::Faults;
use crate::queues::EventSourceSpec;

/// The function the event source invokes: one SQS event and the instant its invocation must end
/// by in, the failed records out.
pub type Handler =
    Arc<dyn Fn(SqsEvent, Instant) -> Pin<Box<dyn Future<Output = SqsBatchResponse> + Send>> + Send + Sync>;

/// The worker function's handler on `store` and its `queue`, as the Lambda runtime would call it.
pub fn worker_handler(
    store: Arc<dyn ledger::port::Store>,
    queue: Arc<dyn ledger::port::TransferQueue>,
) -> Handler {
    Arc::new(move |event, deadline| {
        let (store, queue) = (store.clone(), queue.clone());
        Box::pin(async move { worker::handle(store.as_ref(), queue.as_ref(), event, deadline).await })
    })
}

#[derive(Clone)]
pub struct LocalEventSource {
    client: Client,
    queue_url: String,
    spec: EventSourceSpec,
    faults: Arc<Faults>,
    concurrency: Arc<Concurrency>,
}

/// Invocations running now, and the most that ran at once.
#[derive(Default)]
struct Concurrency {
    active: AtomicUsize,
    peak: AtomicUsize,
}

/// Counts an invocation as running while it lives.
struct Running<'a>(&'a Concurrency);

impl<'a> Running<'a> {
    fn start(concurrency: &'a Concurrency) -> Self {
        let now = concurrency.active.fetch_add(1, Ordering::SeqCst) + 1;
        concurrency.peak.fetch_max(now, Ordering::SeqCst);
        Running(concurrency)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What one invocation did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Invocation {
    pub received: usize,
    pub failed: usize,
    /// Killed by an injected fault before it answered: nothing of its batch was deleted.
    pub killed: bool,
}

/// What a drain did, over all invocations.
#[derive(Clone, Debug, Default)]
pub struct Drained {
    pub invocations: Vec<Invocation>,
    /// The most invocations that ran at the same moment (since this event source was made).
    pub peak_concurrency: usize,
}

impl Drained {
    pub fn received(&self) -> usize {
        self.invocations.iter().map(|i| i.received).sum()
    }
}

fn sqs_err(e: impl std::error::Error + 'static) -> io::Error {
    io::Error::other(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
}

/// Longest a killed invocation may run before it is killed.
const KILL_WITHIN: Duration = Duration::from_millis(400);
/// Pause of a poller that found the queue empty.
const IDLE_POLL: Duration = Duration::from_millis(100);

impl LocalEventSource {
    pub fn new(
        client: Client,
        queue_url: impl Into<String>,
        spec: EventSourceSpec,
        faults: Arc<Faults>,
    ) -> Self {
        Self { client, queue_url: queue_url.into(), spec, faults, concurrency: Default::default() }
    }

    pub fn spec(&self) -> EventSourceSpec {
        self.spec
    }

    /// This event source with at most `n` invocations at once.
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.spec.max_concurrency = n.max(1);
        self
    }

    /// Gathers one batch and invokes `handler` with it once. An empty receive invokes nothing.
    pub async fn invoke_once(&self, handler: &Handler) -> io::Result<Invocation> {
        let messages = self.gather().await?;
        if messages.is_empty() {
            return Ok(Invocation::default());
        }
        let _running = Running::start(&self.concurrency);
        for message in &messages {
            if self.faults.duplicate_delivery() {
                self.deliver_again(message).await?;
            }
        }
        let mut event = SqsEvent::default();
        event.records = messages.iter().map(record).collect();
        let span = tracing::info_span!("Lambda runtime invoke", requestId = %uuid::Uuid::new_v4());
        let invocation = handler(event, Instant::now() + self.spec.timeout).instrument(span);
        let response = match self.faults.kill_after(KILL_WITHIN) {
            None => invocation.await,
            Some(after) => match tokio::time::timeout(after, invocation).await {
                Ok(response) => response,
                Err(_) => {
                    tracing::warn!(records = messages.len(), "worker invocation killed (injected)");
                    return Ok(Invocation { received: messages.len(), failed: messages.len(), killed: true });
                }
            },
        };
        let failed: Vec<&str> =
            response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        let done: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .filter(|m| !failed.contains(&m.message_id().unwrap_or_default()))
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .set_receipt_handle(m.receipt_handle.clone())
                    .build()
                    .ok()
            })
            .collect();
        for chunk in done.chunks(10) {
            self.client
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(sqs_err)?;
        }
        Ok(Invocation { received: messages.len(), failed: failed.len(), killed: false })
    }

    /// Up to the batch size, received within the batching window (a receive returns at most 10).
    async fn gather(&self) -> io::Result<Vec<Message>> {
        let started = Instant::now();
        let window = Duration::from_secs(self.spec.batching_window_secs);
        let mut messages = Vec::new();
        while messages.len() < self.spec.batch_size {
            let want = (self.spec.batch_size - messages.len()).min(10) as i32;
            let out = self
                .client
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(want)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(sqs_err)?;
            let got = out.messages.unwrap_or_default();
            let empty = got.is_empty();
            messages.extend(got);
            if empty || started.elapsed() >= window {
                break;
            }
        }
        Ok(messages)
    }

    /// A duplicate delivery: the same body and attributes, queued again.
    async fn deliver_again(&self, message: &Message) -> io::Result<()> {
        let attributes = message.message_attributes.clone().unwrap_or_default();
        let attributes = attributes
            .into_iter()
            .filter_map(|(name, value)| {
                let value = MessageAttributeValue::builder()
                    .data_type(value.data_type)
                    .set_string_value(value.string_value)
                    .build()
                    .ok()?;
                Some((name, value))
            })
            .collect();
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .set_message_body(message.body.clone())
            .set_message_group_id(
                message
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
                    .cloned(),
            )
            .set_message_attributes(Some(attributes))
            .send()
            .await
            .map_err(sqs_err)?;
        Ok(())
    }

    /// Runs up to the spec's concurrency of invocations, forever (the local stack's worker).
    pub async fn run(self, handler: Handler) {
        let pollers = (0..self.spec.max_concurrency).map(|_| {
            let (source, handler) = (self.clone(), handler.clone());
            tokio::spawn(async move {
                loop {
                    match source.invoke_once(&handler).await {
                        Ok(i) if i.received > 0 => {
                            tracing::info!(
                                received = i.received,
                                failed = i.failed,
                                killed = i.killed,
                                "worker batch done"
                            )
                        }
                        Ok(_) => tokio::time::sleep(IDLE_POLL).await,
                        Err(err) => {
                            tracing::warn!(error = %err, "worker poll failed");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                }
            })
        });
        futures::future::join_all(pollers).await;
    }

    /// Invokes the worker, up to the spec's concurrency at once, until the queue holds nothing,
    /// neither visible nor in flight (a failed message waits out its visibility timeout and is
    /// received again, or moves to the dead-letter queue). Gives up after `limit`.
    pub async fn drain(&self, handler: &Handler, limit: Duration) -> io::Result<Drained> {
        let stop = Arc::new(AtomicBool::new(false));
        let invocations = Arc::new(Mutex::new(Vec::new()));
        let pollers: Vec<_> = (0..self.spec.max_concurrency)
            .map(|_| {
                let (source, handler) = (self.clone(), handler.clone());
                let (stop, invocations) = (stop.clone(), invocations.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::SeqCst) {
                        let invocation = source.invoke_once(&handler).await?;
                        if invocation.received == 0 {
                            tokio::time::sleep(IDLE_POLL).await;
                        } else {
                            invocations.lock().await.push(invocation);
                        }
                    }
                    Ok::<(), io::Error>(())
                })
            })
            .collect();
        let started = Instant::now();
        let outcome = loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if pollers.iter().any(|p| p.is_finished()) {
                break Ok(());
            }
            if self.is_empty().await? {
                break Ok(());
            }
            if started.elapsed() > limit {
                break Err(io::Error::other(format!("the queue did not drain within {limit:?}")));
            }
        };
        stop.store(true, Ordering::SeqCst);
        for poller in pollers {
            poller.await.map_err(io::Error::other)??;
        }
        outcome?;
        let invocations = std::mem::take(&mut *invocations.lock().await);
        Ok(Drained { invocations, peak_concurrency: self.concurrency.peak.load(Ordering::SeqCst) })
    }

    /// No message visible, in flight or delayed.
    pub async fn is_empty(&self) -> io::Result<bool> {
        Ok(self.depth().await? == 0)
    }

    /// The messages visible, in flight or delayed.
    pub async fn depth(&self) -> io::Result<usize> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(sqs_err)?;
        let attributes = out.attributes.unwrap_or_default();
        Ok(attributes
            .values()
            .map(|v| v.parse::<usize>().unwrap_or(usize::MAX))
            .fold(0, usize::saturating_add))
    }
}

/// The record Lambda builds from a received message.
fn record(m: &Message) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = m.message_id.clone();
    record.receipt_handle = m.receipt_handle.clone();
    record.body = m.body.clone();
    record.md5_of_body = m.md5_of_body.clone();
    record.attributes =
        m.attributes.iter().flatten().map(|(k, v)| (k.as_str().to_owned(), v.clone())).collect();
    record.message_attributes = m
        .message_attributes
        .iter()
        .flatten()
        .map(|(name, value)| {
            let mut attribute = SqsMessageAttribute::default();
            attribute.string_value = value.string_value.clone();
            attribute.data_type = Some(value.data_type.clone());
            (name.clone(), attribute)
        })
        .collect();
    record.event_source = Some("aws:sqs".into());
    record
}
