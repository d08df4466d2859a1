//! A DynamoDB endpoint in front of DynamoDB Local that injects the plan's faults: it answers some
//! calls itself with the errors DynamoDB returns (throttling, a 500, a transaction cancelled for a
//! conflict), holds some before forwarding them, and loses the answer of some writes after they
//! landed. Everything else is forwarded untouched, so the SDK sees DynamoDB's own bytes.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use super::{DynamoDbFault, Faults};

const JSON_1_0: &str = "application/x-amz-json-1.0";
const ERROR_PREFIX: &str = "com.amazonaws.dynamodb.v20120810#";

/// The proxy's listening address; it serves until the process ends.
pub struct FaultProxy {
    endpoint: String,
}

struct Forwarder {
    target: String,
    client: reqwest::Client,
    faults: Arc<Faults>,
}

impl FaultProxy {
    /// Starts a proxy to the DynamoDB endpoint `target` on a free loopback port.
    pub async fn start(target: &str, faults: Arc<Faults>) -> std::io::Result<FaultProxy> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let forwarder = Arc::new(Forwarder {
            target: target.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder().build().map_err(std::io::Error::other)?,
            faults,
        });
        let app = Router::new().fallback(handle).with_state(forwarder);
        tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::error!(error = %err, "the fault proxy stopped");
            }
        });
        Ok(FaultProxy { endpoint })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

async fn handle(State(forwarder): State<Arc<Forwarder>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let operation = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit('.').next())
        .unwrap_or_default()
        .to_owned();
    match forwarder.faults.dynamodb_call(&operation) {
        None => forwarder.forward(&parts.headers, body).await,
        Some(DynamoDbFault::Throttle) => error(
            StatusCode::BAD_REQUEST,
            "ProvisionedThroughputExceededException",
            json!({"message": "The level of configured provisioned throughput for the table was exceeded (injected)"}),
        ),
        Some(DynamoDbFault::Error) => {
            error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", json!({"message": "injected"}))
        }
        Some(DynamoDbFault::Conflict) => conflict(&body),
        Some(DynamoDbFault::Slow) => {
            tokio::time::sleep(forwarder.faults.plan().slow_by).await;
            forwarder.forward(&parts.headers, body).await
        }
        Some(DynamoDbFault::LostReply) => {
            // The write lands; its caller hears only that something went wrong.
            let _landed = forwarder.forward(&parts.headers, body).await;
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                json!({"message": "injected after the request was applied"}),
            )
        }
    }
}

impl Forwarder {
    async fn forward(&self, headers: &HeaderMap, body: Bytes) -> Response {
        let mut request = self.client.post(&self.target).body(body);
        for (name, value) in headers {
            if name != header::HOST && name != header::CONTENT_LENGTH {
                request = request.header(name, value);
            }
        }
        let answer = match request.send().await {
            Ok(answer) => answer,
            Err(err) => return (StatusCode::BAD_GATEWAY, err.to_string()).into_response(),
        };
        let status = answer.status();
        let headers = answer.headers().clone();
        let body = answer.bytes().await.unwrap_or_default();
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        for (name, value) in &headers {
            if name != header::CONTENT_LENGTH
                && name != header::TRANSFER_ENCODING
                && name != header::CONNECTION
            {
                response.headers_mut().insert(name, value.clone());
            }
        }
        response
    }
}

/// An error answer in DynamoDB's JSON protocol.
fn error(status: StatusCode, kind: &str, mut body: Value) -> Response {
    body["__type"] = json!(format!("{ERROR_PREFIX}{kind}"));
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_1_0));
    response
}

/// A transaction cancelled because another one was writing one of its items (the first), as
/// DynamoDB answers it: one reason per item, in order.
fn conflict(body: &[u8]) -> Response {
    let items = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["TransactItems"].as_array().map(Vec::len))
        .unwrap_or(1)
        .max(1);
    let reasons: Vec<Value> = (0..items)
        .map(|i| match i {
            0 => json!({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}),
            _ => json!({"Code": "None"}),
        })
        .collect();
    let codes: Vec<&str> = reasons.iter().filter_map(|r| r["Code"].as_str()).collect();
    error(
        StatusCode::BAD_REQUEST,
        "TransactionCanceledException",
        json!({
            "Message": format!("Transaction cancelled, please refer cancellation reasons for specific reasons [{}]", codes.join(", ")),
            "CancellationReasons": reasons,
        }),
    )
}
