//! An account's past through the router: balances as of an instant and statements between two,
//! checked against what was read at those instants; entries in time order as in sequence order even
//! under concurrent writers; every misuse (an instant in the future, before the account was opened,
//! malformed, a cursor of another statement) a typed 4xx.

use crate::client::transfer_body as t;
use crate::{Api, Backend};
use http::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn instant(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap()
}

/// Now, after a pause, so that what happens next takes effect strictly later.
async fn mark() -> OffsetDateTime {
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let at = OffsetDateTime::now_utc();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    at
}

fn totals(body: &Value) -> (i64, i64, i64, u64) {
    let n = |k: &str| body[k].as_i64().unwrap_or_else(|| panic!("{k} in {body}"));
    (n("balance"), n("available"), n("debits_pending"), body["entry_count"].as_u64().unwrap())
}

async fn at<B: Backend>(api: &Api<B>, account: &str, when: OffsetDateTime) -> Value {
    let reply = api.get(&format!("/v1/accounts/{account}/balance?at={}", instant(when)), "acme").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

pub async fn balances_as_of_past_instants_and_statements_between_them<B: Backend>(api: Api<B>) {
    api.open_account("acme", "bank", true).await;
    api.open_account("acme", "alice", false).await;
    let opened = mark().await;
    let post = |body: Value| api.post("/v1/transfers", "acme", body);
    assert_eq!(post(t("fund", "bank", "alice", 1000)).await.status, StatusCode::CREATED);
    let funded = mark().await;
    let hold = serde_json::to_value(ledger::fixtures::hold("h", "alice", "bank", 300, None)).unwrap();
    assert_eq!(post(hold).await.status, StatusCode::CREATED);
    let held = mark().await;
    let capture = serde_json::to_value(ledger::fixtures::post("p", "h", Some(200))).unwrap();
    assert_eq!(post(capture).await.status, StatusCode::CREATED);
    let reversal = serde_json::to_value(ledger::fixtures::reversal("r", "p", Some(50))).unwrap();
    assert_eq!(post(reversal).await.status, StatusCode::CREATED);
    let last = mark().await;

    assert_eq!(totals(&at(&api, "alice", opened).await), (0, 0, 0, 0));
    assert_eq!(totals(&at(&api, "alice", funded).await), (1000, 1000, 0, 1));
    assert_eq!(totals(&at(&api, "alice", held).await), (1000, 700, 300, 2));
    assert_eq!(totals(&at(&api, "alice", last).await), (850, 850, 0, 4));
    let now = api.get("/v1/accounts/alice", "acme").await.body;
    assert_eq!(now["balance"], 850);

    // The whole statement, then the same in pages of 1: the same entries, oldest first, each page
    // with the opening balance and the last with the closing one.
    let path = format!("/v1/accounts/alice/statement?from={}&to={}", instant(funded), instant(last));
    let whole = api.get(&path, "acme").await.body;
    assert_eq!(totals(&whole["opening_balance"]), (1000, 1000, 0, 1));
    assert_eq!(totals(&whole["closing_balance"]), (850, 850, 0, 4));
    let sequences: Vec<u64> =
        whole["entries"].as_array().unwrap().iter().map(|e| e["sequence"].as_u64().unwrap()).collect();
    assert_eq!(sequences, [2, 3, 4]);
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page_path = match &cursor {
            Some(c) => format!("{path}&limit=1&cursor={c}"),
            None => format!("{path}&limit=1"),
        };
        let page = api.get(&page_path, "acme").await.body;
        assert_eq!(page["opening_balance"], whole["opening_balance"], "{page}");
        paged.extend(page["entries"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => {
                assert!(page["closing_balance"].is_null(), "{page}");
                cursor = Some(next.to_owned());
            }
            None => {
                assert_eq!(page["closing_balance"], whole["closing_balance"]);
                break;
            }
        }
    }
    assert_eq!(&paged, whole["entries"].as_array().unwrap());
    // Without `to`: up to now. An interval without entries opens and closes alike.
    let to_now =
        api.get(&format!("/v1/accounts/alice/statement?from={}", instant(opened)), "acme").await.body;
    assert_eq!((to_now["entries"].as_array().unwrap().len(), totals(&to_now["closing_balance"]).0), (4, 850));
    let quiet = format!("/v1/accounts/bank/statement?from={}&to={}", instant(last), instant(mark().await));
    let quiet = api.get(&quiet, "acme").await.body;
    assert_eq!(
        (quiet["entries"].as_array().unwrap().len(), &quiet["opening_balance"]),
        (0, &quiet["closing_balance"])
    );
    // Without `to`, later pages end where the first did; a cursor of the entries list is refused.
    let since = format!("/v1/accounts/alice/statement?from={}&limit=1", instant(opened));
    let first_page = api.get(&since, "acme").await.body;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let second_page = api
        .get(&format!("{since}&cursor={}", first_page["next_cursor"].as_str().unwrap()), "acme")
        .await
        .body;
    assert_eq!(
        (&second_page["to"], second_page["entries"][0]["sequence"].as_u64()),
        (&first_page["to"], Some(2))
    );
    let list = api.get("/v1/accounts/alice/entries?limit=1", "acme").await.body;
    let crossed = api.get(&format!("{since}&cursor={}", list["next_cursor"].as_str().unwrap()), "acme").await;
    assert_eq!((crossed.status, crossed.body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("cursor")));
    // A statement from before the account was opened opens at zero.
    let early = format!("/v1/accounts/alice/statement?from=2020-01-01T00:00:00Z&to={}", instant(funded));
    let early = api.get(&early, "acme").await.body;
    assert_eq!((totals(&early["opening_balance"]).0, totals(&early["closing_balance"]).0), (0, 1000));
    // A cursor of this statement is refused by another one.
    let first = api.get(&format!("{path}&limit=1"), "acme").await.body;
    let elsewhere = format!(
        "/v1/accounts/alice/statement?from={}&to={}&cursor={}",
        instant(held),
        instant(last),
        first["next_cursor"].as_str().unwrap()
    );
    let refused = api.get(&elsewhere, "acme").await;
    assert_eq!((refused.status, refused.body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("cursor")));
}

pub async fn concurrent_writers_leave_each_history_in_time_order_and_every_instant_reads_its_entry<
    B: Backend,
>(
    api: Api<B>,
) {
    api.open_account("acme", "bank", true).await;
    for i in 0..4 {
        api.open_account("acme", &format!("a{i}"), false).await;
    }
    let sends = (0..60).map(|i| {
        api.post_definite("/v1/transfers", "acme", t(&format!("t{i}"), "bank", &format!("a{}", i % 4), 1))
    });
    for (reply, _) in futures::future::join_all(sends).await {
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
    let mut entries = api.all_entries("acme", "bank").await;
    entries.reverse();
    assert_eq!(entries.len(), 60);
    let parse = |e: &Value| OffsetDateTime::parse(e["created_at"].as_str().unwrap(), &Rfc3339).unwrap();
    for pair in entries.windows(2) {
        assert!(parse(&pair[0]) <= parse(&pair[1]), "{} after {}", pair[0], pair[1]);
    }
    // As of each entry's instant: that entry, or a later one of the same instant.
    for entry in entries.iter().step_by(7) {
        let body = at(&api, "bank", parse(entry)).await;
        let count = body["entry_count"].as_u64().unwrap();
        let last_then = entries
            .iter()
            .filter(|e| parse(e) == parse(entry))
            .map(|e| e["sequence"].as_u64().unwrap())
            .max();
        assert_eq!(Some(count), last_then, "{entry}");
        assert_eq!(body["balance"].as_i64(), Some(-(count as i64)));
    }
}

pub async fn every_misuse_of_the_history_is_a_typed_4xx<B: Backend>(api: Api<B>) {
    let before = OffsetDateTime::now_utc() - time::Duration::seconds(5);
    api.open_account("acme", "alice", false).await;
    let future = OffsetDateTime::now_utc() + time::Duration::hours(1);
    for (path, field) in [
        (format!("/v1/accounts/alice/balance?at={}", instant(future)), "at"),
        (format!("/v1/accounts/alice/balance?at={}", instant(before)), "at"),
        ("/v1/accounts/alice/balance?at=yesterday".to_owned(), "at"),
        ("/v1/accounts/alice/balance".to_owned(), "at"),
        ("/v1/accounts/alice/statement?from=soon".to_owned(), "from"),
        (
            format!(
                "/v1/accounts/alice/statement?from={}&to={}",
                instant(OffsetDateTime::now_utc()),
                instant(future)
            ),
            "to",
        ),
        (
            format!(
                "/v1/accounts/alice/statement?from={}&to={}",
                instant(OffsetDateTime::now_utc()),
                instant(OffsetDateTime::now_utc() - time::Duration::seconds(1))
            ),
            "from",
        ),
        (
            format!("/v1/accounts/alice/statement?from={}&cursor=bm9wZQ", instant(OffsetDateTime::now_utc())),
            "cursor",
        ),
    ] {
        api.get(&path, "acme").await.assert_invalid_field(field, &path);
    }
    let missing = api
        .get(&format!("/v1/accounts/ghost/balance?at={}", instant(OffsetDateTime::now_utc())), "acme")
        .await;
    assert_eq!((missing.status, missing.code()), (StatusCode::NOT_FOUND, "not_found"));
    // Another tenant's account is not found either.
    let other = api
        .get(&format!("/v1/accounts/alice/balance?at={}", instant(OffsetDateTime::now_utc())), "globex")
        .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert_eq!(
        json!(null),
        api.get("/v1/accounts/alice/balance?at=2026-01-01T00:00:00Z", "acme").await.body["balance"]
    );
}

/// A migration: accounts opened a year ago and a year of transfers imported with their past
/// instants (`effective_at`), each account's history in time order (a transfer before an
/// account's latest entry, or in the future, is refused), on the sync route and in batches; then
/// the ledger goes live. Every month's statement shows exactly that month's imported entries,
/// opening and closing at the balances the history gives.
pub async fn a_year_of_imported_history_reads_back_month_by_month<B: Backend>(api: Api<B>) {
    let now = OffsetDateTime::now_utc();
    let start = now - time::Duration::days(366);
    let month = |m: i64| start + time::Duration::days(30 * m);
    for (id, overdraft) in [("bank", true), ("alice", false), ("bob", false)] {
        let body = json!({"id": id, "currency": "EUR", "allow_overdraft": overdraft, "effective_at": instant(start)});
        let opened = api.post("/v1/accounts", "acme", body).await;
        assert_eq!(
            (opened.status, opened.body["created_at"].as_str()),
            (StatusCode::CREATED, Some(instant(start).as_str()))
        );
    }
    let future =
        json!({"id": "later", "currency": "EUR", "effective_at": instant(now + time::Duration::hours(1))});
    api.post("/v1/accounts", "acme", future).await.assert_invalid_field("effective_at", "future");
    let imported = |id: String, debit: &str, credit: &str, amount: u64, at: OffsetDateTime| {
        let mut body = t(&id, debit, credit, amount);
        body["effective_at"] = json!(instant(at));
        body
    };
    // Each month: a salary in on the 2nd day, the rent out on the 5th; even months one by one,
    // odd months as one batch.
    let mut expected_at_month = vec![(0i64, 0i64)];
    let (mut alice, mut bob) = (0i64, 0i64);
    for m in 0..12 {
        let salary = 3_000 + m as u64;
        let transfers = [
            imported(format!("salary-{m}"), "bank", "alice", salary, month(m) + time::Duration::days(2)),
            imported(format!("rent-{m}"), "alice", "bob", 1_000, month(m) + time::Duration::days(5)),
        ];
        if m % 2 == 0 {
            for body in transfers {
                let reply = api.post("/v1/transfers", "acme", body.clone()).await;
                assert_eq!(reply.status, StatusCode::CREATED, "{body}: {}", reply.body);
                assert_eq!(reply.body["effective_at"], body["effective_at"]);
            }
        } else {
            let batch = json!({"id": format!("import-{m}"), "transfers": transfers});
            assert_eq!(api.post("/v1/transfer-batches", "acme", batch).await.status, StatusCode::ACCEPTED);
            api.stack.settle_queued().await.unwrap();
        }
        alice += salary as i64 - 1_000;
        bob += 1_000;
        expected_at_month.push((alice, bob));
    }
    // Out of order: before alice's latest entry, or before bob's opening, or in the future.
    let late = api.post("/v1/transfers", "acme", imported("late".into(), "alice", "bob", 1, month(3))).await;
    assert_eq!(
        (late.code(), late.body["account_id"].as_str()),
        ("effective_at_before_latest_entry", Some("alice"))
    );
    let before = imported("before".into(), "bank", "bob", 1, start - time::Duration::days(1));
    assert_eq!(api.post("/v1/transfers", "acme", before).await.code(), "effective_at_before_latest_entry");
    let ahead = imported("ahead".into(), "bank", "alice", 1, now + time::Duration::hours(1));
    assert_eq!(api.post("/v1/transfers", "acme", ahead).await.code(), "effective_at_in_future");

    // Month by month: the statement opens and closes at the history's balances, with that month's
    // two entries, at their imported instants.
    for m in 0..12usize {
        let (from, to) = (month(m as i64), month(m as i64 + 1));
        let path =
            format!("/v1/accounts/alice/statement?from={}&to={}&limit=100", instant(from), instant(to));
        let statement = api.get(&path, "acme").await;
        assert_eq!(statement.status, StatusCode::OK, "{}", statement.body);
        let body = &statement.body;
        assert_eq!(body["opening_balance"]["balance"].as_i64(), Some(expected_at_month[m].0), "month {m}");
        assert_eq!(
            body["closing_balance"]["balance"].as_i64(),
            Some(expected_at_month[m + 1].0),
            "month {m}"
        );
        let entries: Vec<(String, String)> = body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (e["transfer_id"].as_str().unwrap().to_owned(), e["created_at"].as_str().unwrap().to_owned())
            })
            .collect();
        let when = |days| instant(month(m as i64) + time::Duration::days(days));
        assert_eq!(entries, [(format!("salary-{m}"), when(2)), (format!("rent-{m}"), when(5))], "month {m}");
        let bob_then = at(&api, "bob", to).await;
        assert_eq!(bob_then["balance"].as_i64(), Some(expected_at_month[m + 1].1), "bob after month {m}");
    }
    // Live: a transfer now lands after the whole imported past.
    assert_eq!(
        api.post("/v1/transfers", "acme", t("live", "alice", "bob", 1)).await.status,
        StatusCode::CREATED
    );
    let entries = api.all_entries("acme", "alice").await;
    assert_eq!((entries.len(), entries[0]["transfer_id"].as_str()), (25, Some("live")));
    assert_eq!(api.balance("acme", "alice").await, alice - 1);
}
