//! `cargo stack tenant-cost LOGS`: what each tenant cost, from the API function's JSON log lines
//! (CloudWatch Logs as exported, or the local stack's) and the cost model: each answered request
//! (`request completed`, which names its tenant, method, path, status and latency) is priced as
//! API Gateway's request, Lambda's request and its duration at the API's memory size, and the
//! DynamoDB capacity of the operation its route and status are (`capacity.rs`, typical items);
//! each transfer a request queued adds the worker's share (its capacity, its share of an
//! invocation). No metric dimension per tenant: the logs already say who did what.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::capacity::{self, Operation};
use crate::cost::Prices;

/// The API's and the worker's memory size (template.yaml), GB.
const API_GB: f64 = 0.25;
/// What one queued transfer costs the worker beside its capacity: its share of an invocation of
/// 10 messages (Lambda request and about 40 ms at 256 MB).
const WORKER_MS_PER_TRANSFER: f64 = 40.0 / 10.0;

/// One tenant's bill.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TenantCost {
    pub requests: u64,
    pub queued: u64,
    pub rcu: f64,
    pub wcu: f64,
    pub dollars: f64,
}

/// The capacity row that prices `method path` answered `status`, if one does.
fn priced_as(method: &str, route: &str, status: u16) -> Option<&'static str> {
    Some(match (method, route, status) {
        ("POST", "/v1/transfers", 201 | 200) => capacity::COMMITTED,
        ("POST", "/v1/transfers", 202) => capacity::CLAIMED,
        ("POST", "/v1/transfers", 422) => "POST /v1/transfers (rejected)",
        ("POST", "/v1/transfer-batches", 202) => capacity::BATCH_CLAIMED,
        ("POST", "/v1/accounts", 201) => capacity::ACCOUNT_CREATED,
        ("GET", "/v1/accounts/{id}", 200) => capacity::ACCOUNT_READ,
        ("GET", "/v1/accounts/{id}", 304) => capacity::ACCOUNT_NOT_MODIFIED,
        ("GET", "/v1/transfers/{id}", 200) => capacity::TRANSFER_READ,
        ("GET", "/v1/accounts/{id}/statement", 200) => capacity::STATEMENT_PAGE,
        ("GET", "/v1/transfers", 200) => capacity::SEARCH_PAGE,
        _ => return None,
    })
}

/// The route template `path` is, of the router's.
fn route_of(method: &str, path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    ledger_http::routes().into_iter().find_map(|(m, template)| {
        let parts: Vec<&str> = template.split('/').collect();
        let fits = m == method
            && parts.len() == segments.len()
            && parts.iter().zip(&segments).all(|(p, s)| p.starts_with('{') || p == s);
        fits.then_some(template)
    })
}

/// Each tenant's bill from `logs` (one JSON object a line; other lines are skipped).
pub fn bills(logs: &str, prices: &Prices) -> BTreeMap<String, TenantCost> {
    let rows: BTreeMap<&str, Operation> =
        capacity::operations(&capacity::sample_items(16, &Default::default()))
            .into_iter()
            .map(|op| (op.name, op))
            .collect();
    let per_rru = prices.dynamodb_rru_per_million / 1e6;
    let per_wru = prices.dynamodb_wru_per_million / 1e6;
    let duration = |ms: f64| ms / 1000.0 * API_GB * prices.lambda_arm64_per_gb_second;
    let invocation = prices.lambda_requests_per_million / 1e6;
    let mut bills: BTreeMap<String, TenantCost> = BTreeMap::new();
    for line in logs.lines() {
        let Ok(entry) = serde_json::from_str::<Value>(line) else { continue };
        let Some(tenant) = entry["tenant"].as_str() else { continue };
        let bill = bills.entry(tenant.to_owned()).or_default();
        match entry["message"].as_str() {
            Some("request completed") => {
                let (method, path) = (
                    entry["method"].as_str().unwrap_or_default(),
                    entry["path"].as_str().unwrap_or_default(),
                );
                let status = entry["status"].as_u64().and_then(|s| u16::try_from(s).ok()).unwrap_or_default();
                let latency = entry["latencyMs"].as_f64().unwrap_or_default();
                bill.requests += 1;
                bill.dollars += prices.api_gateway_http_per_million / 1e6 + invocation + duration(latency);
                let row = route_of(method, path)
                    .and_then(|route| priced_as(method, route, status))
                    .and_then(|name| rows.get(name));
                if let Some(op) = row {
                    bill.rcu += op.rcu;
                    bill.wcu += op.wcu as f64;
                    bill.dollars += op.rcu * per_rru + op.wcu as f64 * per_wru;
                }
            }
            Some("transfer enqueued" | "linked transfers enqueued" | "batch enqueued") => {
                let transfers = entry["transfers"].as_u64().unwrap_or(1);
                bill.queued += transfers;
                if let Some(op) = rows.get(capacity::QUEUED_COMMITTED) {
                    let n = transfers as f64;
                    bill.rcu += n * op.rcu;
                    bill.wcu += n * op.wcu as f64;
                    // A tenth of an invocation of 10 messages, and its share of the duration.
                    let worker = invocation / 10.0 + duration(WORKER_MS_PER_TRANSFER);
                    bill.dollars += n * (op.rcu * per_rru + op.wcu as f64 * per_wru + worker);
                }
            }
            _ => {}
        }
    }
    bills
}

