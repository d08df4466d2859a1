//! The tests' API client: drives the router the way the local stack serves it (JWT check in front)
//! against a backend of its own (in process, or on the emulators). Typed calls and the retries of
//! a careful client go through `ledger-client` over an in-process transport ([`RouterTransport`]);
//! raw requests (malformed bodies, forged tokens) go to the router as they are.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

use crate::auth::DevAuth;
use crate::backend::Backend;
use crate::emulated::{EmulatedStack, fresh_stack, local_router};
use crate::instances::Instances;
use crate::memory::MemoryStack;

pub struct Api<B: Backend = EmulatedStack> {
    pub router: Router,
    pub auth: DevAuth,
    pub stack: B,
    /// Each tenant's token, signed once, as a client keeps its token until it expires.
    tokens: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

/// The tests' token signer and checker: every API of a test signs and checks with one key.
fn test_auth(tenant_claim: &str) -> DevAuth {
    DevAuth::new(b"test-signing-key".to_vec(), tenant_claim.to_owned())
}

/// A response, its body parsed as JSON (`Null` when empty).
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// A problem document's `code`.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }

    pub fn is_problem(&self) -> bool {
        self.headers.get("content-type").is_some_and(|v| v == "application/problem+json")
    }

    pub fn replayed(&self) -> bool {
        self.headers.get(ledger_http::REPLAY_HEADER).is_some_and(|v| v == "true")
    }

    /// Asserts a `400 invalid_field` naming `field` (`asked`: the request, for the message).
    #[track_caller]
    pub fn assert_invalid_field(&self, field: &str, asked: impl std::fmt::Display) {
        assert_eq!(
            (self.status, self.code(), self.body["field"].as_str()),
            (StatusCode::BAD_REQUEST, "invalid_field", Some(field)),
            "{asked}: {}",
            self.body
        );
    }

    /// An answer that says nothing of whether the request applied: the store stayed unavailable
    /// (503), or the client gave up waiting (504). Every write carries its id, so a retry is safe.
    pub fn is_indefinite(&self) -> bool {
        matches!(self.status, StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT)
    }
}

/// Tries of a request whose answer stays indefinite before a test gives up.
const MAX_ATTEMPTS: u32 = 100;

/// `ledger-client`'s transport straight into a router, in process: the same requests it sends over
/// HTTP, without a socket.
pub struct RouterTransport(pub Router);

#[async_trait::async_trait]
impl ledger_client::Transport for RouterTransport {
    async fn send(&self, request: ledger_client::Request) -> Result<ledger_client::Response, String> {
        let (parts, body) = request.into_parts();
        // The router routes on the path: drop the client's base URL.
        let mut parts = parts;
        parts.uri =
            parts.uri.path_and_query().map_or("/", |p| p.as_str()).parse().map_err(|e| format!("{e}"))?;
        let request = Request::from_parts(parts, Body::from(body));
        let response = self.0.clone().oneshot(request).await.map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.map_err(|e| e.to_string())?;
        Ok(http::Response::from_parts(parts, bytes))
    }
}

/// Counts the requests that pass through it.
struct Counting {
    inner: RouterTransport,
    sent: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

#[async_trait::async_trait]
impl ledger_client::Transport for Counting {
    async fn send(&self, request: ledger_client::Request) -> Result<ledger_client::Response, String> {
        self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.send(request).await
    }
}

/// A test's patience: up to `MAX_ATTEMPTS` tries, short pauses (the faults it injects are instant).
fn careful_retry() -> ledger_client::Retry {
    ledger_client::Retry {
        attempts: MAX_ATTEMPTS,
        base: Duration::from_millis(1),
        cap: Duration::from_millis(50),
    }
}

impl Reply {
    fn from_answer(answer: ledger_client::Answer) -> Reply {
        let body = if answer.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&answer.body).expect("a JSON body")
        };
        Reply {
            status: StatusCode::from_u16(answer.status).expect("a status"),
            headers: answer.headers,
            body,
        }
    }
}

/// The JSON body of `POST /v1/transfers` for `ledger::fixtures::transfer`.
pub fn transfer_body(id: &str, debit: &str, credit: &str, amount: u64) -> Value {
    serde_json::to_value(ledger::fixtures::transfer(id, debit, credit, amount)).unwrap_or_default()
}

