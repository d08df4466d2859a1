//! The whole backend's state in the emulators, shaped by template.yaml: the table, the queues, the
//! worker's event source, the faults to inject, and the API router as the local stack serves it.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ledger::port::{Store, StoreError, Sweep};
use ledger::{AccountId, TenantId};
use ledger_dynamodb::DynamoStore;
use ledger_http::AppState;
use ledger_sqs::SqsTransferQueue;

use crate::auth::{self, DevAuth};
use crate::backend::Backend;
use crate::emulators::{self, Emulators};
use crate::event_source::{Drained, Handler, LocalEventSource, worker_handler};
use crate::faults::proxy::FaultProxy;
use crate::faults::{FaultPlan, Faults};
use crate::instances::Instances;
use crate::stream_source::{LocalStreamSource, Pass, StreamHandler, publisher_handler};
use crate::{metrics, paths, queues, template};
use ledger::webhook::UrlPolicy;
use ledger_eventbridge::EventBus;
use ledger_kms::{KmsNotary, KmsSealer};
use ledger_s3::S3Archive;
use ledger_sqs::deliveries::SqsWebhookQueue;
use ledger_webhooks::WebhookClient;

/// The template's logical id of the ledger table.
pub const LEDGER_TABLE: &str = "LedgerTable";

/// How long a drain may take before a test gives up on it.
const DRAIN_LIMIT: Duration = Duration::from_secs(300);

#[derive(Clone, Debug)]
pub struct StackOptions {
    /// Replaces the queue's visibility timeout (seconds): tests use a short one, so redeliveries
    /// happen in test time.
    pub visibility_timeout: Option<u64>,
    pub faults: FaultPlan,
    /// Puts the fault proxy in front of the store even when the plan has no DynamoDB faults, so a
    /// test can inject one-off faults (`Faults::inject_next`).
    pub dynamodb_proxy: bool,
    pub tenant_claim: String,
    /// Every tenant's request limit (`None`: none, as most tests want).
    pub tenant_limit: Option<ledger::RateLimit>,
    /// How long a webhook attempt waits for its answer.
    pub webhook_timeout: Duration,
    /// Turns the table's stream on (template.yaml's `StreamSpecification`), so events reach the
    /// publisher. Off unless asked: DynamoDB Local's streams slow every write of every table (the
    /// bank test took 115 s instead of 78 alone, and over four times as long in the full suite),
    /// and only the tests of events out need them.
    pub events_out: bool,
    /// The API's clock (`None`: the system's). Tests of time-dependent rules (request limits) move
    /// a `ManualClock` by hand, so that what they assert does not depend on the machine's speed.
    pub clock: Option<ledger_http::Clock>,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            visibility_timeout: None,
            faults: FaultPlan::none(),
            dynamodb_proxy: false,
            tenant_claim: ledger_config::DEFAULT_TENANT_CLAIM.to_owned(),
            tenant_limit: None,
            webhook_timeout: ledger_webhooks::DEFAULT_TIMEOUT,
            events_out: false,
            clock: None,
        }
    }
}

#[derive(Clone)]
pub struct EmulatedStack {
    /// The store the functions use: through the fault proxy when the plan has DynamoDB faults.
    pub store: Arc<dyn Store>,
    /// Its table's name.
    pub table: String,
    /// A client straight to DynamoDB Local, never faulty: for tests that inspect items.
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub queue: SqsTransferQueue,
    pub dead_letter_url: String,
    pub sqs: aws_sdk_sqs::Client,
    pub event_source: LocalEventSource,
    pub faults: Arc<Faults>,
    pub tenant_claim: String,
    pub tenant_limit: Option<ledger::RateLimit>,
    /// The event bus the publisher puts events on.
    pub bus: EventBus,
    /// A queue a rule on the bus copies every event to: what tests read to see what was published.
    pub bus_tap_url: String,
    /// The stream's event source (`None`: the stack was made without `events_out`).
    pub stream_source: Option<LocalStreamSource>,
    pub publisher_dead_letter_url: String,
    /// The webhook queue, the deliverer's event source on it, and its dead-letter queue.
    pub deliveries: SqsWebhookQueue,
    pub delivery_source: LocalEventSource,
    pub webhook_dead_letter_url: String,
    pub webhook_client: WebhookClient,
    /// The KMS key (in moto) that seals webhook signing secrets, and the sealer on it.
    pub secrets_key: String,
    pub sealer: KmsSealer,
    /// The KMS key (in moto, ECC_NIST_P256) that signs the books' digests, and the notary on it.
    pub digest_key: String,
    pub notary: KmsNotary,
    /// The bucket (in moto, Object Lock in compliance mode) that keeps the books' checkpoints.
    pub archive_bucket: String,
    pub archive: S3Archive,
    pub s3: aws_sdk_s3::Client,
    pub clock: Option<ledger_http::Clock>,
    /// The store's client (through the fault proxy when `store` is): what another instance's
    /// store is built on.
    store_client: aws_sdk_dynamodb::Client,
}

