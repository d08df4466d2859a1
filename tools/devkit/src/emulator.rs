//! The local DynamoDB/SQS emulator as a child process on a loopback port.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::timeout::TimeoutConfig;
use aws_config::{Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

use crate::paths;

const LAUNCHER: &str = include_str!("emulator.py");

/// A running emulator. Dropping it stops the process; if the owner dies without dropping it, the
/// emulator notices and exits by itself.
pub struct Emulator {
    child: Child,
    port: u16,
}

impl Emulator {
    /// Starts the emulator on `port` (0 picks a free one) and waits until it answers.
    pub fn start(port: u16) -> io::Result<Emulator> {
        let python = paths::venv_python();
        if !python.exists() {
            return Err(io::Error::other(format!(
                "{} is missing: run `cargo stack test` or `cargo stack up` once to install the emulator",
                python.display()
            )));
        }
        let port = if port == 0 { free_port()? } else { port };
        let launcher = write_launcher()?;
        let child = Command::new(python)
            .arg(launcher)
            .args(["127.0.0.1", &port.to_string(), &std::process::id().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()?;
        let mut emulator = Emulator { child, port };
        emulator.wait_ready(Duration::from_secs(30))?;
        Ok(emulator)
    }

    /// One emulator per process, started on first use: what a test binary shares between its tests
    /// (each test isolates itself in tables of its own).
    pub fn shared() -> &'static Emulator {
        static SHARED: OnceLock<Emulator> = OnceLock::new();
        SHARED.get_or_init(|| match Emulator::start(0) {
            Ok(emulator) => emulator,
            Err(err) => panic!("cannot start the emulator: {err}"),
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An SDK configuration pointed at the emulator, with the project's retry settings. Timeouts
    /// are longer than in AWS: the emulator serves one request at a time, so under load a call
    /// waits in its queue.
    pub async fn sdk_config(&self) -> SdkConfig {
        ledger_dynamodb::client::config_loader()
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(20))
                    .build(),
            )
            .endpoint_url(self.endpoint())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "devkit"))
            .load()
            .await
    }

    pub async fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        ledger_dynamodb::client::dynamodb_client(&self.sdk_config().await)
    }

    fn wait_ready(&mut self, limit: Duration) -> io::Result<()> {
        let started = Instant::now();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!("the emulator exited at start: {status}")));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(io::Error::other("the emulator did not answer within 30 s"))
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

/// The launcher is embedded in the binary and written out next to the venv, so it works from any
/// working directory.
fn write_launcher() -> io::Result<PathBuf> {
    let path = paths::venv().join("ledger-emulator.py");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(LAUNCHER) {
        let tmp = path.with_extension(format!("py.{}", std::process::id()));
        std::fs::write(&tmp, LAUNCHER)?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(path)
}