impl Api<EmulatedStack> {
    /// A client of a fresh stack on the emulators.
    pub async fn new() -> Api {
        Api::on(fresh_stack().await)
    }

    /// A client of the API function's instances on `stack`, as Lambda runs them: each instance
    /// serves one request at a time on a store of its own, and a request that finds every instance
    /// busy starts another. So requests at once meet only in the table, as in AWS, never in one
    /// store's memory (its cached balances, contention levels and turns).
    pub fn fleet(stack: EmulatedStack) -> Api {
        let auth = test_auth(&stack.tenant_claim);
        let start = {
            let (stack, auth) = (stack.clone(), auth.clone());
            move || local_router(stack.instance().state(), auth.clone(), stack.faults.clone())
        };
        let instances = Instances::new(start);
        let router = Router::new().fallback_service(tower::service_fn(move |request: Request<Body>| {
            let instances = instances.clone();
            async move { instances.serve(|instance: Router| instance.oneshot(request)).await }
        }));
        Api { router, auth, stack, tokens: Default::default() }
    }

    /// A client of a fresh stack whose table's stream is on (events reach the publisher).
    pub async fn with_events() -> Api {
        Api::on(crate::emulated::fresh_stack_with_events().await)
    }
}

impl Api<MemoryStack> {
    /// A client of a fresh backend in process.
    pub fn memory() -> Api<MemoryStack> {
        Api::on(MemoryStack::new())
    }
}

impl<B: Backend> Api<B> {
    pub fn on(stack: B) -> Api<B> {
        let state = stack.state();
        let auth = test_auth(&state.tenant_claim);
        let router = local_router(state, auth.clone(), stack.faults());
        Api { router, auth, stack, tokens: Default::default() }
    }

    /// A token for `tenant`, valid for an hour from its first use.
    pub fn token(&self, tenant: &str) -> String {
        let mut tokens = self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        tokens
            .entry(tenant.to_owned())
            .or_insert_with(|| self.auth.token(tenant, Duration::from_secs(3600)))
            .clone()
    }

    /// A typed client acting for `tenant` (every scope), over this API's router, with retries as
    /// `retry` says.
    pub fn client(&self, tenant: &str, retry: ledger_client::Retry) -> ledger_client::Client {
        let transport = std::sync::Arc::new(RouterTransport(self.router.clone()));
        ledger_client::Client::with_transport("http://ledger.local", &self.token(tenant), transport)
            .with_retry(retry)
    }

    /// A careful client: it waits out `429` and sends again while the answer is indefinite.
    fn careful(&self, tenant: &str) -> ledger_client::Client {
        self.client(tenant, careful_retry())
    }

    /// A request as tenant `tenant` (None: no credentials) with a raw body.
    pub async fn raw(&self, method: &str, path: &str, tenant: Option<&str>, body: impl Into<Body>) -> Reply {
        let mut request =
            Request::builder().method(method).uri(path).header("content-type", "application/json");
        if let Some(tenant) = tenant {
            request = request.header("authorization", format!("Bearer {}", self.token(tenant)));
        }
        self.send_request(request.body(body.into()).expect("a valid request")).await
    }

    /// A GET with the given bearer token, verbatim.
    pub async fn with_bearer(&self, path: &str, bearer: &str) -> Reply {
        let request = Request::builder().uri(path).header("authorization", format!("Bearer {bearer}"));
        self.send_request(request.body(Body::empty()).expect("a valid request")).await
    }

    /// # Panics
    /// If the router fails or a non-empty body is not JSON: the API answers JSON or nothing.
    pub async fn send_request(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.expect("the router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("a readable body");
        let body =
            if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("a JSON body") };
        Reply { status, headers, body }
    }

    /// A POST as tenant `tenant` with `Prefer: respond-async`.
    pub async fn post_async(&self, path: &str, tenant: &str, body: &Value) -> Reply {
        let request = Request::post(path)
            .header("authorization", format!("Bearer {}", self.token(tenant)))
            .header("content-type", "application/json")
            .header("prefer", "respond-async")
            .body(Body::from(body.to_string()))
            .expect("a valid request");
        self.send_request(request).await
    }

    pub async fn get(&self, path: &str, tenant: &str) -> Reply {
        self.raw("GET", path, Some(tenant), Body::empty()).await
    }

