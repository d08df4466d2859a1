//! The API against its own document, by a schema-driven fuzzer: schemathesis (pinned in
//! tools/python/fuzzer.txt, installed by `cargo stack test`) generates requests from openapi.yaml,
//! valid and invalid, sends them over HTTP to the local stack's router with the worker running,
//! and runs all its checks: no server error, every status, header and body as documented, valid
//! requests accepted and invalid ones refused. Its settings, and why some operations may answer
//! a schema-valid request with 400 or 422, are in schemathesis.toml beside this file.

use std::time::Duration;

use harness::{Api, paths};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_does_what_its_openapi_document_says() {
    let api = Api::new().await;
    tokio::spawn(api.stack.event_source.clone().run(api.stack.worker()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, api.router.clone()).into_future());

    let root = paths::workspace_root();
    let fuzzer = paths::fuzzer_venv().join("bin").join("schemathesis");
    assert!(
        fuzzer.exists(),
        "{} is missing: run `cargo stack setup` (or `cargo stack test`)",
        fuzzer.display()
    );
    let config = root.join("tests/emulated/tests/fuzz/schemathesis.toml");
    let workdir = paths::test_output().join("schemathesis");
    std::fs::create_dir_all(&workdir).unwrap();
    let run = tokio::process::Command::new(&fuzzer)
        .arg("--no-color")
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(root.join("openapi.yaml"))
        .args(["--url", &url, "--checks", "all"])
        .args(["--header", &format!("Authorization: Bearer {}", api.token("acme"))])
        .current_dir(&workdir)
        .kill_on_drop(true)
        .output();
    let output =
        tokio::time::timeout(Duration::from_secs(600), run).await.expect("the fuzzer ran over 10 minutes");
    let output = output.expect("the fuzzer starts");
    let report = String::from_utf8_lossy(&output.stdout);
    let summary = report.lines().skip_while(|l| !l.contains("SUMMARY")).collect::<Vec<_>>().join("\n");
    eprintln!("{summary}");
    assert!(
        output.status.success(),
        "schemathesis found failures ({}):\n{report}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    // A run that tested nothing would pass too: make sure it did not.
    let operations = ledger_http::routes().len();
    assert!(summary.contains(&format!("Tested: {operations}")), "not every operation was tested:\n{summary}");
}
