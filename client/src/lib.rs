//! A typed client of the ledger's HTTP API.
//!
//! - Every route ([`routes::ALL`], held to `openapi.yaml` by a test), with the domain's request
//!   types (`ledger::NewTransfer`, `ledger::NewAccount`, ids, amounts) and the API's answers
//!   ([`types`]).
//! - Ids are the client's: a request carries the id it was built with, so sending it again is a
//!   replay, never a second transfer. Pick one with `TransferId::generate()` and keep it.
//! - `429` and `503` are waited out (their `Retry-After`, else a backoff with full jitter), and a
//!   request that got no answer is sent again when the route is idempotent ([`routes::Route`]).
//! - Lists are streams that follow the cursor.
//! - Every refusal is a typed [`ClientError::Problem`] carrying the problem document.

pub mod routes;
mod transport;
pub mod types;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use ledger::{
    AccountId, BatchId, EndpointId, EventId, MetadataMatch, NewAccount, NewTransfer, TransferId,
    TransferQuery,
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub use routes::Route;
pub use transport::{HttpTransport, Request, Response, Transport};
pub use types::*;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The API refused the request: its problem document.
    #[error("{0}")]
    Problem(Box<Problem>),
    /// No answer came (after every retry the route allows): the request may have been applied.
    #[error("no answer: {0}")]
    NoAnswer(String),
    /// An answer this client cannot read.
    #[error("unexpected answer {status}: {body}")]
    Unexpected { status: u16, body: String },
}

impl ClientError {
    /// The problem's `code`, if the API refused the request.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Problem(p) => Some(&p.code),
            _ => None,
        }
    }
}

/// How often and how long to wait before sending again.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// The first backoff's ceiling; each next one doubles, up to `cap`.
    pub base: Duration,
    pub cap: Duration,
}

impl Retry {
    pub const DEFAULT: Retry =
        Retry { attempts: 8, base: Duration::from_millis(100), cap: Duration::from_secs(5) };
    /// One try: the answer as it comes (what a load generator measures).
    pub const NONE: Retry = Retry { attempts: 1, base: Duration::ZERO, cap: Duration::ZERO };

    /// The wait before try `attempt + 1`: the answer's `Retry-After` if it gave one, else full
    /// jitter under an exponential ceiling.
    fn pause(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        retry_after.unwrap_or_else(|| {
            let ceiling = self.base.saturating_mul(1 << attempt.min(16)).min(self.cap);
            ceiling.mul_f64(rand::random::<f64>())
        })
    }
}

/// A create's answer: the resource, and whether it was a replay of an earlier request with the
/// same id (`200` and `Idempotent-Replayed: true`) rather than new (`201`, or `202` queued).
#[derive(Clone, Debug, PartialEq)]
pub struct Written<T> {
    pub value: T,
    pub replayed: bool,
}

/// A resource and its tag (`ETag`): what `If-Match` names to change it (or, an account's, to move
/// money through it) only while it is as read.
#[derive(Clone, Debug, PartialEq)]
pub struct Tagged<T> {
    pub value: T,
    pub tag: String,
}

/// An answer as it came.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    fn replayed(&self) -> bool {
        self.headers.get("idempotent-replayed").is_some_and(|v| v == "true")
    }

    /// The body as `T` if the answer is a success, else the problem it carries.
    pub fn into_typed<T: DeserializeOwned>(self) -> Result<T, ClientError> {
        if (200..300).contains(&self.status) {
            return serde_json::from_slice(&self.body).map_err(|e| ClientError::Unexpected {
                status: self.status,
                body: format!("{e}: {}", String::from_utf8_lossy(&self.body)),
            });
        }
        match serde_json::from_slice::<Problem>(&self.body) {
            Ok(problem) => Err(ClientError::Problem(Box::new(problem))),
            Err(_) => Err(ClientError::Unexpected {
                status: self.status,
                body: String::from_utf8_lossy(&self.body).into_owned(),
            }),
        }
    }
}

