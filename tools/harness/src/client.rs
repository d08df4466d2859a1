//! The tests' API client: drives the router the way the local stack serves it (JWT check in front)
//! against a backend of its own (in process, or on the emulators), with valid bodies built from
//! `ledger::fixtures`.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::auth::DevAuth;
use crate::backend::Backend;
use crate::emulated::{EmulatedStack, fresh_stack, local_router};
use crate::memory::MemoryStack;

pub struct Api<B: Backend = EmulatedStack> {
    pub router: Router,
    pub auth: DevAuth,
    pub stack: B,
    /// Each tenant's token, signed once, as a client keeps its token until it expires.
    tokens: std::sync::Mutex<std::collections::HashMap<String, String>>,
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

/// Retries of an indefinite answer before a client gives up.
const MAX_RETRIES: u32 = 100;

/// The JSON body of `POST /v1/transfers` for `ledger::fixtures::transfer`.
pub fn transfer_body(id: &str, debit: &str, credit: &str, amount: u64) -> Value {
    serde_json::to_value(ledger::fixtures::transfer(id, debit, credit, amount)).unwrap_or_default()
}

impl Api<EmulatedStack> {
    /// A client of a fresh stack on the emulators.
    pub async fn new() -> Api {
        Api::on(fresh_stack().await)
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
        let auth = DevAuth::new(b"test-signing-key".to_vec(), state.tenant_claim.clone());
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

    /// As a careful client does: POSTs again while the answer is indefinite. Returns the definite
    /// answer and how many indefinite ones came first.
    ///
    /// # Panics
    /// If the answer stays indefinite through every retry.
    pub async fn post_definite(&self, path: &str, tenant: &str, body: Value) -> (Reply, u32) {
        for retries in 0..MAX_RETRIES {
            let reply = self.post(path, tenant, body.clone()).await;
            if !reply.is_indefinite() {
                return (reply, retries);
            }
        }
        panic!("POST {path} {body} stayed indefinite");
    }

    /// As `post_definite`, for a GET.
    pub async fn get_definite(&self, path: &str, tenant: &str) -> Reply {
        for _ in 0..MAX_RETRIES {
            let reply = self.get(path, tenant).await;
            if !reply.is_indefinite() {
                return reply;
            }
        }
        panic!("GET {path} stayed indefinite");
    }

    /// Opens `id` for `tenant` in EUR; asserts it was created (or already there).
    pub async fn open_account(&self, tenant: &str, id: &str, allow_overdraft: bool) {
        let body = json!({"id": id, "currency": "EUR", "allow_overdraft": allow_overdraft});
        let (reply, _) = self.post_definite("/v1/accounts", tenant, body).await;
        assert!(reply.status.is_success(), "opening {id}: {} {}", reply.status, reply.body);
    }

    /// Every entry of an account, newest first, following the cursor.
    pub async fn all_entries(&self, tenant: &str, account: &str) -> Vec<Value> {
        let mut entries = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/accounts/{account}/entries?limit=100&cursor={c}"),
                None => format!("/v1/accounts/{account}/entries?limit=100"),
            };
            let page = self.get_definite(&path, tenant).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
            entries.extend(page.body["data"].as_array().into_iter().flatten().cloned());
            match page.body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return entries,
            }
        }
    }

    pub async fn balance(&self, tenant: &str, account: &str) -> i64 {
        let reply = self.get_definite(&format!("/v1/accounts/{account}"), tenant).await;
        reply.body["balance"].as_i64().unwrap_or_else(|| panic!("no balance for {account}: {}", reply.body))
    }
}
