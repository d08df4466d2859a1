//! The local emulators: AWS's DynamoDB Local for the table and its stream, moto for the queues and
//! the event bus. One child process
//! (a Python launcher, which starts DynamoDB Local under itself) on two loopback ports, and the one
//! place an SDK configuration pointed at them is built.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::timeout::TimeoutConfig;
use aws_config::{Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

use crate::{install, paths};

const LAUNCHER: &str = include_str!("emulators.py");

/// Set by `cargo stack test` for the test processes it runs, so that they all share its emulators
/// instead of each starting its own.
pub const DYNAMODB_ENDPOINT_VAR: &str = "LEDGER_DYNAMODB_ENDPOINT";
pub const MOTO_ENDPOINT_VAR: &str = "LEDGER_MOTO_ENDPOINT";

/// Running emulators. If this value started them, dropping it stops them; if its process dies
/// without dropping it, they notice and exit by themselves.
pub struct Emulators {
    child: Option<Child>,
    dynamodb: String,
    moto: String,
}

/// The ports to listen on (0: any free one).
#[derive(Clone, Copy, Debug, Default)]
pub struct Ports {
    pub dynamodb: u16,
    pub moto: u16,
}

impl Emulators {
    /// Starts both emulators and waits until both answer.
    pub fn start(ports: Ports) -> io::Result<Emulators> {
        let python = paths::venv_python();
        if !python.exists() || !install::dynamodb_local_installed() {
            return Err(io::Error::other(
                "the emulators are not installed: run `cargo stack setup` (or `cargo stack test`) once",
            ));
        }
        let dynamodb_port = if ports.dynamodb == 0 { free_port()? } else { ports.dynamodb };
        let moto_port = if ports.moto == 0 { free_port()? } else { ports.moto };
        let child = Command::new(python)
            .arg(write_launcher()?)
            .args(["127.0.0.1", &dynamodb_port.to_string(), &moto_port.to_string()])
            .arg(std::process::id().to_string())
            .arg(paths::dynamodb_local())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()?;
        let mut emulators =
            Emulators { child: Some(child), dynamodb: endpoint(dynamodb_port), moto: endpoint(moto_port) };
        emulators.wait_ready(&[dynamodb_port, moto_port], Duration::from_secs(60))?;
        Ok(emulators)
    }

    /// The emulators this process shares between its tests (each test isolates itself in tables and
    /// queues of its own): those of `cargo stack test` when it runs us, else our own, started on
    /// first use.
    pub fn shared() -> &'static Emulators {
        static SHARED: OnceLock<Emulators> = OnceLock::new();
        SHARED.get_or_init(|| {
            match (std::env::var(DYNAMODB_ENDPOINT_VAR), std::env::var(MOTO_ENDPOINT_VAR)) {
                (Ok(dynamodb), Ok(moto)) => Emulators { child: None, dynamodb, moto },
                _ => Emulators::start(Ports::default())
                    .unwrap_or_else(|err| panic!("cannot start the emulators: {err}")),
            }
        })
    }

    /// DynamoDB Local's endpoint.
    pub fn dynamodb_endpoint(&self) -> &str {
        &self.dynamodb
    }

    /// moto's endpoint: SQS (and moto's own DynamoDB, which only the emulator bench uses).
    pub fn moto_endpoint(&self) -> &str {
        &self.moto
    }

    /// The variables that make test processes share these emulators (see `shared`).
    pub fn env_vars(&self) -> [(&'static str, String); 2] {
        [(DYNAMODB_ENDPOINT_VAR, self.dynamodb.clone()), (MOTO_ENDPOINT_VAR, self.moto.clone())]
    }

    pub async fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        ledger_dynamodb::client::dynamodb_client(&sdk_config(&self.dynamodb).await)
    }

    pub async fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&sdk_config(&self.moto).await)
    }

    /// moto's KMS.
    pub async fn kms(&self) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::new(&sdk_config(&self.moto).await)
    }

    /// moto's S3, addressed by path (one endpoint for every bucket).
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        ledger_s3::s3_client(&sdk_config(&self.moto).await, true)
    }

    /// DynamoDB Local's streams (on its own endpoint).
    pub async fn streams(&self) -> aws_sdk_dynamodbstreams::Client {
        aws_sdk_dynamodbstreams::Client::new(&sdk_config(&self.dynamodb).await)
    }

    /// moto's EventBridge.
    pub async fn eventbridge(&self) -> aws_sdk_eventbridge::Client {
        aws_sdk_eventbridge::Client::new(&sdk_config(&self.moto).await)
    }

    fn wait_ready(&mut self, ports: &[u16], limit: Duration) -> io::Result<()> {
        let started = Instant::now();
        for port in ports {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, *port));
            loop {
                if let Some(status) = self.child.as_mut().map(Child::try_wait).transpose()?.flatten() {
                    return Err(io::Error::other(format!("the emulators exited at start: {status}")));
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    break;
                }
                if started.elapsed() > limit {
                    return Err(io::Error::other(format!(
                        "no emulator answered on port {port} within {limit:?}"
                    )));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }
}

impl Drop for Emulators {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The SDK configuration of every client the local stack and the tests point at an emulator (or at
/// a fault proxy in front of one): the project's retry settings, test credentials, and attempt
/// timeouts longer than in AWS, since on two cores a loaded emulator answers slowly.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    ledger_dynamodb::client::config_loader()
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(20))
                .build(),
        )
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "harness"))
        .load()
        .await
}

fn endpoint(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

/// The launcher is embedded in the binary and written out next to the venv, so it works from any
/// working directory.
fn write_launcher() -> io::Result<PathBuf> {
    let path = paths::venv().join("ledger-emulators.py");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(LAUNCHER) {
        let tmp = path.with_extension(format!("py.{}", std::process::id()));
        std::fs::write(&tmp, LAUNCHER)?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(path)
}
