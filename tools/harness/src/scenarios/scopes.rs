//! Scoped credentials: a token holding one scope walks the whole route table. Each route answers
//! it as its handler would when the route requires that scope, and with `403 insufficient_scope`,
//! before anything is read or written, when it requires another. A read-only token reads every
//! resource.

use axum::body::Body;
use http::StatusCode;
use ledger_http::Scope;
use serde_json::{Value, json};

use crate::client::transfer_body as t;
use crate::{Api, Backend, Reply};

/// Everything the tenant holds, read with a token of every scope.
async fn view<B: Backend>(api: &Api<B>, endpoint: &str) -> Vec<Value> {
    let mut view = Vec::new();
    for path in [
        "/v1/accounts?limit=100".to_owned(),
        "/v1/accounts/alice/entries?limit=100".to_owned(),
        "/v1/events?limit=100".to_owned(),
        "/v1/webhook-endpoints?limit=100".to_owned(),
        format!("/v1/webhook-endpoints/{endpoint}"),
        format!("/v1/webhook-endpoints/{endpoint}/deliveries?limit=100"),
        "/v1/transfers/pay".to_owned(),
    ] {
        let reply = api.get(&path, "acme").await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        view.push(reply.body);
    }
    for path in ["/v1/accounts/new-account", "/v1/transfers/new-transfer", "/v1/transfers/new-chain-1"] {
        assert_eq!(api.get(path, "acme").await.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(api.get("/v1/transfer-batches/new-batch", "acme").await.status, StatusCode::NOT_FOUND);
    view
}

/// The bank statement of alice the scopes reconcile (matching nothing: its date is long past).
pub const STATEMENT: &str = "date,amount\n2026-12-01,1.00\n";

/// Its reconciliation's id.
pub fn statement_id() -> String {
    let eur = ledger::Currency::parse("EUR").expect("a currency");
    ledger_statements::parse_csv(STATEMENT, eur).expect("the sample statement").digest().to_string()
}

/// A request on `route` with ids that exist and, for a write, a body that would succeed.
fn request(method: &str, route: &str, endpoint: &str, at: &str, token: &str) -> http::Request<Body> {
    let (path, body) = match (method, route) {
        ("GET", "/v1/accounts/{id}/balance") => (format!("/v1/accounts/alice/balance?at={at}"), None),
        ("GET", "/v1/accounts/{id}/reconciliations/{reconciliation_id}") => {
            (format!("/v1/accounts/alice/reconciliations/{}", statement_id()), None)
        }
        ("GET", r) if r.starts_with("/v1/accounts/") => (r.replace("{id}", "alice"), None),
        ("GET", "/v1/transfers/{id}") => ("/v1/transfers/pay".to_owned(), None),
        ("GET", "/v1/transfer-batches/{id}") => ("/v1/transfer-batches/batch".to_owned(), None),
        ("GET", "/v1/events/{id}") => ("/v1/events/transfer.committed:pay".to_owned(), None),
        ("POST", "/v1/accounts") => (route.to_owned(), Some(json!({"id": "new-account", "currency": "EUR"}))),
        ("POST", "/v1/transfers") => (route.to_owned(), Some(t("new-transfer", "bank", "alice", 5))),
        ("POST", "/v1/linked-transfers") => (
            route.to_owned(),
            Some(json!({"transfers": [
                {"linked": true, "id": "new-chain-1", "debit_account_id": "bank", "credit_account_id": "alice", "amount": 1, "currency": "EUR"},
                t("new-chain-2", "alice", "bank", 1),
            ]})),
        ),
        ("POST", "/v1/transfer-batches") => (
            route.to_owned(),
            Some(json!({"id": "new-batch", "transfers": [t("b-new", "bank", "alice", 1)]})),
        ),
        ("POST", "/v1/webhook-endpoints") => {
            (route.to_owned(), Some(json!({"url": "http://127.0.0.1:9/new", "event_types": ["*"]})))
        }
        ("PATCH", "/v1/accounts/{id}") => {
            (route.replace("{id}", "alice"), Some(json!({"metadata": {"k": "v"}})))
        }
        ("PATCH", "/v1/transfers/{id}") => {
            (route.replace("{id}", "pay"), Some(json!({"metadata": {"k": "v"}})))
        }
        ("PATCH", _) => (route.replace("{id}", endpoint), Some(json!({"url": "http://127.0.0.1:9/patched"}))),
        // The account the write scope opened, empty: frozen, unfrozen, then closed, in table order.
        ("POST", "/v1/accounts/{id}/freeze") => {
            (route.replace("{id}", "new-account"), Some(json!({"mode": "all"})))
        }
        ("POST", "/v1/accounts/{id}/reconciliations") => {
            (route.replace("{id}", "alice"), Some(json!({"format": "csv", "statement": STATEMENT})))
        }
        ("POST", r) if r.starts_with("/v1/accounts/{id}/") => (route.replace("{id}", "new-account"), None),
        ("POST", "/v1/webhook-endpoints/{id}/deliveries") => {
            (route.replace("{id}", endpoint), Some(json!({"event_id": "transfer.committed:pay"})))
        }
        ("POST", "/v1/webhook-endpoints/{id}/replay") => {
            (route.replace("{id}", endpoint), Some(json!({"from": "2026-01-01T00:00:00Z"})))
        }
        ("POST", _) => (route.replace("{id}", endpoint), Some(json!({}))),
        _ => (route.replace("{id}", endpoint), None),
    };
    let mut builder = http::Request::builder().method(method).uri(path);
    // A patch of an account or a transfer names the version it changes (any, here).
    if method == "PATCH" && route != "/v1/webhook-endpoints/{id}" {
        builder = builder.header("if-match", "*");
    }
    builder
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("a valid request")
}

#[track_caller]
fn assert_refused(reply: &Reply, required: Scope, what: &str) {
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::FORBIDDEN, "insufficient_scope"),
        "{what}: {}",
        reply.body
    );
    assert!(reply.is_problem(), "{what}");
    assert_eq!(reply.body["scope"].as_str(), Some(required.name()), "{what}");
    let challenge = reply.headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains(&format!("scope=\"{}\"", required.name())), "{what}: {challenge}");
}

