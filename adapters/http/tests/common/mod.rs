//! Drives the API router the way the local stack serves it (JWT check in front), against a fresh
//! table in the emulator.

#![allow(dead_code)]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use devkit::DevAuth;
use http::{HeaderMap, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

pub struct Api {
    pub router: Router,
    pub auth: DevAuth,
    pub stack: devkit::Stack,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }

    pub fn is_problem(&self) -> bool {
        self.headers.get("content-type").is_some_and(|v| v == "application/problem+json")
    }

    pub fn replayed(&self) -> bool {
        self.headers.get(ledger_http::REPLAY_HEADER).is_some_and(|v| v == "true")
    }
}

impl Api {
    pub async fn new() -> Api {
        Api::on(devkit::fresh_stack().await)
    }

    pub fn on(stack: devkit::Stack) -> Api {
        let auth = DevAuth::new(b"test-signing-key".to_vec(), ledger_http::DEFAULT_TENANT_CLAIM);
        let router = devkit::local_router(stack.state(), auth.clone());
        Api { router, auth, stack }
    }

    pub fn token(&self, tenant: &str) -> String {
        self.auth.token(tenant, Duration::from_secs(600))
    }

    /// A request as tenant `tenant` (None: no credentials) with a raw body.
    pub async fn raw(&self, method: &str, path: &str, tenant: Option<&str>, body: impl Into<Body>) -> Reply {
        let mut request =
            Request::builder().method(method).uri(path).header("content-type", "application/json");
        if let Some(tenant) = tenant {
            request = request.header("authorization", format!("Bearer {}", self.token(tenant)));
        }
        self.send_request(request.body(body.into()).unwrap()).await
    }

    /// A GET with the given bearer token, verbatim.
    pub async fn with_bearer(&self, path: &str, bearer: &str) -> Reply {
        let request = Request::builder().uri(path).header("authorization", format!("Bearer {bearer}"));
        self.send_request(request.body(Body::empty()).unwrap()).await
    }

    pub async fn send_request(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        Reply { status, headers, body }
    }

    pub async fn get(&self, path: &str, tenant: &str) -> Reply {
        self.raw("GET", path, Some(tenant), Body::empty()).await
    }

    pub async fn post(&self, path: &str, tenant: &str, body: Value) -> Reply {
        self.raw("POST", path, Some(tenant), body.to_string()).await
    }
}
