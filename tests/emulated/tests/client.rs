//! The typed client and the `ledger` CLI drive a whole scenario against the local stack as `cargo
//! stack up` serves it (over HTTP, on the emulators, worker and sweeper running): accounts, every
//! kind of transfer, a chain, a batch the worker settles, search, events, webhook endpoints, and
//! the refusals a read-only token meets.

use std::time::Duration;

use clap::Parser;
use futures::TryStreamExt;
use harness::DevAuth;
use ledger::fixtures::{hold, post, reversal, transfer};
use ledger::{AccountId, BatchId, MetadataMatch, NewAccount, StatusName, TransferId, TransferQuery};
use ledger_client::{Client, ClientError, collect};
use ledger_http::Scope;
use serde_json::Value;
use stack::local;

/// The local stack, served on a port of its own: the stack, its base URL and its token issuer.
async fn serve() -> (harness::EmulatedStack, String, DevAuth) {
    let stack = harness::fresh_stack_with_events().await;
    let auth = DevAuth::new(b"client-test".to_vec(), stack.tenant_claim.clone());
    local::start_background(&stack);
    let router = local::app(&stack, auth.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (stack, base, auth)
}

fn account(id: &str, overdraft: bool, pairs: &[(&str, &str)]) -> NewAccount {
    let mut a = ledger::fixtures::account(id, overdraft);
    a.metadata =
        ledger::Metadata::parse(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()).unwrap();
    a
}

fn id(raw: &str) -> TransferId {
    TransferId::parse(raw).unwrap()
}

/// The CLI, as a person types it; what it printed, or its error.
async fn cli(base: &str, token: &str, args: &[&str]) -> Result<String, ledger_cli::CliError> {
    let mut line = vec!["ledger", "--url", base, "--token", token];
    line.extend(args);
    let mut out = Vec::new();
    ledger_cli::run(ledger_cli::Cli::parse_from(line), &mut out).await?;
    Ok(String::from_utf8(out).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_and_the_cli_drive_a_whole_scenario_against_the_local_stack() {
    let (_stack, base, auth) = serve().await;
    let ttl = Duration::from_secs(600);
    let token = auth.token("acme", ttl);
    let client = Client::new(&base, &token).unwrap();

    // Accounts, created twice: the second is a replay.
    for a in [
        account("bank", true, &[]),
        account("alice", false, &[("segment", "retail")]),
        account("bob", false, &[]),
    ] {
        assert!(!client.create_account(&a).await.unwrap().replayed);
        assert!(client.create_account(&a).await.unwrap().replayed);
    }
    // Every kind of transfer; a rule's refusal is a typed problem.
    let mut paid = transfer("fund", "bank", "alice", 1_000);
    paid.metadata = ledger::Metadata::parse([("order".to_owned(), "42".to_owned())].into()).unwrap();
    assert_eq!(client.create_transfer(&paid).await.unwrap().value.status, StatusName::Committed);
    assert!(client.create_transfer(&paid).await.unwrap().replayed, "the same id again is a replay");
    client.create_transfer(&hold("h1", "alice", "bob", 300, None)).await.unwrap();
    let posted = client.create_transfer(&post("p1", "h1", Some(100))).await.unwrap().value;
    assert_eq!((posted.status, posted.amount.map(|a| a.get())), (StatusName::Committed, Some(100)));
    client.create_transfer(&reversal("r1", "p1", Some(40))).await.unwrap();
    let refused = client.create_transfer(&transfer("big", "alice", "bob", 1_000_000)).await.unwrap_err();
    assert_eq!(refused.code(), Some("insufficient_funds"));
    let chain = [transfer("c1", "alice", "bob", 5), transfer("c2", "bob", "alice", 2)];
    let linked = client.create_linked(&chain).await.unwrap().value;
    assert!(linked.iter().all(|t| t.status == StatusName::Committed));
    // A batch, settled by the worker.
    let batch = BatchId::parse("batch-1").unwrap();
    let members: Vec<_> = (0..5).map(|i| transfer(&format!("b{i}"), "bank", "bob", 1)).collect();
    assert_eq!(client.submit_batch(&batch, &members).await.unwrap().value.total, 5);
    let settled = loop {
        let status = client.get_batch(&batch).await.unwrap();
        if status.queued == 0 {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(settled.committed, 5);
    // The balances, as the entries say.
    let alice = AccountId::parse("alice").unwrap();
    let balance = client.get_account(&alice).await.unwrap().balance;
    assert_eq!(balance, 1_000 - 100 + 40 - 5 + 2);
    let entries = collect(client.entries(&alice)).await.unwrap();
    assert_eq!(entries.first().map(|e| e.balance_after), Some(balance));
    // Search: by account, by metadata, by batch; accounts by metadata.
    let query = |q: TransferQuery| collect(client.search_transfers(&q));
    let of_alice = query(TransferQuery { account: Some(alice.clone()), ..Default::default() }).await.unwrap();
    let ids: Vec<String> = of_alice.iter().map(|t| t.id.to_string()).collect();
    assert_eq!(ids, ["c2", "c1", "big", "r1", "p1", "h1", "fund"]);
    let order = MetadataMatch::parse([("order".to_owned(), "42".to_owned())].into()).unwrap();
    let found = query(TransferQuery { metadata: order, ..Default::default() }).await.unwrap();
    assert_eq!(found.iter().map(|t| t.id.to_string()).collect::<Vec<_>>(), ["fund"]);
    let in_batch = query(TransferQuery { batch: Some(batch.clone()), ..Default::default() }).await.unwrap();
    assert_eq!(in_batch.len(), 5);
    let retail = MetadataMatch::parse([("segment".to_owned(), "retail".to_owned())].into()).unwrap();
    let accounts = collect(client.accounts(&retail)).await.unwrap();
    assert_eq!(accounts.iter().map(|a| a.id.to_string()).collect::<Vec<_>>(), ["alice"]);
    // Events and webhook endpoints.
    let events = collect(client.events(Some("hold.posted"), None, None)).await.unwrap();
    assert_eq!(events.len(), 1);
    let endpoint = client.create_endpoint("http://127.0.0.1:9/hook", &["*"], "test").await.unwrap();
    assert!(endpoint.secret.starts_with("whsec_"));
    let rotated = client.rotate_secret(&endpoint.id).await.unwrap();
    assert_ne!(rotated.secret, endpoint.secret);
    assert_eq!(collect(client.endpoints()).await.unwrap().len(), 1);

    // The CLI: the same ledger, for people and for scripts.
    let table = cli(&base, &token, &["accounts", "get", "alice"]).await.unwrap();
    assert!(table.contains("alice") && table.contains(&balance.to_string()), "{table}");
    let made = cli(
        &base,
        &token,
        &[
            "transfers",
            "create",
            "--id",
            "cli-1",
            "--from",
            "bank",
            "--to",
            "alice",
            "--amount",
            "7",
            "--currency",
            "EUR",
            "--meta",
            "order=43",
        ],
    )
    .await
    .unwrap();
    assert!(made.contains("cli-1") && made.contains("committed"), "{made}");
    let again = cli(
        &base,
        &token,
        &[
            "transfers",
            "create",
            "--id",
            "cli-1",
            "--from",
            "bank",
            "--to",
            "alice",
            "--amount",
            "7",
            "--currency",
            "EUR",
            "--meta",
            "order=43",
        ],
    )
    .await
    .unwrap();
    assert!(again.contains("a replay"), "{again}");
    let json =
        cli(&base, &token, &["-o", "json", "transfers", "search", "--meta", "order=43"]).await.unwrap();
    let found: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(found.as_array().map(|a| a.len()), Some(1), "{json}");
    assert_eq!(found[0]["id"], "cli-1");
    let held = cli(
        &base,
        &token,
        &[
            "transfers",
            "create",
            "--id",
            "cli-h",
            "--from",
            "alice",
            "--to",
            "bob",
            "--amount",
            "3",
            "--currency",
            "EUR",
            "--hold",
        ],
    )
    .await
    .unwrap();
    assert!(held.contains("pending"), "{held}");
    assert!(
        cli(&base, &token, &["transfers", "void", "cli-h", "--id", "cli-v"])
            .await
            .unwrap()
            .contains("committed")
    );
    assert_eq!(client.get_transfer(&id("cli-h")).await.unwrap().status, StatusName::Voided);
    assert!(
        cli(&base, &token, &["transfers", "reverse", "cli-1", "--id", "cli-r"])
            .await
            .unwrap()
            .contains("cli-r")
    );
    let listed =
        cli(&base, &token, &["-o", "json", "accounts", "list", "--meta", "segment=retail"]).await.unwrap();
    assert!(listed.contains("\"alice\""), "{listed}");
    let tail = cli(
        &base,
        &token,
        &[
            "-o",
            "json",
            "events",
            "tail",
            "--since",
            "2026-01-01T00:00:00Z",
            "--count",
            "3",
            "--every",
            "100",
        ],
    )
    .await
    .unwrap();
    assert_eq!(tail.lines().count(), 3, "{tail}");
    let hooks = cli(&base, &token, &["webhooks", "list"]).await.unwrap();
    assert!(hooks.contains(endpoint.id.as_str()), "{hooks}");
    cli(&base, &token, &["webhooks", "delete", endpoint.id.as_str()]).await.unwrap();
    assert!(collect(client.endpoints()).await.unwrap().is_empty());

    // A read-only token reads, and is refused on every write, nothing written.
    let reader = auth.scoped_token("acme", &[Scope::Read], ttl);
    let refused = cli(
        &base,
        &reader,
        &[
            "transfers",
            "create",
            "--id",
            "ro-1",
            "--from",
            "bank",
            "--to",
            "alice",
            "--amount",
            "1",
            "--currency",
            "EUR",
        ],
    )
    .await;
    match refused {
        Err(ledger_cli::CliError::Api(ClientError::Problem(p))) => {
            assert_eq!(
                (p.status, p.code.as_str(), p.scope.as_deref()),
                (403, "insufficient_scope", Some("ledger:write"))
            )
        }
        other => panic!("expected a 403, got {other:?}"),
    }
    assert!(cli(&base, &reader, &["transfers", "get", "cli-1"]).await.is_ok());
    let reader_client = Client::new(&base, &reader).unwrap();
    assert_eq!(reader_client.get_transfer(&id("ro-1")).await.unwrap_err().code(), Some("not_found"));
    let all: Vec<_> = reader_client.search_transfers(&TransferQuery::default()).try_collect().await.unwrap();
    assert!(all.len() >= 15, "{}", all.len());
}
