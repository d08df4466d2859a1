//! Reconciliation with a bank statement: an account that mirrors a bank account, matched against
//! the bank's statement in CSV and camt.053; an unmatched line booked once against a suspense
//! account; a statement counts once, whatever its format and however many upload it at once.

use http::StatusCode;
use serde_json::{Value, json};

use crate::client::transfer_body as t;
use crate::{Api, Backend};

fn today() -> String {
    time::OffsetDateTime::now_utc().date().to_string()
}

/// The bank's statement of `operating`, today: what the ledger moved, a fee it never heard of.
fn csv() -> String {
    let day = today();
    format!(
        "date,amount,currency,reference,description\n{day},2500.00,EUR,fund-1,Funding\n\
         {day},-120.50,EUR,pay-1,Supplier invoice 42\n{day},-3.20,EUR,,Account fee\n\
         {day},99.99,EUR,inv-7,Customer payment\n"
    )
}

/// The same statement as camt.053 (with a pending entry, which is not a booked line).
fn camt() -> String {
    let day = today();
    let entry = |amount: &str, side: &str, status: &str, reference: Option<&str>| {
        let refs = reference
            .map(|r| {
                format!("<NtryDtls><TxDtls><Refs><EndToEndId>{r}</EndToEndId></Refs></TxDtls></NtryDtls>")
            })
            .unwrap_or_default();
        format!(
            "<Ntry><Amt Ccy=\"EUR\">{amount}</Amt><CdtDbtInd>{side}</CdtDbtInd><Sts><Cd>{status}</Cd></Sts>\
             <BookgDt><Dt>{day}</Dt></BookgDt>{refs}</Ntry>"
        )
    };
    format!(
        "<?xml version=\"1.0\"?><Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.08\">\
         <BkToCstmrStmt><Stmt><Id>S-1</Id><Acct><Ccy>EUR</Ccy></Acct>{}{}{}{}{}</Stmt></BkToCstmrStmt></Document>",
        entry("2500.00", "CRDT", "BOOK", Some("fund-1")),
        entry("120.50", "DBIT", "BOOK", Some("pay-1")),
        entry("3.20", "DBIT", "BOOK", None),
        entry("7.00", "CRDT", "PDNG", None),
        entry("99.99", "CRDT", "BOOK", Some("inv-7")),
    )
}

