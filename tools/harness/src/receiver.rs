//! A webhook receiver on this machine, for tests: an HTTP server on a loopback port that records
//! every request (headers and body) and answers each as its script says.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
    /// The wall clock then (to set against an event's `created`).
    pub wall: time::OffsetDateTime,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }
}

/// How the receiver answers one request.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub delay: Duration,
    pub body: String,
    pub retry_after: Option<u64>,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            delay: Duration::ZERO,
            body: String::new(),
            retry_after: None,
        }
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn with_body(mut self, body: String) -> Self {
        self.body = body;
        self
    }
}

#[derive(Default)]
struct Script {
    /// Answers to give in order; then `then`.
    next: VecDeque<Reply>,
    then: Option<Reply>,
    received: Vec<Received>,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    script: Arc<Mutex<Script>>,
}

impl Receiver {
    /// A receiver answering `replies` in order, then `then` to every later request.
    pub async fn start(replies: Vec<Reply>, then: Reply) -> std::io::Result<Receiver> {
        let script =
            Arc::new(Mutex::new(Script { next: replies.into(), then: Some(then), received: Vec::new() }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let app = Router::new().fallback(answer).with_state(script.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Receiver { url, script })
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap_or_else(|e| e.into_inner()).received.clone()
    }
}

async fn answer(State(script): State<Arc<Mutex<Script>>>, headers: HeaderMap, body: Bytes) -> Response {
    let reply = {
        let mut script = script.lock().unwrap_or_else(|e| e.into_inner());
        script.received.push(Received {
            headers,
            body,
            at: Instant::now(),
            wall: time::OffsetDateTime::now_utc(),
        });
        let then = script.then.clone().unwrap_or(Reply::status(200));
        script.next.pop_front().unwrap_or(then)
    };
    tokio::time::sleep(reply.delay).await;
    let mut response = (reply.status, reply.body).into_response();
    if let Some(seconds) = reply.retry_after
        && let Ok(value) = http::HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(http::header::RETRY_AFTER, value);
    }
    response
}
