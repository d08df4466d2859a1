//! Drives the API handler with every sample event in events/, as Lambda delivers them (API Gateway
//! HTTP API payload v2, converted by lambda_http exactly as `lambda_http::run` does).

use std::path::PathBuf;

use http::StatusCode;
use lambda_http::request::LambdaRequest;
use tower::ServiceExt;

/// Each sample, in the order a user would invoke them, with the status it must produce.
const EXPECTED: &[(&str, StatusCode)] = &[
    ("create-funding-account.json", StatusCode::CREATED),
    ("create-account.json", StatusCode::CREATED),
    ("create-transfer.json", StatusCode::CREATED),
    ("create-hold.json", StatusCode::CREATED),
    ("post-hold.json", StatusCode::CREATED),
    ("void-posted-hold.json", StatusCode::UNPROCESSABLE_ENTITY),
    ("reverse-transfer.json", StatusCode::CREATED),
    ("create-linked-transfers.json", StatusCode::CREATED),
    ("create-linked-transfers-failing.json", StatusCode::UNPROCESSABLE_ENTITY),
    ("get-account.json", StatusCode::OK),
    ("list-accounts.json", StatusCode::OK),
    ("get-transfer.json", StatusCode::OK),
    ("list-entries.json", StatusCode::OK),
    ("get-statement.json", StatusCode::OK),
    ("list-events.json", StatusCode::OK),
    ("get-event.json", StatusCode::OK),
    ("create-webhook-endpoint.json", StatusCode::CREATED),
    // An instant before alice was opened (whenever the samples run): a typed 400.
    ("get-balance-before-opening.json", StatusCode::BAD_REQUEST),
    ("malformed-json.json", StatusCode::BAD_REQUEST),
    ("no-tenant-claim.json", StatusCode::UNAUTHORIZED),
    // A token granting only ledger/read posting a transfer.
    ("create-transfer-read-only.json", StatusCode::FORBIDDEN),
];

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

async fn invoke(router: &axum::Router, file: &str) -> (StatusCode, bool) {
    let raw = std::fs::read_to_string(events_dir().join(file)).unwrap();
    let event: LambdaRequest = serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{file}: {e}"));
    let request = http::Request::<lambda_http::Body>::from(event);
    let response = router.clone().oneshot(request).await.unwrap();
    (response.status(), response.headers().contains_key(ledger_http::REPLAY_HEADER))
}

#[tokio::test]
async fn every_sample_event_gives_its_documented_status() {
    let mut files: Vec<String> = std::fs::read_dir(events_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        // The sqs-* samples are the worker's (functions/worker/tests/events.rs), the dynamodb-*
        // ones the publisher's (functions/publisher/tests/publish.rs).
        .filter(|name| name.ends_with(".json") && !name.starts_with("sqs-") && !name.starts_with("dynamodb-"))
        .collect();
    files.sort();
    let mut expected: Vec<String> = EXPECTED.iter().map(|(f, _)| f.to_string()).collect();
    expected.sort();
    assert_eq!(files, expected, "every API event in events/ needs an expected status here");

    let router = ledger_http::router(harness::Backend::state(&harness::MemoryStack::new()));
    for (file, status) in EXPECTED {
        assert_eq!(invoke(&router, file).await, (*status, false), "{file}");
    }
    // Lambda may deliver an event twice: the creates replay instead of applying again.
    for file in [
        "create-funding-account.json",
        "create-account.json",
        "create-transfer.json",
        "create-hold.json",
        "post-hold.json",
        "reverse-transfer.json",
        "create-linked-transfers.json",
    ] {
        assert_eq!(invoke(&router, file).await, (StatusCode::OK, true), "{file} delivered twice");
    }
}

#[tokio::test]
async fn the_correlation_id_of_an_event_comes_back_and_one_is_made_when_absent() {
    let router = ledger_http::router(harness::Backend::state(&harness::MemoryStack::new()));
    let send = |file: &'static str| {
        let router = router.clone();
        async move {
            let raw = std::fs::read_to_string(events_dir().join(file)).unwrap();
            let event: LambdaRequest = serde_json::from_str(&raw).unwrap();
            let response = router.oneshot(http::Request::<lambda_http::Body>::from(event)).await.unwrap();
            response.headers().get("x-correlation-id").map(|v| v.to_str().unwrap().to_owned())
        }
    };
    send("create-funding-account.json").await;
    send("create-account.json").await;
    assert_eq!(send("create-transfer.json").await.as_deref(), Some("sample-create-transfer"));
    let generated = send("get-account.json").await.expect("a generated id");
    assert_eq!(generated.len(), 36);
}
