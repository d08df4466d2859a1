//! `cargo stack listen`: a webhook receiver on this machine, as `stripe listen` is. It adds an
//! endpoint pointing at itself to the ledger (the running local stack by default, or `--url`),
//! prints each delivery as it arrives with whether its signature verifies against the endpoint's
//! secret, forwards it (headers and body unchanged) to `--forward-to` if given and answers with
//! that status, and deletes the endpoint when stopped.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::IntoResponse;
use http::{HeaderMap, StatusCode};
use serde_json::Value;

/// What a running listener needs per delivery.
struct Listener {
    verifier: standardwebhooks::Webhook,
    forward_to: Option<String>,
    http: reqwest::Client,
}

/// Listens until Ctrl-C: `api` and `token` name the ledger, `types` what to receive.
pub async fn listen(
    api: &str,
    token: &str,
    types: Vec<String>,
    port: u16,
    forward_to: Option<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let url = format!("http://{}/webhooks", listener.local_addr()?);
    let http = reqwest::Client::new();
    let ledger = ledger_client::Client::new(api, token)?;
    let types = if types.is_empty() { vec!["*".to_owned()] } else { types };
    let kinds: Vec<&str> = types.iter().map(String::as_str).collect();
    let created = ledger.create_endpoint(&url, &kinds, "cargo stack listen").await?;
    let (id, secret) = (created.id, created.secret);
    eprintln!("Ready. Endpoint {id} receives {types:?} at {url}");
    eprintln!("Its signing secret (to verify deliveries yourself): {secret}");
    if let Some(target) = &forward_to {
        eprintln!("Forwarding each delivery to {target}");
    }
    let state = Arc::new(Listener {
        verifier: standardwebhooks::Webhook::new(&secret)?,
        forward_to,
        http: http.clone(),
    });
    let app = Router::new().fallback(receive).with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    ledger.delete_endpoint(&id).await?;
    eprintln!("\nstopped: endpoint {id} deleted");
    Ok(())
}

async fn receive(
    State(listener): State<Arc<Listener>>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
    let verified = match listener.verifier.verify(&body, &headers) {
        Ok(()) => "signature ok".to_owned(),
        Err(err) => format!("SIGNATURE INVALID ({err})"),
    };
    let event: Value = serde_json::from_slice(&body).unwrap_or_default();
    let at = time::OffsetDateTime::now_utc();
    let mut line = format!(
        "{}  {:<26} {}  {}",
        at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        event["type"].as_str().unwrap_or("?"),
        header(standardwebhooks::HEADER_WEBHOOK_ID),
        verified
    );
    let status = match &listener.forward_to {
        None => StatusCode::OK,
        Some(target) => {
            let mut request = listener.http.post(target).body(body.clone());
            for name in [
                http::header::CONTENT_TYPE.as_str(),
                standardwebhooks::HEADER_WEBHOOK_ID,
                standardwebhooks::HEADER_WEBHOOK_TIMESTAMP,
                standardwebhooks::HEADER_WEBHOOK_SIGNATURE,
            ] {
                if let Some(value) = headers.get(name) {
                    request = request.header(name, value);
                }
            }
            match request.send().await {
                Ok(answer) => {
                    line.push_str(&format!("  -> {target} [{}]", answer.status().as_u16()));
                    StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY)
                }
                Err(err) => {
                    line.push_str(&format!("  -> {target} failed: {err}"));
                    StatusCode::BAD_GATEWAY
                }
            }
        }
    };
    println!("{line}");
    status
}