impl EmulatedStack {
    /// Creates the table and the queues, shaped as template.yaml declares them, named with `prefix`.
    pub async fn create(
        emulators: &Emulators,
        prefix: &str,
        options: StackOptions,
    ) -> io::Result<EmulatedStack> {
        let template = paths::template();
        let dynamodb = emulators.dynamodb().await;
        let mut table = template::table(&template, LEDGER_TABLE)?;
        if !options.events_out {
            table.stream_specification = None;
        }
        table.create(&dynamodb, prefix).await?;
        let faults = Arc::new(Faults::new(options.faults.clone()));
        let store_client = if options.dynamodb_proxy || options.faults.touches_dynamodb() {
            let proxy = FaultProxy::start(emulators.dynamodb_endpoint(), faults.clone()).await?;
            ledger_dynamodb::client::dynamodb_client(&emulators::sdk_config(proxy.endpoint()).await)
        } else {
            dynamodb.clone()
        };
        let sqs = emulators.sqs().await;
        let created = queues::queue(&template, queues::TRANSFER_QUEUE)?
            .create(&sqs, &template, prefix, options.visibility_timeout)
            .await?;
        let dead_letter_url =
            created.dead_letter_url.ok_or_else(|| io::Error::other("the transfer queue has no DLQ"))?;
        let mut spec = queues::event_source(&template, queues::WORKER_FUNCTION)?;
        let events = events_out(emulators, &template, prefix, &sqs, faults.clone()).await?;
        let webhooks = queues::queue(&template, queues::WEBHOOK_QUEUE)?
            .create(&sqs, &template, prefix, options.visibility_timeout)
            .await?;
        let webhook_dead_letter_url =
            webhooks.dead_letter_url.ok_or_else(|| io::Error::other("the webhook queue has no DLQ"))?;
        let delivery_spec = queues::event_source(&template, queues::DELIVERER_FUNCTION)?;
        if let Some(seconds) = options.visibility_timeout {
            spec = spec.within_visibility(seconds);
        }
        let webhook_client =
            WebhookClient::new(UrlPolicy::LOCAL, options.webhook_timeout).map_err(io::Error::other)?;
        let deliveries = SqsWebhookQueue::new(sqs.clone(), webhooks.url.clone());
        let kms = emulators.kms().await;
        let key = kms
            .create_key()
            .description(format!("{prefix}: webhook signing secrets"))
            .send()
            .await
            .map_err(|e| io::Error::other(aws_sdk_kms::error::DisplayErrorContext(e).to_string()))?;
        let secrets_key = key.key_metadata().map(|k| k.key_id().to_owned()).unwrap_or_default();
        let (digest_key, notary) = digest_key(&kms, prefix).await?;
        let s3 = emulators.s3().await;
        let archive_bucket = archive_bucket(&s3, prefix).await?;
        let archive = S3Archive::new(s3.clone(), archive_bucket.clone());
        let sealer = KmsSealer::on_first_use(move || kms, secrets_key.clone());
        let delivery_source = LocalEventSource::new(sqs.clone(), webhooks.url, delivery_spec, faults.clone());
        Ok(EmulatedStack {
            store: Arc::new(DynamoStore::new(store_client.clone(), prefix)),
            store_client,
            table: prefix.to_owned(),
            dynamodb,
            queue: SqsTransferQueue::new(sqs.clone(), created.url.clone()),
            dead_letter_url,
            event_source: LocalEventSource::new(sqs.clone(), created.url, spec, faults.clone()),
            sqs,
            faults,
            tenant_claim: options.tenant_claim,
            tenant_limit: options.tenant_limit,
            bus: events.bus,
            bus_tap_url: events.tap_url,
            stream_source: events.source,
            publisher_dead_letter_url: events.dead_letter_url,
            deliveries,
            delivery_source,
            webhook_dead_letter_url,
            webhook_client,
            secrets_key,
            sealer,
            digest_key,
            notary,
            archive_bucket,
            archive,
            s3,
            clock: options.clock,
        })
    }