/// One request: its route, path id, query and JSON body (any JSON: the load generator sends bad
/// bodies on purpose), its `Prefer` header (`respond-async`, `respond-async; wait=5`) and its
/// `If-Match` (account tags).
#[derive(Clone, Debug)]
pub struct Call {
    pub route: Route,
    pub id: Option<String>,
    /// A nested resource's id (a reconciliation's, under its account).
    pub nested: Option<String>,
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
    pub prefer: Option<String>,
    pub if_match: Option<String>,
}

impl Call {
    pub fn new(route: Route) -> Self {
        Self { route, id: None, nested: None, query: Vec::new(), body: None, prefer: None, if_match: None }
    }

    pub fn if_match(mut self, tags: &str) -> Self {
        self.if_match = Some(tags.to_owned());
        self
    }

    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    pub fn nested(mut self, id: impl Into<String>) -> Self {
        self.nested = Some(id.into());
        self
    }

    pub fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    pub fn prefer(mut self, preference: &str) -> Self {
        self.prefer = Some(preference.to_owned());
        self
    }

    pub fn query(mut self, name: &str, value: impl ToString) -> Self {
        self.query.push((name.to_owned(), value.to_string()));
        self
    }
}

/// A client of one API (its base URL) as one caller (its bearer token). Cheap to clone.
#[derive(Clone)]
pub struct Client {
    base: String,
    token: String,
    transport: Arc<dyn Transport>,
    retry: Retry,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).field("retry", &self.retry).finish()
    }
}