/// The report: tenants by what they cost, most first.
pub fn report(logs: &str, prices: &Prices) -> String {
    let bills = bills(logs, prices);
    let total: f64 = bills.values().map(|b| b.dollars).sum();
    let mut ranked: Vec<(&String, &TenantCost)> = bills.iter().collect();
    ranked.sort_by(|a, b| b.1.dollars.total_cmp(&a.1.dollars));
    let mut out = String::new();
    let _ = writeln!(out, "cost per tenant (prices of {}, {}; typical items)\n", prices.region, prices.as_of);
    let _ = writeln!(
        out,
        "| tenant | requests | transfers queued | RCU | WCU | $ | share |\n|---|---|---|---|---|---|---|"
    );
    for (tenant, bill) in ranked {
        let share = if total > 0.0 { bill.dollars / total * 100.0 } else { 0.0 };
        let _ = writeln!(
            out,
            "| {tenant} | {} | {} | {:.0} | {:.0} | {:.6} | {share:.1}% |",
            bill.requests, bill.queued, bill.rcu, bill.wcu, bill.dollars
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_request_is_priced_by_its_route_and_billed_to_its_tenant() {
        let prices = Prices::load().unwrap();
        let line = |tenant: &str, method: &str, path: &str, status: u16| {
            serde_json::json!({"message": "request completed", "tenant": tenant, "method": method, "path": path, "status": status, "latencyMs": 20.0}).to_string()
        };
        let logs = [
            line("acme", "POST", "/v1/transfers", 201),
            line("acme", "POST", "/v1/transfers", 201),
            line("acme", "GET", "/v1/accounts/alice", 200),
            line("globex", "GET", "/v1/accounts/bob", 304),
            serde_json::json!({"message": "batch enqueued", "tenant": "globex", "transfers": 100})
                .to_string(),
            "not json".to_owned(),
            serde_json::json!({"message": "request completed"}).to_string(),
        ]
        .join("\n");
        let bills = bills(&logs, &prices);
        assert_eq!(bills.len(), 2);
        let rows: BTreeMap<&str, Operation> =
            capacity::operations(&capacity::sample_items(16, &Default::default()))
                .into_iter()
                .map(|op| (op.name, op))
                .collect();
        let (acme, globex) = (&bills["acme"], &bills["globex"]);
        assert_eq!((acme.requests, acme.queued, globex.requests, globex.queued), (3, 0, 1, 100));
        let committed = &rows[capacity::COMMITTED];
        assert_eq!(acme.wcu, 2.0 * committed.wcu as f64 + rows[capacity::ACCOUNT_READ].wcu as f64);
        let queued = 100.0 * rows[capacity::QUEUED_COMMITTED].wcu as f64;
        assert_eq!(globex.wcu, queued + rows[capacity::ACCOUNT_NOT_MODIFIED].wcu as f64);
        assert!(globex.dollars > acme.dollars, "a hundred transfers queued cost more than three requests");
        assert!(report(&logs, &prices).contains("| globex | 1 | 100 |"));
    }
}