    /// Another instance of the functions on this stack, as Lambda starts one: a store of its own
    /// (its balance cache, contention levels and turns) over the same table, queues and faults.
    pub fn instance(&self) -> EmulatedStack {
        let store = DynamoStore::new(self.store_client.clone(), self.table.clone());
        EmulatedStack { store: Arc::new(store), ..self.clone() }
    }

    /// Runs the auditor once, as its schedule would, with the clock at `now`.
    pub async fn audit(&self, now: time::OffsetDateTime) -> Result<auditor::Tick, StoreError> {
        auditor::handle(self.store.as_ref(), &self.notary, &self.archive, now).await
    }

    pub fn state(&self) -> AppState {
        let state =
            AppState::new(self.store.clone(), Arc::new(self.queue.clone()), self.tenant_claim.clone())
                .with_rate_limit(self.tenant_limit)
                .with_webhooks(
                    Arc::new(self.deliveries.clone()),
                    UrlPolicy::LOCAL,
                    Arc::new(self.sealer.clone()),
                );
        match &self.clock {
            Some(clock) => state.with_clock(clock.clone()),
            None => state,
        }
    }

    /// The worker function's handler on this stack, each invocation on an instance of its own
    /// (`Instances`), as the queue's event source invokes Lambda's.
    pub fn worker(&self) -> Handler {
        let stack = self.clone();
        let instances =
            Instances::new(move || worker_handler(stack.instance().store, Arc::new(stack.queue.clone())));
        Arc::new(move |event, deadline| {
            let instances = instances.clone();
            Box::pin(async move { instances.serve(|handler: Handler| handler(event, deadline)).await })
        })
    }

    /// Runs the hold sweeper once, as its schedule would, with the clock at `now`.
    pub async fn sweep(&self, now: time::OffsetDateTime) -> Result<Sweep, StoreError> {
        sweeper::handle(self.store.as_ref(), now).await
    }

    /// The publisher function's handler on this stack's bus and webhook queue.
    pub fn publisher(&self) -> StreamHandler {
        publisher_handler(publisher::Publisher {
            bus: self.bus.clone(),
            deliveries: Arc::new(self.deliveries.clone()),
            read_event: ledger_dynamodb::events::from_stream,
        })
    }

    /// The deliverer function's handler on this stack.
    pub fn deliverer(&self) -> Handler {
        let deliverer = Arc::new(deliverer::Deliverer {
            store: self.store.clone(),
            sealer: Arc::new(self.sealer.clone()),
            queue: self.deliveries.clone(),
            http: self.webhook_client.clone(),
        });
        Arc::new(move |event, _deadline| {
            let deliverer = deliverer.clone();
            Box::pin(async move { deliverer.handle(event).await })
        })
    }

    /// Invokes the deliverer, as its event source would, until the webhook queue has nothing
    /// visible (messages waiting for a retry stay invisible until their time); how many messages
    /// it received.
    pub async fn deliver(&self) -> io::Result<usize> {
        let (handler, started) = (self.deliverer(), std::time::Instant::now());
        let (mut received, mut quiet) = (0, 0);
        while quiet < 2 {
            let invocation = self.delivery_source.invoke_once(&handler).await?;
            received += invocation.received;
            quiet = if invocation.received == 0 { quiet + 1 } else { 0 };
            if started.elapsed() > DRAIN_LIMIT {
                return Err(io::Error::other("the webhook queue kept delivering"));
            }
        }
        Ok(received)
    }