fn instant(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

impl Client {
    /// A client over HTTP(S): `base` is the API's URL (`https://….execute-api….amazonaws.com` or
    /// the local stack's), `token` a bearer token with the scopes the calls need.
    pub fn new(base: &str, token: &str) -> Result<Self, ClientError> {
        let transport = HttpTransport::new(Duration::from_secs(30)).map_err(ClientError::NoAnswer)?;
        Ok(Self::with_transport(base, token, Arc::new(transport)))
    }

    /// A client whose requests go through `transport`.
    pub fn with_transport(base: &str, token: &str, transport: Arc<dyn Transport>) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            transport,
            retry: Retry::DEFAULT,
        }
    }

    /// This client, retrying as `retry` says.
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    fn request(&self, call: &Call) -> Result<Request, ClientError> {
        let mut url = url::Url::parse(&format!(
            "{}{}",
            self.base,
            call.route.path_with(call.id.as_deref(), call.nested.as_deref())
        ))
        .map_err(|e| ClientError::NoAnswer(format!("bad URL: {e}")))?;
        if !call.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&call.query);
        }
        let mut request = http::Request::builder()
            .method(call.route.method)
            .uri(url.as_str())
            .header("authorization", format!("Bearer {}", self.token))
            .header("accept", "application/json");
        if let Some(preference) = &call.prefer {
            request = request.header("prefer", preference);
        }
        if let Some(tags) = &call.if_match {
            request = request.header("if-match", tags);
        }
        let body = match &call.body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Bytes::from(body.to_string())
            }
            None => Bytes::new(),
        };
        request.body(body).map_err(|e| ClientError::NoAnswer(e.to_string()))
    }

    /// Sends `call`, waiting out `429` and `503` (and, on an idempotent route, sending again when
    /// no answer came), as this client's [`Retry`] allows. Returns the last answer.
    pub async fn execute(&self, call: &Call) -> Result<Answer, ClientError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.retry.attempts;
            let answer = match self.transport.send(self.request(call)?).await {
                Ok(answer) => answer,
                Err(why) if last || !call.route.idempotent => return Err(ClientError::NoAnswer(why)),
                Err(_) => {
                    tokio::time::sleep(self.retry.pause(attempt, None)).await;
                    continue;
                }
            };
            let status = answer.status().as_u16();
            // A 429 applied nothing; a 503 or 504 may have, so only an idempotent request goes again.
            let again = status == 429 || (matches!(status, 503 | 504) && call.route.idempotent);
            if again && !last {
                let retry_after = answer
                    .headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()?.parse().ok())
                    .map(Duration::from_secs);
                tokio::time::sleep(self.retry.pause(attempt, retry_after)).await;
                continue;
            }
            let (parts, body) = answer.into_parts();
            return Ok(Answer { status, headers: parts.headers, body });
        }
    }

    async fn typed<T: DeserializeOwned>(&self, call: Call) -> Result<T, ClientError> {
        self.execute(&call).await?.into_typed()
    }

    async fn tagged<T: DeserializeOwned>(&self, call: Call) -> Result<Tagged<T>, ClientError> {
        let answer = self.execute(&call).await?;
        let tag =
            answer.headers.get(http::header::ETAG).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        Ok(Tagged { value: answer.into_typed()?, tag })
    }

    async fn written<T: DeserializeOwned>(&self, call: Call) -> Result<Written<T>, ClientError> {
        let answer = self.execute(&call).await?;
        let replayed = answer.replayed();
        Ok(Written { value: answer.into_typed()?, replayed })
    }

    /// Every item of a list, page after page, following its cursor.
    pub fn pages<T: DeserializeOwned + Send + 'static>(
        &self,
        call: Call,
    ) -> impl Stream<Item = Result<T, ClientError>> + Send + use<T> {
        let client = self.clone();
        futures::stream::try_unfold(Some(None::<String>), move |cursor| {
            let (client, mut call) = (client.clone(), call.clone());
            async move {
                let Some(cursor) = cursor else { return Ok(None) };
                if let Some(cursor) = cursor {
                    call = call.query("cursor", cursor);
                }
                let page: Page<T> = client.typed(call.query("limit", 100)).await?;
                let next = page.next_cursor.map(Some);
                Ok(Some((futures::stream::iter(page.data.into_iter().map(Ok)), next)))
            }
        })
        .try_flatten()
    }

    // --- accounts ---------------------------------------------------------------------------

    /// Opens an account (its id is the idempotency key: the same request again is a replay).
    pub async fn create_account(&self, account: &NewAccount) -> Result<Written<Account>, ClientError> {
        self.written(Call::new(routes::CREATE_ACCOUNT).body(json!(account))).await
    }

    pub async fn get_account(&self, id: &AccountId) -> Result<Account, ClientError> {
        self.typed(Call::new(routes::GET_ACCOUNT).id(id.as_str())).await
    }

    /// The account with its tag: what `If-Match` names.
    pub async fn get_account_tagged(&self, id: &AccountId) -> Result<Tagged<Account>, ClientError> {
        self.tagged(Call::new(routes::GET_ACCOUNT).id(id.as_str())).await
    }

    /// Changes the account's bounds or metadata (a JSON merge patch: any of `allow_overdraft`,
    /// `overdraft_limit`, `max_balance`, `metadata`), only if it is still at `tag` (or `*`).
    pub async fn update_account(
        &self,
        id: &AccountId,
        patch: Value,
        tag: &str,
    ) -> Result<Tagged<Account>, ClientError> {
        self.tagged(Call::new(routes::UPDATE_ACCOUNT).id(id.as_str()).body(patch).if_match(tag)).await
    }

    /// Freezes the account: `debits_only`, nothing may leave it; otherwise nothing may move.
    pub async fn freeze_account(
        &self,
        id: &AccountId,
        debits_only: bool,
    ) -> Result<Tagged<Account>, ClientError> {
        let mode = if debits_only { "debits" } else { "all" };
        self.tagged(Call::new(routes::FREEZE_ACCOUNT).id(id.as_str()).body(json!({"mode": mode}))).await
    }

    pub async fn unfreeze_account(&self, id: &AccountId) -> Result<Tagged<Account>, ClientError> {
        self.tagged(Call::new(routes::UNFREEZE_ACCOUNT).id(id.as_str())).await
    }

    /// Closes the account for good (only at a zero balance with nothing pending).
    pub async fn close_account(&self, id: &AccountId) -> Result<Tagged<Account>, ClientError> {
        self.tagged(Call::new(routes::CLOSE_ACCOUNT).id(id.as_str())).await
    }

    /// The tenant's accounts by id, those with every pair of `metadata` (none: all).
    pub fn accounts(
        &self,
        metadata: &MetadataMatch,
    ) -> impl Stream<Item = Result<Account, ClientError>> + Send + use<> {
        let mut call = Call::new(routes::LIST_ACCOUNTS);
        for (key, value) in metadata.pairs() {
            call = call.query(&format!("metadata[{key}]"), value);
        }
        self.pages(call)
    }

    /// An account's entries, newest first.
    pub fn entries(&self, id: &AccountId) -> impl Stream<Item = Result<Entry, ClientError>> + Send + use<> {
        self.pages(Call::new(routes::LIST_ENTRIES).id(id.as_str()))
    }

    pub async fn balance_at(&self, id: &AccountId, at: OffsetDateTime) -> Result<BalanceAt, ClientError> {
        self.typed(Call::new(routes::BALANCE_AT).id(id.as_str()).query("at", instant(at))).await
    }

    /// One page of an account's statement from `from` (none: since it opened) to `to` (none: now),
    /// after `cursor` (a page's `next_cursor`).
    pub async fn statement(
        &self,
        id: &AccountId,
        from: Option<OffsetDateTime>,
        to: Option<OffsetDateTime>,
        cursor: Option<&str>,
    ) -> Result<Statement, ClientError> {
        let mut call = Call::new(routes::STATEMENT).id(id.as_str()).query("limit", 100);
        if let Some(from) = from {
            call = call.query("from", instant(from));
        }
        if let Some(to) = to {
            call = call.query("to", instant(to));
        }
        if let Some(cursor) = cursor {
            call = call.query("cursor", cursor);
        }
        self.typed(call).await
    }

    /// Reconciles account `id` with its bank's `statement` (`format`: `csv` or `camt.053`); its
    /// unmatched lines booked against `adjust_with` if given. The same statement again answers
    /// the kept reconciliation.
    pub async fn reconcile(
        &self,
        id: &AccountId,
        format: &str,
        statement: &str,
        adjust_with: Option<&AccountId>,
    ) -> Result<Written<Reconciliation>, ClientError> {
        let mut body = json!({"format": format, "statement": statement});
        if let Some(counter) = adjust_with {
            body["adjust_with"] = json!(counter);
        }
        self.written(Call::new(routes::RECONCILE).id(id.as_str()).body(body)).await
    }

    pub async fn reconciliation(
        &self,
        id: &AccountId,
        reconciliation: &str,
    ) -> Result<Reconciliation, ClientError> {
        self.typed(Call::new(routes::GET_RECONCILIATION).id(id.as_str()).nested(reconciliation)).await
    }

    // --- transfers --------------------------------------------------------------------------

    /// Makes a transfer while the caller waits: committed (a hold: pending), or a
    /// `ClientError::Problem` naming the rule that refused it (its id is then spent).
    pub async fn create_transfer(&self, transfer: &NewTransfer) -> Result<Written<Transfer>, ClientError> {
        self.written(Call::new(routes::CREATE_TRANSFER).body(json!(transfer))).await
    }

    /// Makes a transfer only if each account of `tags` (their tags as read) is unchanged: else a
    /// `precondition_failed` problem, and the id is not spent.
    pub async fn create_transfer_if(
        &self,
        transfer: &NewTransfer,
        tags: &[&str],
    ) -> Result<Written<Transfer>, ClientError> {
        self.written(Call::new(routes::CREATE_TRANSFER).body(json!(transfer)).if_match(&tags.join(", ")))
            .await
    }

    /// What `transfers` would do now, decided in order (each linked chain whole), writing nothing.
    pub async fn dry_run(&self, transfers: &[NewTransfer]) -> Result<DryRun, ClientError> {
        let call = match transfers {
            [one] => Call::new(routes::CREATE_TRANSFER).body(json!(one)),
            many => {
                Call::new(routes::SUBMIT_BATCH).body(json!({"id": BatchId::generate(), "transfers": many}))
            }
        };
        self.typed(call.query("dry_run", true)).await
    }

    /// Queues a transfer (`Prefer: respond-async`): answered `queued` once its id is claimed.
    pub async fn submit_transfer(&self, transfer: &NewTransfer) -> Result<Written<Transfer>, ClientError> {
        let call = Call::new(routes::CREATE_TRANSFER).body(json!(transfer)).prefer("respond-async");
        self.written(call).await
    }

    /// Makes a linked chain: every member committed, or none (a problem naming the member refused).
    pub async fn create_linked(&self, chain: &[NewTransfer]) -> Result<Written<Vec<Transfer>>, ClientError> {
        let answer = self
            .written::<LinkedTransfers>(Call::new(routes::CREATE_LINKED).body(json!({"transfers": chain})))
            .await?;
        Ok(Written { value: answer.value.transfers, replayed: answer.replayed })
    }

    /// Queues up to 1,000 transfers as batch `id`, to be settled in order.
    pub async fn submit_batch(
        &self,
        id: &BatchId,
        transfers: &[NewTransfer],
    ) -> Result<Written<TransferBatch>, ClientError> {
        self.written(Call::new(routes::SUBMIT_BATCH).body(json!({"id": id, "transfers": transfers}))).await
    }

    pub async fn get_batch(&self, id: &BatchId) -> Result<TransferBatch, ClientError> {
        self.typed(Call::new(routes::GET_BATCH).id(id.as_str())).await
    }

    /// The transfer with its tag: what `If-Match` names to change its metadata.
    pub async fn get_transfer_tagged(&self, id: &TransferId) -> Result<Tagged<Transfer>, ClientError> {
        self.tagged(Call::new(routes::GET_TRANSFER).id(id.as_str())).await
    }

    /// Merges `metadata` into the transfer's (a key set to `null` is removed), only if the
    /// transfer is still at `tag` (or `*`).
    pub async fn update_transfer(
        &self,
        id: &TransferId,
        metadata: Value,
        tag: &str,
    ) -> Result<Tagged<Transfer>, ClientError> {
        let call = Call::new(routes::UPDATE_TRANSFER).id(id.as_str()).body(json!({ "metadata": metadata }));
        self.tagged(call.if_match(tag)).await
    }

    pub async fn get_transfer(&self, id: &TransferId) -> Result<Transfer, ClientError> {
        self.typed(Call::new(routes::GET_TRANSFER).id(id.as_str())).await
    }

    /// The transfers `query` selects, newest first.
    pub fn search_transfers(
        &self,
        query: &TransferQuery,
    ) -> impl Stream<Item = Result<Transfer, ClientError>> + Send + use<> {
        let mut call = Call::new(routes::SEARCH_TRANSFERS);
        if let Some(account) = &query.account {
            call = call.query("account", account);
        }
        if let Some(status) = query.status {
            call = call.query("status", status.name());
        }
        if let Some(kind) = query.kind {
            call = call.query("kind", kind.name());
        }
        if let Some(from) = query.created_from {
            call = call.query("from", instant(from));
        }
        if let Some(to) = query.created_to {
            call = call.query("to", instant(to));
        }
        if let Some(batch) = &query.batch {
            call = call.query("batch", batch);
        }
        if let Some(chain) = &query.chain {
            call = call.query("chain", chain);
        }
        for (key, value) in query.metadata.pairs() {
            call = call.query(&format!("metadata[{key}]"), value);
        }
        self.pages(call)
    }

    // --- events -----------------------------------------------------------------------------

    /// The tenant's events (of type `kind`, created from `from` to `to`), newest first.
    pub fn events(
        &self,
        kind: Option<&str>,
        from: Option<OffsetDateTime>,
        to: Option<OffsetDateTime>,
    ) -> impl Stream<Item = Result<Event, ClientError>> + Send + use<> {
        let mut call = Call::new(routes::LIST_EVENTS);
        if let Some(kind) = kind {
            call = call.query("type", kind);
        }
        if let Some(from) = from {
            call = call.query("from", instant(from));
        }
        if let Some(to) = to {
            call = call.query("to", instant(to));
        }
        self.pages(call)
    }

    pub async fn get_event(&self, id: &EventId) -> Result<Event, ClientError> {
        self.typed(Call::new(routes::GET_EVENT).id(id.to_string())).await
    }

    // --- webhook endpoints ------------------------------------------------------------------

    /// Adds an endpoint: the answer is the only time its signing secret is shown.
    pub async fn create_endpoint(
        &self,
        url: &str,
        event_types: &[&str],
        description: &str,
    ) -> Result<WebhookEndpointWithSecret, ClientError> {
        let body = json!({"url": url, "event_types": event_types, "description": description});
        self.typed(Call::new(routes::CREATE_ENDPOINT).body(body)).await
    }

    pub fn endpoints(&self) -> impl Stream<Item = Result<WebhookEndpoint, ClientError>> + Send + use<> {
        self.pages(Call::new(routes::LIST_ENDPOINTS))
    }

    pub async fn get_endpoint(&self, id: &EndpointId) -> Result<WebhookEndpoint, ClientError> {
        self.typed(Call::new(routes::GET_ENDPOINT).id(id.as_str())).await
    }

    /// Changes an endpoint: `changes` holds any of `url`, `event_types`, `description`, `enabled`.
    pub async fn update_endpoint(
        &self,
        id: &EndpointId,
        changes: Value,
    ) -> Result<WebhookEndpoint, ClientError> {
        self.typed(Call::new(routes::UPDATE_ENDPOINT).id(id.as_str()).body(changes)).await
    }

    pub async fn delete_endpoint(&self, id: &EndpointId) -> Result<(), ClientError> {
        let answer = self.execute(&Call::new(routes::DELETE_ENDPOINT).id(id.as_str())).await?;
        if (200..300).contains(&answer.status) {
            return Ok(());
        }
        answer.into_typed::<Value>().map(|_| ())
    }

    /// A new signing secret (the old one signs on for a day).
    pub async fn rotate_secret(&self, id: &EndpointId) -> Result<WebhookEndpointWithSecret, ClientError> {
        self.typed(Call::new(routes::ROTATE_SECRET).id(id.as_str()).body(json!({}))).await
    }

    pub fn deliveries(
        &self,
        id: &EndpointId,
    ) -> impl Stream<Item = Result<WebhookDelivery, ClientError>> + Send + use<> {
        self.pages(Call::new(routes::LIST_DELIVERIES).id(id.as_str()))
    }

    /// Delivers one event to the endpoint again.
    pub async fn redeliver(&self, id: &EndpointId, event: &EventId) -> Result<WebhookQueued, ClientError> {
        let body = json!({"event_id": event.to_string()});
        self.typed(Call::new(routes::REDELIVER).id(id.as_str()).body(body)).await
    }

    /// Delivers again the endpoint's events since `from` (a page of them; `cursor` carries on).
    pub async fn replay(
        &self,
        id: &EndpointId,
        from: OffsetDateTime,
        cursor: Option<&str>,
    ) -> Result<WebhookQueued, ClientError> {
        let mut body = json!({"from": instant(from)});
        if let Some(cursor) = cursor {
            body["cursor"] = json!(cursor);
        }
        self.typed(Call::new(routes::REPLAY).id(id.as_str()).body(body)).await
    }
}

