//! Debian's Chromium, headless, on a page of the local stack: the dashboard's browser test and the
//! command that refreshes the README's screenshot both drive it here.

use std::io;
use std::time::Duration;

/// Runs headless Chromium on `url` with `action` (`--dump-dom` or `--screenshot=…`); returns stdout.
pub async fn chromium(browser: &str, url: &str, action: &str) -> io::Result<String> {
    let profile = std::env::temp_dir().join(format!("ledger-chromium-{}", std::process::id()));
    let run = tokio::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-extensions",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            "--window-size=1280,1000",
            // Let the page fetch and redraw a few times (it polls every second) before the action.
            "--virtual-time-budget=4000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(action)
        .arg(url)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .map_err(|_| io::Error::other("chromium did not finish within 90 s"))??;
    if !out.status.success() {
        return Err(io::Error::other(format!("chromium failed: {}", String::from_utf8_lossy(&out.stderr))));
    }
    String::from_utf8(out.stdout).map_err(io::Error::other)
}
