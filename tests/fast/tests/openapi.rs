//! Keeps openapi.yaml in step with the router: the same routes, the same problem codes, and every
//! documented operation answered by a real route.

use std::collections::BTreeSet;

use harness::Api;
use serde_norway::Value;

fn document() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi.yaml");
    serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options", "trace"];

fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_mapping().unwrap() {
        for method in METHODS {
            if !item[*method].is_null() {
                ops.insert((method.to_uppercase(), path.as_str().unwrap().to_owned()));
            }
        }
    }
    ops
}

#[test]
fn the_document_is_openapi_3_1_with_exactly_the_routers_routes() {
    let doc = document();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
    let routes: BTreeSet<_> =
        ledger_http::routes().iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(operations(&doc), routes);
}

#[test]
fn the_problem_codes_are_exactly_those_the_code_emits() {
    let doc = document();
    let documented: BTreeSet<String> = doc["components"]["schemas"]["Problem"]["properties"]["code"]["enum"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let emitted: BTreeSet<String> = ledger_http::problem_codes().map(|c| c.to_string()).collect();
    assert_eq!(documented, emitted);
}

#[tokio::test]
async fn every_documented_operation_reaches_a_handler() {
    let api = Api::memory();
    for (method, path) in operations(&document()) {
        let concrete = path.replace("{id}", "some-id");
        let body = if method == "POST" { "{}" } else { "" };
        let reply = api.raw(&method, &concrete, Some("acme"), body).await;
        assert!(
            !matches!(reply.code(), "route_not_found" | "method_not_allowed"),
            "{method} {path} is documented but not routed"
        );
    }
}

/// Each operation's `security` names the one scope the route table requires of it.
#[test]
fn each_operation_requires_the_route_tables_scope() {
    let doc = document();
    let documented: BTreeSet<(String, String, String)> = operations(&doc)
        .into_iter()
        .map(|(method, path)| {
            let op = &doc["paths"][path.as_str()][method.to_lowercase().as_str()];
            let scopes = op["security"][0]["bearerAuth"].as_sequence().expect("security per operation");
            assert_eq!(scopes.len(), 1, "{method} {path}");
            let scope = scopes[0].as_str().unwrap().to_owned();
            (method, path, scope)
        })
        .collect();
    let table: BTreeSet<(String, String, String)> = ledger_http::scoped_routes()
        .into_iter()
        .map(|(m, p, scope)| (m.to_owned(), p.to_owned(), scope.name().to_owned()))
        .collect();
    assert_eq!(documented, table);
}