    /// Invokes the publisher, as the stream's event source mapping would, until the stream is
    /// read to its end and every record is handled.
    pub async fn publish(&self) -> io::Result<Pass> {
        self.stream()?.drain(&self.publisher(), DRAIN_LIMIT).await
    }

    /// Every event the bus published since the last call (EventBridge envelopes), read from the
    /// tap until it is empty, with when the bus delivered each (SQS `SentTimestamp`).
    pub async fn on_the_bus(&self) -> io::Result<Vec<OnBus>> {
        use aws_sdk_sqs::types::MessageSystemAttributeName::SentTimestamp;
        let sqs_err = |e: aws_sdk_sqs::error::SdkError<_, _>| -> io::Error {
            io::Error::other(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
        };
        let mut seen = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.bus_tap_url)
                .max_number_of_messages(10)
                .message_system_attribute_names(SentTimestamp)
                .send()
                .await
                .map_err(sqs_err)?;
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                return Ok(seen);
            }
            for message in messages {
                let envelope: serde_json::Value =
                    serde_json::from_str(message.body().unwrap_or_default()).map_err(io::Error::other)?;
                let sent_at = message
                    .attributes()
                    .and_then(|a| a.get(&SentTimestamp))
                    .and_then(|t| t.parse::<i128>().ok())
                    .and_then(|ms| time::OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000).ok());
                seen.push(OnBus { envelope, sent_at });
                let receipt = message.receipt_handle().unwrap_or_default();
                let deleted = self.sqs.delete_message().queue_url(&self.bus_tap_url).receipt_handle(receipt);
                deleted
                    .send()
                    .await
                    .map_err(|e| io::Error::other(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
            }
        }
    }

    /// The stream's event source.
    pub fn stream(&self) -> io::Result<&LocalStreamSource> {
        self.stream_source.as_ref().ok_or_else(|| {
            io::Error::other("this stack has no stream: make it with StackOptions { events_out: true }")
        })
    }

    /// Invokes the worker, as the event source mapping would, until the queue is empty.
    pub async fn drain(&self) -> io::Result<Drained> {
        self.event_source.drain(&self.worker(), DRAIN_LIMIT).await
    }

    /// The API as the local stack serves it (see `local_router`).
    pub fn router(&self, auth: DevAuth) -> Router {
        local_router(self.state(), auth, self.faults.clone())
    }

    /// What the chains of `account` (`ledger::chain`) show, read straight from the table: each
    /// fault with its shard, and how many shards and entries were checked.
    pub async fn chain_faults(&self, tenant: &TenantId, account: &AccountId) -> io::Result<ChainReport> {
        let store = DynamoStore::new(self.dynamodb.clone(), self.table.clone());
        let chains = store.chains(tenant, account).await.map_err(io::Error::other)?;
        let chains = chains.ok_or_else(|| io::Error::other(format!("no account {account}")))?;
        let mut report = ChainReport { shards: chains.len(), ..ChainReport::default() };
        for shard in &chains {
            report.entries += shard.entries.len();
            match &shard.head {
                Some(head) => report.faults.extend(
                    ledger::chain::verify(head, &shard.entries).into_iter().map(|f| (shard.shard, f)),
                ),
                None => {
                    return Err(io::Error::other(format!(
                        "shard {} of {account} has no balance",
                        shard.shard
                    )));
                }
            }
        }
        Ok(report)
    }
}

/// What the chains of one account show (`EmulatedStack::chain_faults`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ChainReport {
    pub faults: Vec<(u16, ledger::chain::ChainFault)>,
    pub shards: usize,
    pub entries: usize,
}

#[async_trait::async_trait]
impl Backend for EmulatedStack {
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    fn state(&self) -> AppState {
        EmulatedStack::state(self)
    }

    fn faults(&self) -> Arc<Faults> {
        self.faults.clone()
    }

