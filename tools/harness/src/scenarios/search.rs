//! Transfer search, black box: a thousand transfers of every kind with metadata among fifty
//! accounts, written by concurrent clients, linked chains and a batch; then each filter, read a few at a time
//! with a read-only token, returns exactly the transfers a reference model picks from the
//! transfers as read one by one, newest first, for its own tenant only.

use std::time::Duration;

use futures::StreamExt;
use http::StatusCode;
use ledger_http::Scope;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::client::transfer_body as t;
use crate::{Api, Backend};

const ACCOUNTS: usize = 50;
const TRANSFERS: usize = 1_000;

/// A small deterministic generator: the same ledger every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

fn account(i: u64) -> String {
    format!("a{i:02}")
}

/// The i-th request: payments (some refused), holds, posts and voids of earlier holds, reversals
/// of earlier payments, most with metadata.
fn request(i: usize, rng: &mut Lcg, holds: &mut Vec<String>, payments: &[String]) -> Value {
    let (x, y) = (rng.next(ACCOUNTS as u64), rng.next(ACCOUNTS as u64));
    let id = format!("t{i:04}");
    let mut body = match rng.next(10) {
        7 if !holds.is_empty() => {
            let hold = holds.remove(rng.next(holds.len() as u64) as usize);
            json!({"id": id, "post_pending_id": hold})
        }
        8 if !holds.is_empty() => {
            let hold = holds.remove(rng.next(holds.len() as u64) as usize);
            json!({"id": id, "void_pending_id": hold})
        }
        9 if !payments.is_empty() => {
            let reversed = &payments[rng.next(payments.len() as u64) as usize];
            json!({"id": id, "reverses_transfer_id": reversed, "amount": 1})
        }
        5 | 6 => {
            holds.push(id.clone());
            let mut hold = t(&id, &account(x), &account(y), 1 + rng.next(200));
            hold["pending"] = json!(true);
            hold
        }
        _ => t(&id, &account(x), &account(y), 1 + rng.next(400)),
    };
    if i % 4 != 0 {
        body["metadata"] = json!({"order": (i % 37).to_string(), "shop": format!("s{}", i % 3)});
    }
    body
}

fn kind_of(transfer: &Value) -> &'static str {
    if transfer["pending"] == true {
        "hold"
    } else if transfer["post_pending_id"].is_string() {
        "post"
    } else if transfer["void_pending_id"].is_string() {
        "void"
    } else if transfer["reverses_transfer_id"].is_string() {
        "reversal"
    } else {
        "payment"
    }
}

fn created(transfer: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(transfer["created_at"].as_str().unwrap(), &Rfc3339).unwrap()
}

/// The reference model of a query (its parameters as pairs): every transfer that each parameter
/// selects, newest first; `chain_of` names each chain member's chain.
fn expected(
    all: &[Value],
    chain_of: &std::collections::HashMap<String, String>,
    query: &[(&str, String)],
) -> Vec<String> {
    let mut found: Vec<&Value> = all
        .iter()
        .filter(|tr| {
            query.iter().all(|(name, value)| match *name {
                "account" => tr["debit_account_id"] == *value || tr["credit_account_id"] == *value,
                "status" => tr["status"] == *value,
                "kind" => kind_of(tr) == value,
                "chain" => chain_of.get(tr["id"].as_str().unwrap()) == Some(value),
                "from" => created(tr) >= OffsetDateTime::parse(value, &Rfc3339).unwrap(),
                "to" => created(tr) < OffsetDateTime::parse(value, &Rfc3339).unwrap(),
                meta => {
                    let key = meta.trim_start_matches("metadata[").trim_end_matches(']');
                    tr["metadata"][key] == *value
                }
            })
        })
        .collect();
    found.sort_by(|a, b| (created(b), b["id"].as_str()).cmp(&(created(a), a["id"].as_str())));
    found.iter().map(|tr| tr["id"].as_str().unwrap().to_owned()).collect()
}

/// Every page of a search, following the cursor, as ids in the order returned.
async fn search<B: Backend>(api: &Api<B>, token: &str, query: &str) -> (Vec<String>, Vec<Value>, usize) {
    let (mut ids, mut all, mut pages) = (Vec::new(), Vec::new(), 0);
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/transfers?{query}&limit=7&cursor={c}"),
            None => format!("/v1/transfers?{query}&limit=7"),
        };
        let request = http::Request::get(&path).header("authorization", format!("Bearer {token}"));
        let reply = api.send_request(request.body(axum::body::Body::empty()).unwrap()).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        pages += 1;
        let data = reply.body["data"].as_array().unwrap();
        assert!(data.len() <= 7, "{path}: a page holds at most its limit");
        ids.extend(data.iter().map(|tr| tr["id"].as_str().unwrap().to_owned()));
        all.extend(data.iter().cloned());
        match reply.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (ids, all, pages),
        }
    }
}

