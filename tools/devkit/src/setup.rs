//! First-run installation of the emulator: a project-local venv with pinned versions.

use std::io;
use std::process::Command;

use crate::paths;

/// Which pinned requirement set to install (files under tools/python/).
#[derive(Clone, Copy, Debug)]
pub enum Requirements {
    /// moto, for the local stack and the tests.
    Emulator,
    /// SAM CLI, cfn-lint (+ serverless rules) and cargo-lambda, for CI and deployers.
    Tools,
}

impl Requirements {
    fn file(self) -> &'static str {
        match self {
            Requirements::Emulator => "emulator.txt",
            Requirements::Tools => "tools.txt",
        }
    }

    /// A module whose presence shows the set is installed.
    fn probe(self) -> &'static str {
        match self {
            Requirements::Emulator => "import moto.moto_server.werkzeug_app",
            Requirements::Tools => "import cfnlint, samcli, cfn_lint_serverless",
        }
    }
}

fn run(cmd: &mut Command) -> io::Result<()> {
    let status = cmd.status()?;
    if status.success() { Ok(()) } else { Err(io::Error::other(format!("{cmd:?} failed: {status}"))) }
}

/// Installs `set` into the project venv unless it is there already. Prints pip's progress.
pub fn ensure(set: Requirements) -> io::Result<()> {
    let python = paths::venv_python();
    let installed = python.exists()
        && Command::new(&python)
            .args(["-c", set.probe()])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
    if installed {
        return Ok(());
    }
    let venv = paths::venv();
    if !python.exists() {
        eprintln!("==> creating the project venv at {}", venv.display());
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    let dir = paths::workspace_root().join("tools").join("python");
    eprintln!("==> installing pinned {} into {} (first run only)", set.file(), venv.display());
    run(Command::new(&python)
        .args(["-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "on", "-r"])
        .arg(dir.join(set.file()))
        .arg("-c")
        .arg(dir.join("constraints.txt")))
}

/// The Debian package (pinned) that the dashboard's browser test drives headless.
const BROWSER_PACKAGE: &str = "chromium=148.0.7778.167-1~deb12u1";
const BROWSER: &str = "chromium";

/// Installs Debian's Chromium unless a `chromium` is already on PATH; returns its command name.
pub fn ensure_browser() -> io::Result<&'static str> {
    let present =
        |cmd: &str| Command::new(cmd).arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    if present(BROWSER) {
        return Ok(BROWSER);
    }
    eprintln!("==> installing {BROWSER_PACKAGE} with apt-get (first run only)");
    let apt = |args: &[&str]| {
        let root = Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false);
        let mut cmd = if root { Command::new("apt-get") } else { Command::new("sudo") };
        if !root {
            cmd.arg("apt-get");
        }
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut cmd)
    };
    let install = ["install", "-y", "--no-install-recommends", BROWSER_PACKAGE];
    // A fresh machine may have no package lists yet.
    if apt(&install).is_err() {
        apt(&["update"])?;
        apt(&install)?;
    }
    if present(BROWSER) { Ok(BROWSER) } else { Err(io::Error::other(format!("{BROWSER} did not install"))) }
}