async fn books<B: Backend>(api: &Api<B>) {
    for id in ["operating", "customers", "suspense"] {
        api.open_account("acme", id, true).await;
    }
    let mut invoice = t("t-77", "customers", "operating", 9_999);
    invoice["metadata"] = json!({"reference": "inv-7"});
    for body in [
        t("fund-1", "customers", "operating", 250_000),
        t("pay-1", "operating", "customers", 12_050),
        invoice,
        t("extra", "operating", "customers", 500),
    ] {
        let reply = api.post("/v1/transfers", "acme", body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
}

fn lines(values: &Value) -> Vec<u64> {
    values.as_array().unwrap().iter().map(|l| l["line"].as_u64().unwrap()).collect()
}

pub async fn a_statement_in_either_format_matches_once_and_its_unmatched_line_is_booked_once<B: Backend>(
    api: Api<B>,
) {
    books(&api).await;
    let upload = json!({"format": "csv", "statement": csv(), "adjust_with": "suspense"});
    let first = api.post("/v1/accounts/operating/reconciliations", "acme", upload).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let body = &first.body;
    let matched: Vec<_> = body["matched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["line"]["line"].as_u64().unwrap(),
                m["entry"]["transfer_id"].as_str().unwrap(),
                m["by"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(matched, [(1, "fund-1", "reference"), (2, "pay-1", "reference"), (4, "t-77", "reference")]);
    assert_eq!(lines(&body["unmatched_lines"]), [3], "the fee the ledger never heard of");
    let left: Vec<_> =
        body["unmatched_entries"].as_array().unwrap().iter().map(|e| e["transfer_id"].clone()).collect();
    assert_eq!(left, [json!("extra")], "what the bank never saw");
    let adjustment = body["adjustments"][0].as_str().unwrap().to_owned();
    let booked = api.get(&format!("/v1/transfers/{adjustment}"), "acme").await;
    assert_eq!(
        (
            booked.body["status"].as_str(),
            booked.body["debit_account_id"].as_str(),
            booked.body["amount"].as_u64()
        ),
        (Some("committed"), Some("operating"), Some(320)),
        "{}",
        booked.body
    );
    assert_eq!(booked.body["credit_account_id"], "suspense");
    let balance = |reply: &crate::Reply| reply.body["balance"].as_i64();
    let operating = api.get("/v1/accounts/operating", "acme").await;
    assert_eq!(balance(&operating), Some(250_000 - 12_050 + 9_999 - 500 - 320));

    // The same statement, as camt.053: the reconciliation kept, nothing booked again.
    let again = json!({"format": "camt.053", "statement": camt(), "adjust_with": "suspense"});
    let replay = api.post("/v1/accounts/operating/reconciliations", "acme", again).await;
    assert_eq!(replay.status, StatusCode::OK, "{}", replay.body);
    assert!(replay.replayed());
    assert_eq!(replay.body, first.body);
    assert_eq!(balance(&api.get("/v1/accounts/operating", "acme").await), balance(&operating));
    let id = body["id"].as_str().unwrap();
    let read = api.get(&format!("/v1/accounts/operating/reconciliations/{id}"), "acme").await;
    assert_eq!((read.status, &read.body), (StatusCode::OK, &first.body));
    // Each entry shows its link of the account's hash chain.
    let entries = api.all_entries("acme", "operating").await;
    let links: std::collections::BTreeSet<&str> = entries.iter().filter_map(|e| e["hash"].as_str()).collect();
    assert_eq!(links.len(), entries.len(), "one distinct link per entry");
    assert!(links.iter().all(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())));
}

/// Two clients upload one new statement at once: one reconciliation, one adjustment.
pub async fn concurrent_uploads_of_one_statement_count_once<B: Backend>(api: Api<B>) {
    books(&api).await;
    let statement = format!("date,amount\n{},-7.77\n", today());
    let upload = || json!({"format": "csv", "statement": statement.clone(), "adjust_with": "suspense"});
    let (a, b) = tokio::join!(
        api.post("/v1/accounts/operating/reconciliations", "acme", upload()),
        api.post("/v1/accounts/operating/reconciliations", "acme", upload()),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CREATED], "{} / {}", a.body, b.body);
    assert_eq!(a.body, b.body);
    let suspense = api.get("/v1/accounts/suspense", "acme").await;
    assert_eq!(suspense.body["balance"].as_i64(), Some(777), "booked once");
}

pub async fn every_misuse_of_a_reconciliation_is_a_typed_4xx_and_writes_nothing<B: Backend>(api: Api<B>) {
    books(&api).await;
    let path = "/v1/accounts/operating/reconciliations";
    let day = today();
    for (body, field, reason) in [
        (json!({"format": "mt940", "statement": csv()}), "format", "must be csv or camt.053"),
        (
            json!({"format": "csv", "statement": format!("date,amount\n{day},1.00\n{day},1.005\n")}),
            "statement",
            "line 3",
        ),
        (
            json!({"format": "csv", "statement": format!("date,amount,currency\n{day},1.00,USD\n")}),
            "statement",
            "USD",
        ),
        (json!({"format": "camt.053", "statement": "<Document/>"}), "statement", "camt.053"),
        (json!({"format": "csv", "statement": csv(), "window_days": 40}), "window_days", "at most 31"),
        (
            json!({"format": "csv", "statement": csv(), "adjust_with": "operating"}),
            "adjust_with",
            "another account",
        ),
        (
            json!({"format": "csv", "statement": csv(), "adjust_with": "nobody"}),
            "adjust_with",
            "names no account",
        ),
    ] {
        let reply = api.post(path, "acme", body).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::BAD_REQUEST, "invalid_field"),
            "{}",
            reply.body
        );
        assert_eq!(reply.body["field"], field, "{}", reply.body);
        assert!(reply.body["detail"].as_str().unwrap().contains(reason), "{}", reply.body);
    }
    let unknown = api
        .post("/v1/accounts/nobody/reconciliations", "acme", json!({"format": "csv", "statement": csv()}))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let missing =
        api.get(&format!("/v1/accounts/operating/reconciliations/{}", "0".repeat(64)), "acme").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        api.get("/v1/accounts/operating/reconciliations/nope", "acme").await.status,
        StatusCode::BAD_REQUEST
    );
    let suspense = api.get("/v1/accounts/suspense", "acme").await;
    assert_eq!(suspense.body["balance"].as_i64(), Some(0), "nothing was booked");
}
