//! The local dashboard in a real browser: Debian's Chromium, headless, loads the page served by the
//! local stack while the load generator runs, sees every chart render and the numbers move, and
//! saves a screenshot under target/ (`cargo stack screenshot` refreshes the README's one).

use std::path::Path;
use std::time::Duration;

use harness::{DevAuth, install, paths};
use stack::browser;
use stack::load::{self, LoadPlan, Spike};
use stack::{dashboard, local};

const SIGNALS: [&str; 7] = [
    "committed_per_s",
    "rejected_per_s",
    "errors_per_s",
    "latency_p50_ms",
    "latency_p99_ms",
    "queue_depth",
    "dlq_depth",
];

async fn chromium(browser: &str, url: &str, action: &str) -> String {
    browser::chromium(browser, url, action).await.expect("chromium runs")
}

/// The opening tags `<{tag} …>` of the DOM whose attributes name `signal`.
fn tag<'a>(dom: &'a str, name: &str, signal: &str) -> &'a str {
    let wanted = format!("data-signal=\"{signal}\"");
    dom.match_indices(&format!("<{name} "))
        .map(|(at, _)| &dom[at..at + dom[at..].find('>').unwrap()])
        .find(|t| t.contains(&wanted))
        .unwrap_or_else(|| panic!("no <{name}> for {signal}"))
}

fn attr<'a>(tag: &'a str, name: &str) -> &'a str {
    let start = tag
        .find(&format!("{name}=\""))
        .map(|i| i + name.len() + 2)
        .unwrap_or_else(|| panic!("{name} in {tag}"));
    &tag[start..start + tag[start..].find('"').unwrap()]
}

/// The signal's chart line (its `points`) and its displayed value.
fn chart(dom: &str, signal: &str) -> (usize, String, String) {
    let svg = tag(dom, "svg", signal);
    let points: usize = attr(svg, "data-points").parse().unwrap();
    let after = &dom[dom.find(svg).unwrap()..];
    let line = &after[after.find("<polyline").unwrap()..];
    let line = attr(&line[..line.find('>').unwrap()], "points").to_owned();
    let value = tag(dom, "span", signal);
    let text_start = dom.find(value).unwrap() + value.len() + 1;
    let text = dom[text_start..text_start + dom[text_start..].find('<').unwrap()].to_owned();
    (points, line, text)
}

fn updates(dom: &str) -> u64 {
    attr(tag_body(dom), "data-updates").parse().unwrap()
}

fn tag_body(dom: &str) -> &str {
    let at = dom.find("<body").unwrap();
    &dom[at..at + dom[at..].find('>').unwrap()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_renders_in_chromium_and_moves_under_load() {
    let browser = install::ensure_browser().expect("Chromium installs");
    dashboard::dashboard();
    let stack = harness::fresh_stack().await;
    let auth = DevAuth::new(b"dashboard-test".to_vec(), stack.tenant_claim.clone());
    local::start_background(&stack);
    let router = local::app(&stack, auth.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let plan = LoadPlan {
        base_url: base.clone(),
        token: auth.token("acme", Duration::from_secs(600)),
        rate: 12.0,
        duration: Duration::from_secs(30),
        accounts: 10,
        skew: 1.1,
        error_mix: 0.1,
        async_share: 0.5,
        spike: Some(Spike { at: Duration::from_secs(15), lasts: Duration::from_secs(5), factor: 3.0 }),
        concurrency: 64,
        progress: false,
    };
    let load = tokio::spawn(load::run(plan));
    let page = format!("{base}/dashboard");

    // The page renders every chart once its data arrived; then, under load, the lines and the
    // numbers move. Each is waited for (as long as the load runs), not assumed after a sleep.
    let drawn = |dom: &str| updates(dom) >= 1 && SIGNALS.iter().all(|signal| chart(dom, signal).0 > 0);
    let first = loop {
        let dom = chromium(browser, &page, "--dump-dom").await;
        if drawn(&dom) || load.is_finished() {
            break dom;
        }
    };
    assert!(updates(&first) >= 1, "the page fetched its data: {}", tag_body(&first));
    for signal in SIGNALS {
        let (points, line, _) = chart(&first, signal);
        assert!(points > 0 && !line.is_empty(), "{signal} has a drawn line ({points} points)");
    }
    let values = |dom: &str| SIGNALS.map(|s| chart(dom, s).2);
    let committed = |dom: &str| chart(dom, "committed_per_s").1;
    let heights = |line: &str| {
        line.split(' ')
            .filter_map(|p| p.split(',').nth(1))
            .map(str::to_owned)
            .collect::<std::collections::BTreeSet<_>>()
    };
    let moved = |dom: &str| {
        committed(dom) != committed(&first)
            && heights(&committed(dom)).len() > 1
            && values(dom) != values(&first)
    };
    let second = loop {
        let dom = chromium(browser, &page, "--dump-dom").await;
        if moved(&dom) || load.is_finished() {
            break dom;
        }
    };
    assert_ne!(committed(&first), committed(&second), "the committed chart moved between two loads");
    assert!(heights(&committed(&second)).len() > 1, "transfers were committed: the line is not flat");
    assert_ne!(values(&first), values(&second), "the numbers moved");

    std::fs::create_dir_all(paths::test_output()).unwrap();
    let screenshot = paths::test_output().join("dashboard.png");
    chromium(browser, &page, &format!("--screenshot={}", screenshot.display())).await;
    assert!(Path::new(&screenshot).metadata().unwrap().len() > 10_000, "a real screenshot");

    let summary = load.await.unwrap().expect("the load ran");
    println!("{}", summary.render());
    assert!(summary.statuses.get(&201).copied().unwrap_or(0) > 0, "{}", summary.render());
}
