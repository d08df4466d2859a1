//! Conditional GETs through the router: every GET answer carries an `ETag`; asking again with
//! `If-None-Match` gets `304` without a body while nothing changed, and `200` with a new tag once
//! something did. (That an account revalidates with one small GetItem is DynamoDB's: counted at
//! the fault proxy in `tests/emulated`.)

use crate::client::transfer_body as t;
use crate::{Api, Backend};
use http::StatusCode;

pub async fn get_if_none_match<B: Backend>(api: &Api<B>, path: &str, tag: &str) -> crate::Reply {
    get_if_none_match_as(api, "acme", path, tag).await
}

/// `GET {path}` as `tenant` with `If-None-Match: {tag}`.
pub async fn get_if_none_match_as<B: Backend>(
    api: &Api<B>,
    tenant: &str,
    path: &str,
    tag: &str,
) -> crate::Reply {
    let request = http::Request::get(path)
        .header("authorization", format!("Bearer {}", api.token(tenant)))
        .header("if-none-match", tag)
        .body(axum::body::Body::empty())
        .unwrap();
    api.send_request(request).await
}

pub fn tag(reply: &crate::Reply) -> String {
    reply
        .headers
        .get("etag")
        .unwrap_or_else(|| panic!("no ETag: {}", reply.body))
        .to_str()
        .unwrap()
        .to_owned()
}

pub async fn every_get_is_tagged_and_answered_304_while_unchanged<B: Backend>(api: Api<B>) {
    api.open_account("acme", "bank", true).await;
    api.open_account("acme", "alice", false).await;
    assert_eq!(
        api.post("/v1/transfers", "acme", t("t1", "bank", "alice", 100)).await.status,
        StatusCode::CREATED
    );
    let now = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap();
    for path in [
        "/v1/accounts/alice".to_owned(),
        "/v1/accounts".to_owned(),
        "/v1/accounts/alice/entries".to_owned(),
        "/v1/transfers/t1".to_owned(),
        format!("/v1/accounts/alice/balance?at={now}"),
        format!("/v1/accounts/alice/statement?to={now}"),
    ] {
        let first = api.get(&path, "acme").await;
        assert_eq!(first.status, StatusCode::OK, "{path}: {}", first.body);
        assert_eq!(first.headers.get("cache-control").unwrap(), "private, no-cache", "{path}");
        let again = get_if_none_match(&api, &path, &tag(&first)).await;
        assert_eq!(
            (again.status, &again.body, tag(&again)),
            (StatusCode::NOT_MODIFIED, &serde_json::Value::Null, tag(&first)),
            "{path}"
        );
        let stale = get_if_none_match(&api, &path, "\"stale\"").await;
        assert_eq!(stale.status, StatusCode::OK, "{path}");
    }

    let account = api.get("/v1/accounts/alice", "acme").await;
    let unchanged = get_if_none_match(&api, "/v1/accounts/alice", &tag(&account)).await;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);
    // Once it moves, the same tag gets the new account and a new tag.
    assert_eq!(
        api.post("/v1/transfers", "acme", t("t2", "bank", "alice", 5)).await.status,
        StatusCode::CREATED
    );
    let moved = get_if_none_match(&api, "/v1/accounts/alice", &tag(&account)).await;
    assert_eq!((moved.status, moved.body["balance"].as_i64()), (StatusCode::OK, Some(105)));
    assert_ne!(tag(&moved), tag(&account));

    // A transfer that gains a reversal gets a new tag.
    let transfer = api.get("/v1/transfers/t1", "acme").await;
    let reversal = serde_json::to_value(ledger::fixtures::reversal("r1", "t1", Some(10))).unwrap();
    assert_eq!(api.post("/v1/transfers", "acme", reversal).await.status, StatusCode::CREATED);
    let reversed = get_if_none_match(&api, "/v1/transfers/t1", &tag(&transfer)).await;
    assert_eq!((reversed.status, reversed.body["reversed_amount"].as_i64()), (StatusCode::OK, Some(10)));
    // Errors and writes are not tagged.
    assert!(api.get("/v1/transfers/ghost", "acme").await.headers.get("etag").is_none());
    assert!(
        api.post("/v1/transfers", "acme", t("t3", "bank", "alice", 1)).await.headers.get("etag").is_none()
    );
}

/// Two tenants with the same accounts, moved the same way (so at the same versions): still, no tag
/// of one tenant's resource is valid for the other's (no `304` on it, a `412` for an `If-Match`
/// naming it), and every tagged answer varies on `Authorization`.
pub async fn a_tag_is_its_tenants_own<B: Backend>(api: Api<B>) {
    for tenant in ["acme", "globex"] {
        api.open_account(tenant, "bank", true).await;
        api.open_account(tenant, "alice", false).await;
        let transfer = t("t1", "bank", "alice", 100);
        assert_eq!(api.post("/v1/transfers", tenant, transfer).await.status, StatusCode::CREATED);
    }
    for path in ["/v1/accounts/alice", "/v1/accounts", "/v1/accounts/alice/entries", "/v1/transfers/t1"] {
        let (acme, globex) = (api.get(path, "acme").await, api.get(path, "globex").await);
        assert_eq!((acme.status, globex.status), (StatusCode::OK, StatusCode::OK), "{path}");
        assert_ne!(tag(&acme), tag(&globex), "{path}");
        assert_eq!(acme.headers.get("vary").unwrap(), "Authorization", "{path}");
        let foreign = get_if_none_match_as(&api, "globex", path, &tag(&acme)).await;
        assert_eq!((foreign.status, &foreign.body), (StatusCode::OK, &globex.body), "{path}");
        assert_eq!(tag(&foreign), tag(&globex), "{path}");
        let own = get_if_none_match_as(&api, "globex", path, &tag(&globex)).await;
        assert_eq!(own.status, StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(own.headers.get("vary").unwrap(), "Authorization", "{path}");
    }
    // A change under acme's tag of the account globex names the same way: the precondition fails.
    let acme_tag = tag(&api.get("/v1/accounts/alice", "acme").await);
    let request = http::Request::patch("/v1/accounts/alice")
        .header("authorization", format!("Bearer {}", api.token("globex")))
        .header("content-type", "application/merge-patch+json")
        .header("if-match", &acme_tag)
        .body(axum::body::Body::from(r#"{"metadata":{"k":"v"}}"#))
        .unwrap();
    let refused = api.send_request(request).await;
    assert_eq!(refused.status, StatusCode::PRECONDITION_FAILED, "{}", refused.body);
    let transfer = api.get("/v1/transfers/t1", "acme").await;
    let request = http::Request::patch("/v1/transfers/t1")
        .header("authorization", format!("Bearer {}", api.token("globex")))
        .header("content-type", "application/merge-patch+json")
        .header("if-match", tag(&transfer))
        .body(axum::body::Body::from(r#"{"metadata":{"k":"v"}}"#))
        .unwrap();
    let refused = api.send_request(request).await;
    assert_eq!(refused.status, StatusCode::PRECONDITION_FAILED, "{}", refused.body);
}