    pub async fn post(&self, path: &str, tenant: &str, body: Value) -> Reply {
        self.raw("POST", path, Some(tenant), body.to_string()).await
    }

    /// As a careful client does: POSTs again while the answer is indefinite (through the typed
    /// client's retries). Returns the definite answer and how many indefinite ones came first.
    ///
    /// # Panics
    /// If `path` is no POST route, or the answer stays indefinite through every retry.
    pub async fn post_definite(&self, path: &str, tenant: &str, body: Value) -> (Reply, u32) {
        let route = ledger_client::routes::ALL
            .into_iter()
            .find(|r| r.method == "POST" && r.path == path)
            .unwrap_or_else(|| panic!("POST {path} is no route without a path id"));
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let transport = Counting { inner: RouterTransport(self.router.clone()), sent: sent.clone() };
        let client = ledger_client::Client::with_transport(
            "http://ledger.local",
            &self.token(tenant),
            std::sync::Arc::new(transport),
        )
        .with_retry(careful_retry());
        let answer = client.execute(&ledger_client::Call::new(route).body(body.clone())).await;
        let reply = Reply::from_answer(answer.unwrap_or_else(|e| panic!("POST {path} {body}: {e}")));
        assert!(!reply.is_indefinite(), "POST {path} {body} stayed indefinite");
        (reply, sent.load(std::sync::atomic::Ordering::Relaxed).saturating_sub(1))
    }

    /// As `post_definite`, for a GET.
    pub async fn get_definite(&self, path: &str, tenant: &str) -> Reply {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let (route, id) = ledger_client::routes::ALL
            .into_iter()
            .filter(|r| r.method == "GET")
            .find_map(|r| path_id(r.path, path).map(|id| (r, id)))
            .unwrap_or_else(|| panic!("GET {path} is no route"));
        let mut call = ledger_client::Call::new(route);
        if let Some(id) = id {
            call = call.id(id);
        }
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            call = call.query(&name, value);
        }
        let answer = self.careful(tenant).execute(&call).await.unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let reply = Reply::from_answer(answer);
        assert!(!reply.is_indefinite(), "GET {path} stayed indefinite");
        reply
    }

    /// Opens `id` for `tenant` in EUR; asserts it was created (or already there).
    pub async fn open_account(&self, tenant: &str, id: &str, allow_overdraft: bool) {
        let account = ledger::fixtures::account(id, allow_overdraft);
        let opened = self.careful(tenant).create_account(&account).await;
        opened.unwrap_or_else(|e| panic!("opening {id}: {e}"));
    }

    /// Opens a hot account (`ledger::shard`): its balance spread over `shards` shards.
    pub async fn open_hot_account(&self, tenant: &str, id: &str, allow_overdraft: bool, shards: u16) {
        let shards = ledger::ShardCount::new(shards).expect("a valid shard count");
        let account = ledger::NewAccount { shards, ..ledger::fixtures::account(id, allow_overdraft) };
        let opened = self.careful(tenant).create_account(&account).await;
        opened.unwrap_or_else(|e| panic!("opening {id}: {e}"));
    }

    /// Every entry of an account, newest first, following the cursor.
    pub async fn all_entries(&self, tenant: &str, account: &str) -> Vec<Value> {
        let account = ledger::AccountId::parse(account).expect("a valid account id");
        let entries = ledger_client::collect(self.careful(tenant).entries(&account)).await;
        let entries = entries.unwrap_or_else(|e| panic!("the entries of {account}: {e}"));
        entries.iter().map(|e| serde_json::to_value(e).expect("an entry")).collect()
    }

    pub async fn balance(&self, tenant: &str, account: &str) -> i64 {
        let id = ledger::AccountId::parse(account).expect("a valid account id");
        let read = self.careful(tenant).get_account(&id).await;
        let balance = read.unwrap_or_else(|e| panic!("reading {account}: {e}")).balance;
        i64::try_from(balance).expect("a test's balance fits i64")
    }
}

/// The id a concrete path gives a route's template, if it matches (`Some(None)`: no id).
fn path_id(template: &str, path: &str) -> Option<Option<String>> {
    let Some((head, tail)) = template.split_once("{id}") else {
        return (template == path).then_some(None);
    };
    let rest = path.strip_prefix(head)?;
    let id = rest.strip_suffix(tail)?;
    (!id.is_empty() && !id.contains('/')).then(|| Some(id.to_owned()))
}