    async fn settle_queued(&self) -> io::Result<usize> {
        Ok(self.drain().await?.received())
    }
}

/// One event as the bus published it.
#[derive(Clone, Debug)]
pub struct OnBus {
    /// EventBridge's envelope: `source`, `detail-type`, `detail` (the event), …
    pub envelope: serde_json::Value,
    /// When the bus delivered it to the tap.
    pub sent_at: Option<time::OffsetDateTime>,
}

impl OnBus {
    pub fn event_id(&self) -> &str {
        self.envelope["detail"]["id"].as_str().unwrap_or_default()
    }
}

/// What carries events out: the bus, a tap on it, the table's stream and its event source.
struct EventsOut {
    bus: EventBus,
    tap_url: String,
    source: Option<LocalStreamSource>,
    dead_letter_url: String,
}

async fn events_out(
    emulators: &Emulators,
    template: &std::path::Path,
    prefix: &str,
    sqs: &aws_sdk_sqs::Client,
    faults: Arc<Faults>,
) -> io::Result<EventsOut> {
    let io_err = |e: String| io::Error::other(e);
    let eventbridge = emulators.eventbridge().await;
    let bus_name = format!("{prefix}-events");
    eventbridge
        .create_event_bus()
        .name(&bus_name)
        .send()
        .await
        .map_err(|e| io_err(aws_sdk_eventbridge::error::DisplayErrorContext(e).to_string()))?;
    let tap_url = sqs
        .create_queue()
        .queue_name(format!("{prefix}-bus-tap"))
        .send()
        .await
        .map_err(|e| io_err(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?
        .queue_url
        .unwrap_or_default();
    let tap_arn = queues::arn_of(sqs, &tap_url).await?;
    let rule = format!("{prefix}-all");
    eventbridge
        .put_rule()
        .name(&rule)
        .event_bus_name(&bus_name)
        .event_pattern(serde_json::json!({"source": [ledger_config::DEFAULT_EVENT_SOURCE]}).to_string())
        .send()
        .await
        .map_err(|e| io_err(aws_sdk_eventbridge::error::DisplayErrorContext(e).to_string()))?;
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id("tap")
        .arn(tap_arn)
        .build()
        .map_err(|e| io_err(e.to_string()))?;
    eventbridge
        .put_targets()
        .rule(&rule)
        .event_bus_name(&bus_name)
        .targets(target)
        .send()
        .await
        .map_err(|e| io_err(aws_sdk_eventbridge::error::DisplayErrorContext(e).to_string()))?;
    let (spec, on_failure) = queues::stream_source(template, queues::PUBLISHER_FUNCTION)?;
    let dead_letter_url =
        queues::queue(template, &on_failure)?.create(sqs, template, prefix, None).await?.url;
    let dynamodb = emulators.dynamodb().await;
    let table = dynamodb
        .describe_table()
        .table_name(prefix)
        .send()
        .await
        .map_err(|e| io_err(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string()))?;
    let streams = emulators.streams().await;
    let source = table.table.and_then(|t| t.latest_stream_arn).map(|stream_arn| {
        LocalStreamSource::new(streams, stream_arn, spec, faults, (sqs.clone(), dead_letter_url.clone()))
    });
    Ok(EventsOut {
        bus: EventBus::new(eventbridge, bus_name, ledger_config::DEFAULT_EVENT_SOURCE),
        tap_url,
        source,
        dead_letter_url,
    })
}

/// A stack of its own for one test, in the process's shared emulators: tests run in parallel without
/// seeing each other's data. Queues get a 2 s visibility timeout so redeliveries happen in test time.
pub async fn fresh_stack() -> EmulatedStack {
    fresh_stack_with(StackOptions { visibility_timeout: Some(2), ..StackOptions::default() }).await
}

/// As `fresh_stack`, with the table's stream on (`StackOptions::events_out`).
pub async fn fresh_stack_with_events() -> EmulatedStack {
    fresh_stack_with(StackOptions {
        visibility_timeout: Some(2),
        events_out: true,
        ..StackOptions::default()
    })
    .await
}

/// As `fresh_stack`, with these options.
pub async fn fresh_stack_with(options: StackOptions) -> EmulatedStack {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = format!("ledger-test-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
    match EmulatedStack::create(Emulators::shared(), &name, options).await {
        Ok(stack) => stack,
        Err(err) => panic!("cannot create the stack {name}: {err}"),
    }
}

/// The API router as the local stack serves it: API Gateway's JWT check in front of the same router
/// the Lambda function runs, inside what the Lambda runtime adds around an invocation (a span with
/// its request id, a metrics flush after it), behind a gateway whose clients may give up.
pub fn local_router(state: AppState, auth: DevAuth, faults: Arc<Faults>) -> Router {
    ledger_http::router(state)
        .layer(axum::middleware::from_fn_with_state(auth, auth::authorize))
        .layer(axum::middleware::from_fn(metrics::flush_after))
        .layer(axum::middleware::from_fn(local_invocation))
        .layer(axum::middleware::from_fn_with_state(faults, gateway))
}

/// The span lambda_runtime opens around each invocation, with a local request id.
async fn local_invocation(request: Request, next: Next) -> Response {
    use tracing::Instrument;
    let span = tracing::info_span!("Lambda runtime invoke", requestId = %uuid::Uuid::new_v4());
    next.run(request).instrument(span).await
}

/// API Gateway in front of the invocation. When the plan says the client gives up on this request,
/// the client gets a 504 after the plan's delay while the invocation runs on to its end, as a Lambda
/// invocation outlives API Gateway's integration timeout.
async fn gateway(State(faults): State<Arc<Faults>>, request: Request, next: Next) -> Response {
    if !faults.client_gives_up() {
        return next.run(request).await;
    }
    let invocation = tokio::spawn(next.run(request));
    tokio::time::sleep(faults.plan().slow_by).await;
    if invocation.is_finished() {
        tracing::info!("the client gave up; the invocation had answered already");
    }
    let body = serde_json::json!({"message": "Endpoint request timed out"}).to_string();
    (http::StatusCode::GATEWAY_TIMEOUT, [(http::header::CONTENT_TYPE, "application/json")], body)
        .into_response()
}

/// An asymmetric key that signs (`ECC_NIST_P256`, as template.yaml's `DigestKey`), and the notary
/// on it.
async fn digest_key(kms: &aws_sdk_kms::Client, prefix: &str) -> io::Result<(String, KmsNotary)> {
    use aws_sdk_kms::types::{KeySpec, KeyUsageType};
    let key = kms
        .create_key()
        .description(format!("{prefix}: books digests"))
        .key_spec(KeySpec::EccNistP256)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .map_err(|e| io::Error::other(aws_sdk_kms::error::DisplayErrorContext(e).to_string()))?;
    let id = key.key_metadata().map(|k| k.key_id().to_owned()).unwrap_or_default();
    Ok((id.clone(), KmsNotary::new(kms.clone(), id)))
}

/// A bucket with Object Lock in compliance mode, as template.yaml's `ArchiveBucket` (a day's
/// retention here), named after `prefix` as S3 allows (lower case, digits, hyphens).
async fn archive_bucket(s3: &aws_sdk_s3::Client, prefix: &str) -> io::Result<String> {
    use aws_sdk_s3::types::{
        DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode, ObjectLockRule,
    };
    let named: String = prefix
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .take(50)
        .collect();
    let bucket = format!("{}-archive", named.trim_matches('-'));
    let failed = |e: String| io::Error::other(format!("bucket {bucket}: {e}"));
    s3.create_bucket()
        .bucket(&bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .map_err(|e| failed(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
    let retention = DefaultRetention::builder().mode(ObjectLockRetentionMode::Compliance).days(1).build();
    let configuration = ObjectLockConfiguration::builder()
        .object_lock_enabled(ObjectLockEnabled::Enabled)
        .rule(ObjectLockRule::builder().default_retention(retention).build())
        .build();
    s3.put_object_lock_configuration()
        .bucket(&bucket)
        .object_lock_configuration(configuration)
        .send()
        .await
        .map_err(|e| failed(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
    Ok(bucket)
}