/// All of a stream's items, or its first error.
pub async fn collect<T>(stream: impl Stream<Item = Result<T, ClientError>>) -> Result<Vec<T>, ClientError> {
    stream.try_collect().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Answers from a script, recording every request.
    struct Scripted {
        answers: Mutex<Vec<Result<(u16, &'static str), &'static str>>>,
        seen: Mutex<Vec<(String, String)>>,
    }

    #[async_trait::async_trait]
    impl Transport for Scripted {
        async fn send(&self, request: Request) -> Result<Response, String> {
            let body = String::from_utf8_lossy(request.body()).into_owned();
            self.seen.lock().unwrap().push((request.uri().to_string(), body));
            let (status, body) = self.answers.lock().unwrap().remove(0).map_err(str::to_owned)?;
            Ok(http::Response::builder()
                .status(status)
                .header("retry-after", "0")
                .body(Bytes::from_static(body.as_bytes()))
                .unwrap())
        }
    }

    fn client(answers: Vec<Result<(u16, &'static str), &'static str>>) -> (Client, Arc<Scripted>) {
        let transport = Arc::new(Scripted { answers: Mutex::new(answers), seen: Mutex::default() });
        let retry = Retry { attempts: 4, base: Duration::from_millis(1), cap: Duration::from_millis(2) };
        (Client::with_transport("http://ledger.test/", "t", transport.clone()).with_retry(retry), transport)
    }

    const PROBLEM_503: &str = r#"{"type":"urn:ledger:problem:service_unavailable","title":"Service unavailable","status":503,"detail":"retry","code":"service_unavailable","retry_after":1}"#;
    const PROBLEM_422: &str = r#"{"type":"urn:ledger:problem:insufficient_funds","title":"Refused by a rule","status":422,"detail":"no","code":"insufficient_funds","account_id":"alice"}"#;

    #[tokio::test]
    async fn a_429_and_a_503_are_waited_out_and_the_same_request_goes_again() {
        let (client, seen) = client(vec![
            Ok((429, "{}")),
            Err("connection reset"),
            Ok((503, PROBLEM_503)),
            Ok((422, PROBLEM_422)),
        ]);
        let transfer = ledger::fixtures::transfer("t1", "alice", "bob", 5);
        let err = client.create_transfer(&transfer).await.unwrap_err();
        assert_eq!(err.code(), Some("insufficient_funds"));
        let ClientError::Problem(problem) = err else { unreachable!() };
        assert_eq!(problem.account_id.map(|a| a.to_string()).as_deref(), Some("alice"));
        let seen = seen.seen.lock().unwrap();
        assert_eq!(seen.len(), 4);
        assert!(seen.iter().all(|s| s == &seen[0]), "the same request, with the same id, each time");
        assert_eq!(seen[0].0, "http://ledger.test/v1/transfers");
    }

    #[tokio::test]
    async fn a_route_that_is_not_idempotent_is_not_sent_again_after_a_503_or_no_answer() {
        let (client, seen) = client(vec![Ok((503, PROBLEM_503))]);
        let err = client.create_endpoint("https://x.test/h", &["*"], "").await.unwrap_err();
        assert_eq!(err.code(), Some("service_unavailable"));
        let (client, _) = client_after(seen, vec![Err("timed out")]);
        assert!(matches!(
            client.create_endpoint("https://x.test/h", &["*"], "").await,
            Err(ClientError::NoAnswer(_))
        ));
    }

    fn client_after(
        _: Arc<Scripted>,
        answers: Vec<Result<(u16, &'static str), &'static str>>,
    ) -> (Client, Arc<Scripted>) {
        client(answers)
    }

    #[tokio::test]
    async fn lists_are_streams_that_follow_the_cursor() {
        let (client, seen) = client(vec![
            Ok((
                200,
                r#"{"data":[{"id":"we_1","url":"https://a.test","event_types":["*"],"description":"","enabled":true,"created_at":"2026-12-06T10:00:00Z","failing_since":null}],"next_cursor":"c1"}"#,
            )),
            Ok((200, r#"{"data":[],"next_cursor":null}"#)),
        ]);
        let endpoints = collect(client.endpoints()).await.unwrap();
        assert_eq!(endpoints.len(), 1);
        let seen = seen.seen.lock().unwrap();
        assert_eq!(seen[0].0, "http://ledger.test/v1/webhook-endpoints?limit=100");
        assert_eq!(seen[1].0, "http://ledger.test/v1/webhook-endpoints?cursor=c1&limit=100");
    }

    #[test]
    fn totals_past_u64_read_back_exactly() {
        let big: u128 = 10u128.pow(37);
        assert_eq!(serde_json::from_str::<u128>(&big.to_string()).unwrap(), big);
        assert_eq!(serde_json::from_str::<i128>(&format!("-{big}")).unwrap(), -(big as i128));
    }
}