pub async fn every_filter_finds_exactly_what_the_model_says_across_pages<B: Backend>(api: Api<B>) {
    api.open_account("acme", "bank", true).await;
    for i in 0..ACCOUNTS as u64 {
        api.open_account("acme", &account(i), false).await;
        let fund = t(&format!("fund-{i:02}"), "bank", &account(i), 500);
        assert_eq!(api.post_definite("/v1/transfers", "acme", fund).await.0.status, StatusCode::CREATED);
    }
    // Another tenant with the same ids and metadata, in another currency.
    api.post("/v1/accounts", "globex", json!({"id": "a00", "currency": "USD", "allow_overdraft": true}))
        .await;
    api.post("/v1/accounts", "globex", json!({"id": "a01", "currency": "USD"})).await;
    let mut theirs = t("t0001", "a00", "a01", 3);
    theirs["currency"] = json!("USD");
    theirs["metadata"] = json!({"order": "1", "shop": "s1"});
    assert_eq!(api.post("/v1/transfers", "globex", theirs).await.status, StatusCode::CREATED);

    // Four waves, each sent by 8 concurrent clients: later waves post, void and reverse what the
    // earlier ones made.
    let mut rng = Lcg(20_261_206);
    let (mut holds, mut payments) = (Vec::new(), Vec::new());
    for wave in 0..4 {
        let bodies: Vec<Value> = (wave * TRANSFERS / 4..(wave + 1) * TRANSFERS / 4)
            .map(|i| request(i, &mut rng, &mut holds, &payments))
            .collect();
        let sent = futures::stream::iter(bodies.into_iter().map(|body| {
            let api = &api;
            async move {
                let (reply, _) = api.post_definite("/v1/transfers", "acme", body.clone()).await;
                assert!(
                    [StatusCode::CREATED, StatusCode::UNPROCESSABLE_ENTITY].contains(&reply.status),
                    "{body}: {} {}",
                    reply.status,
                    reply.body
                );
                (body, reply.status)
            }
        }))
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
        payments.extend(
            sent.iter()
                .filter(|(b, status)| *status == StatusCode::CREATED && kind_of(b) == "payment")
                .map(|(b, _)| b["id"].as_str().unwrap().to_owned()),
        );
    }
    // Linked chains: two commit, one is refused whole (its second member overdraws).
    let chains: [(&str, Vec<Value>); 3] = [
        ("ch1", vec![t("ch1-a", "bank", "a01", 5), t("ch1-b", "a01", "a02", 3)]),
        ("ch2", vec![t("ch2-a", "bank", "a03", 2), t("ch2-b", "a03", "a04", 1), t("ch2-c", "a04", "a05", 1)]),
        ("ch3", vec![t("ch3-a", "bank", "a06", 1), t("ch3-b", "a06", "a07", 1_000_000)]),
    ];
    for (_, members) in &chains {
        let mut members = members.clone();
        let last = members.len() - 1;
        for member in &mut members[..last] {
            member["linked"] = json!(true);
        }
        let (reply, _) =
            api.post_definite("/v1/linked-transfers", "acme", json!({"transfers": members})).await;
        assert!(
            [StatusCode::CREATED, StatusCode::UNPROCESSABLE_ENTITY].contains(&reply.status),
            "{}",
            reply.body
        );
    }
    // A batch, applied by the worker.
    let batch: Vec<Value> = (0..20).map(|i| t(&format!("b{i:02}"), "bank", &account(i % 7), 1)).collect();
    let reply = api.post("/v1/transfer-batches", "acme", json!({"id": "batch-1", "transfers": batch})).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    api.stack.settle_queued().await.unwrap();

    // The truth, read one by one.
    let mut ids: Vec<String> = (0..TRANSFERS).map(|i| format!("t{i:04}")).collect();
    ids.extend((0..ACCOUNTS).map(|i| format!("fund-{i:02}")));
    ids.extend((0..20).map(|i| format!("b{i:02}")));
    let mut chain_of = std::collections::HashMap::new();
    for (chain, members) in &chains {
        for member in members {
            let id = member["id"].as_str().unwrap().to_owned();
            chain_of.insert(id.clone(), format!("{chain}-a"));
            ids.push(id);
        }
    }
    let mut all = Vec::new();
    for id in &ids {
        let reply = api.get_definite(&format!("/v1/transfers/{id}"), "acme").await;
        assert_eq!(reply.status, StatusCode::OK, "{id}: {}", reply.body);
        all.push(reply.body);
    }
    let truth: std::collections::HashMap<&str, &Value> =
        all.iter().map(|tr| (tr["id"].as_str().unwrap(), tr)).collect();
    let count = |status: &str| all.iter().filter(|tr| tr["status"] == status).count();
    for status in ["committed", "rejected", "pending", "posted", "voided"] {
        assert!(count(status) > 0, "the ledger holds {status} transfers");
    }
    let mut instants: Vec<OffsetDateTime> = all.iter().map(created).collect();
    instants.sort();
    let (third, two_thirds) = (instants[instants.len() / 3], instants[2 * instants.len() / 3]);

    // Which payments commit, and so which reversals land, depends on how the concurrent waves
    // interleave: the account of the narrow reversal query is one a landed reversal moved.
    let reversed_account = all
        .iter()
        .find(|tr| kind_of(tr) == "reversal" && tr["status"] == "committed")
        .and_then(|tr| tr["debit_account_id"].as_str())
        .expect("a reversal landed")
        .to_owned();
    let read_only = api.auth.scoped_token("acme", &[Scope::Read], Duration::from_secs(600));
    let at = |t: OffsetDateTime| t.format(&Rfc3339).unwrap();
    let queries: Vec<Vec<(&str, String)>> = vec![
        vec![],
        vec![("account", "a03".into())],
        vec![("account", "a03".into()), ("status", "committed".into())],
        vec![("status", "rejected".into())],
        vec![("status", "pending".into())],
        vec![("status", "posted".into())],
        vec![("kind", "hold".into())],
        vec![("kind", "reversal".into()), ("account", reversed_account.clone())],
        vec![("kind", "void".into())],
        vec![("metadata[order]", "5".into())],
        vec![("metadata[order]", "5".into()), ("metadata[shop]", "s2".into())],
        vec![("metadata[shop]", "s1".into()), ("status", "rejected".into())],
        vec![("from", at(third)), ("to", at(two_thirds))],
        vec![("account", "a20".into()), ("from", at(third))],
        vec![("chain", "ch2-a".into())],
        vec![("chain", "ch3-a".into()), ("status", "rejected".into())],
        vec![("chain", "ch1-a".into()), ("account", "a02".into())],
    ];
    for query in &queries {
        let text: Vec<String> = query.iter().map(|(k, v)| format!("{k}={}", v.replace('+', "%2B"))).collect();
        let text = text.join("&");
        let (found, pages, _) = search(&api, &read_only, &text).await;
        let want = expected(&all, &chain_of, query);
        assert!(!want.is_empty(), "{text}: the model finds something");
        assert_eq!(found, want, "{text}: {} found, {} expected", found.len(), want.len());
        // Each as it reads on its own: the tenant's own transfer, as it stands.
        for tr in &pages {
            let own = truth.get(tr["id"].as_str().unwrap()).unwrap();
            assert_eq!(tr, *own, "{text}");
        }
    }
    // A batch, last submitted first, and a batch of another tenant's name finds nothing.
    let (found, _, _) = search(&api, &read_only, "batch=batch-1").await;
    let want: Vec<String> = (0..20).rev().map(|i| format!("b{i:02}")).collect();
    assert_eq!(found, want);
    let (found, _, _) = search(&api, &read_only, "batch=batch-1&status=committed&account=a03").await;
    assert_eq!(found, ["b17", "b10", "b03"]);
    // Globex finds only its own.
    let globex = api.auth.scoped_token("globex", &[Scope::Read], Duration::from_secs(600));
    for query in ["", "account=a03", "metadata[order]=1", "batch=batch-1"] {
        let (found, _, _) = search(&api, &globex, query).await;
        let want: Vec<&str> =
            if query.is_empty() || query.contains("order") { vec!["t0001"] } else { vec![] };
        assert_eq!(found, want, "globex: {query}");
    }
    // Bad filters are typed 400s naming the parameter.
    for (query, field) in [
        ("status=done", "status"),
        ("kind=transfer", "kind"),
        ("account=a%20b", "account"),
        ("acount=a03", "acount"),
        ("from=yesterday", "from"),
        ("from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z", "to"),
        ("metadata[]=x", "metadata"),
        ("cursor=nope", "cursor"),
    ] {
        let reply = api.get(&format!("/v1/transfers?{query}"), "acme").await;
        reply.assert_invalid_field(field, query);
    }
}