pub async fn each_scope_reaches_exactly_its_routes_and_a_refusal_writes_nothing<B: Backend>(api: Api<B>) {
    api.open_account("acme", "bank", true).await;
    api.open_account("acme", "alice", false).await;
    assert_eq!(
        api.post("/v1/transfers", "acme", t("pay", "bank", "alice", 100)).await.status,
        StatusCode::CREATED
    );
    let batch = json!({"id": "batch", "transfers": [t("b-1", "bank", "alice", 1)]});
    assert_eq!(api.post("/v1/transfer-batches", "acme", batch).await.status, StatusCode::ACCEPTED);
    api.stack.settle_queued().await.unwrap();
    let reconciled = api
        .post("/v1/accounts/alice/reconciliations", "acme", json!({"format": "csv", "statement": STATEMENT}))
        .await;
    assert_eq!(reconciled.status, StatusCode::CREATED, "{}", reconciled.body);
    let created = api
        .post(
            "/v1/webhook-endpoints",
            "acme",
            json!({"url": "http://127.0.0.1:9/acme", "event_types": ["*"]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let endpoint = created.body["id"].as_str().unwrap().to_owned();
    let paid = api.get("/v1/transfers/pay", "acme").await;
    let at = paid.body["created_at"].as_str().unwrap().to_owned();
    let routes = ledger_http::scoped_routes();
    let ttl = std::time::Duration::from_secs(600);

    // Every route a scope does not grant, with a body that would succeed: 403, nothing written.
    let before = view(&api, &endpoint).await;
    let mut refused = 0;
    for held in Scope::ALL {
        let token = api.auth.scoped_token("acme", &[held], ttl);
        for &(method, route, required) in routes.iter().filter(|r| r.2 != held) {
            let reply = api.send_request(request(method, route, &endpoint, &at, &token)).await;
            assert_refused(&reply, required, &format!("{held:?} on {method} {route}"));
            refused += 1;
        }
    }
    // A token without any ledger scope is refused everywhere.
    let token = api.auth.scoped_token("acme", &[], ttl);
    for &(method, route, required) in &routes {
        let reply = api.send_request(request(method, route, &endpoint, &at, &token)).await;
        assert_refused(&reply, required, &format!("no scope on {method} {route}"));
    }
    assert_eq!(refused, 2 * routes.len(), "each route refused to the two scopes it does not require");
    assert_eq!(view(&api, &endpoint).await, before, "a refused request wrote nothing");

    // Read only: every read route answers 200 with the resource.
    let read_only = api.auth.scoped_token("acme", &[Scope::Read], ttl);
    let mut reads = 0;
    for &(method, route, _) in routes.iter().filter(|r| r.2 == Scope::Read) {
        let reply = api.send_request(request(method, route, &endpoint, &at, &read_only)).await;
        assert_eq!(reply.status, StatusCode::OK, "read-only {method} {route}: {}", reply.body);
        reads += 1;
    }
    assert!(reads >= 12, "{reads} read routes");

    // Write and admin: each of their routes reaches its handler and does its work (the endpoint's
    // deletion last, as the other admin routes act on it).
    let mut granted: Vec<_> = routes.iter().filter(|r| r.2 != Scope::Read).collect();
    granted.sort_by_key(|r| r.0 == "DELETE");
    for held in [Scope::Write, Scope::Admin] {
        let token = api.auth.scoped_token("acme", &[held], ttl);
        for &&(method, route, _) in granted.iter().filter(|r| r.2 == held) {
            let reply = api.send_request(request(method, route, &endpoint, &at, &token)).await;
            assert!(
                reply.status.is_success(),
                "{held:?} on {method} {route}: {} {}",
                reply.status,
                reply.body
            );
        }
    }
    api.stack.settle_queued().await.unwrap();
    assert_eq!(api.get("/v1/transfers/new-transfer", "acme").await.body["status"], "committed");
    assert_eq!(api.get("/v1/transfer-batches/new-batch", "acme").await.status, StatusCode::OK);
}

/// A client-credentials token names its client, not a tenant: the API reads the client's tenant
/// from its map (`CLIENT_TENANTS`); a client it does not map is unauthorized, and a tenant claim,
/// when the token has one, is the tenant.
pub async fn a_machine_clients_token_acts_for_the_tenant_it_is_mapped_to<B: Backend>(api: Api<B>) {
    api.open_account("acme", "alice", false).await;
    api.open_account("globex", "zed", false).await;
    let tenants = [("m2m-acme".to_owned(), ledger::TenantId::parse("acme").unwrap())].into();
    let state = api.stack.state().with_client_tenants(tenants);
    let router = crate::emulated::local_router(state, api.auth.clone(), api.stack.faults());
    let ttl = std::time::Duration::from_secs(600);
    let send = |token: String, path: &'static str| {
        let router = router.clone();
        async move {
            let request = http::Request::get(path).header("authorization", format!("Bearer {token}"));
            let response =
                tower::ServiceExt::oneshot(router, request.body(Body::empty()).unwrap()).await.unwrap();
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
            (status, serde_json::from_slice::<Value>(&body).unwrap_or_default())
        }
    };
    let (status, body) = send(api.auth.client_token("m2m-acme", &[Scope::Read], ttl), "/v1/accounts").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ids: Vec<&str> = body["data"].as_array().unwrap().iter().filter_map(|a| a["id"].as_str()).collect();
    assert_eq!(ids, ["alice"], "the mapped tenant's own accounts");
    let (status, body) = send(api.auth.client_token("m2m-other", &[Scope::Read], ttl), "/v1/accounts").await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
    let (status, body) =
        send(api.auth.client_token("m2m-acme", &[Scope::Write], ttl), "/v1/accounts/alice").await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("insufficient_scope")));
    let (status, body) = send(api.auth.scoped_token("globex", &[Scope::Read], ttl), "/v1/accounts").await;
    let ids: Vec<&str> = body["data"].as_array().unwrap().iter().filter_map(|a| a["id"].as_str()).collect();
    assert_eq!((status, ids), (StatusCode::OK, vec!["zed"]));
}
