//! A local Lambda Runtime API: the HTTP interface a `provided.al2023` bootstrap polls for events.
//! It starts a function binary as Lambda does (a fresh process, Lambda's environment variables),
//! hands it one event at a time and timestamps each step, so `cargo stack bench cold-start` and
//! `cargo stack cost` measure the very binaries that are deployed, not a library call.

use crate::io_error;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

const PREFIX: &str = "/2018-06-01/runtime";
/// How long a step may take before the function counts as hung.
const STEP_LIMIT: Duration = Duration::from_secs(30);

/// What the function told the Runtime API, when.
enum Report {
    /// It asked for the next event: it is initialised, or done with the previous event.
    Next(Instant),
    Response(Bytes, Instant),
    Error(Bytes),
    InitError(Bytes),
}

struct Shared {
    reports: mpsc::UnboundedSender<Report>,
    events: Mutex<mpsc::UnboundedReceiver<Bytes>>,
}

/// One execution environment: a function process and the Runtime API it polls.
pub struct LocalFunction {
    name: String,
    child: Child,
    pid: u32,
    spawned: Instant,
    reports: mpsc::UnboundedReceiver<Report>,
    events: mpsc::UnboundedSender<Bytes>,
    server: JoinHandle<()>,
    log_bytes: Arc<AtomicU64>,
    log_readers: [JoinHandle<()>; 2],
}

/// One invocation: how long the function took to answer, and its answer.
pub struct Invoked {
    pub took: Duration,
    pub response: Bytes,
}

impl LocalFunction {
    /// Starts `binary` with Lambda's variables for a function of `memory_mb`, plus `env`; nothing of
    /// this process's environment leaks in (Lambda's has no HOME, no profile files).
    pub async fn start(binary: &Path, memory_mb: u32, env: &[(&str, String)]) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (report_tx, reports) = mpsc::unbounded_channel();
        let (events, event_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared { reports: report_tx, events: Mutex::new(event_rx) });
        let app = Router::new()
            .route(&format!("{PREFIX}/invocation/next"), get(next))
            .route(&format!("{PREFIX}/invocation/{{id}}/response"), post(response))
            .route(&format!("{PREFIX}/invocation/{{id}}/error"), post(error))
            .route(&format!("{PREFIX}/init/error"), post(init_error))
            .with_state(shared);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let name = binary.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let spawned = Instant::now();
        let mut child = Command::new(binary)
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string())
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/29/[$LATEST]local")
            .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            // Lambda hands the role's session credentials over in the environment.
            .env("AWS_ACCESS_KEY_ID", "ASIALOCAL")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("AWS_SESSION_TOKEN", "local")
            .env("LAMBDA_TASK_ROOT", "/var/task")
            .env("_HANDLER", "bootstrap")
            .env("TZ", ":UTC")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().ok_or_else(|| io_error("the function exited at once"))?;
        let log_bytes = Arc::new(AtomicU64::new(0));
        let log_readers = [
            count_bytes(child.stdout.take().map(|s| Box::new(s) as Box<_>), log_bytes.clone()),
            count_bytes(child.stderr.take().map(|s| Box::new(s) as Box<_>), log_bytes.clone()),
        ];
        Ok(Self { name, child, pid, spawned, reports, events, server, log_bytes, log_readers })
    }

    /// Waits until the function asks for its first event: the init time, from the process's start.
    pub async fn ready(&mut self) -> std::io::Result<Duration> {
        let at = self.next_request().await?;
        Ok(at.saturating_duration_since(self.spawned))
    }

    /// Hands the function one event and waits for its answer, then for it to ask for the next one
    /// (so the work it does after answering counts towards this invocation's CPU time).
    pub async fn invoke(&mut self, event: &[u8]) -> std::io::Result<Invoked> {
        let sent = Instant::now();
        self.events.send(Bytes::copy_from_slice(event)).map_err(io_error)?;
        let (response, at) = match self.report().await? {
            Report::Response(body, at) => (body, at),
            Report::Error(body) => {
                return Err(io_error(format!("the function failed: {}", String::from_utf8_lossy(&body))));
            }
            _ => return Err(io_error("the function answered out of turn")),
        };
        self.next_request().await?;
        Ok(Invoked { took: at.saturating_duration_since(sent), response })
    }

    /// CPU time of each of the process's threads so far, from the scheduler (nanoseconds, rather
    /// than the 10 ms ticks of /proc/<pid>/stat). `CpuTimes::since` gives the time used between
    /// two of them.
    pub fn cpu_times(&self) -> std::io::Result<CpuTimes> {
        let mut threads = BTreeMap::new();
        for task in std::fs::read_dir(format!("/proc/{}/task", self.pid))? {
            let task = task?;
            // A thread that ended between the listing and the read has no time left to count.
            let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else { continue };
            let nanos = stat.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
            threads.insert(task.file_name().to_string_lossy().into_owned(), nanos);
        }
        Ok(CpuTimes(threads))
    }

    /// Bytes the function has written to stdout and stderr, once the pipes have been drained: the
    /// count has not moved for 50 ms.
    pub async fn settled_log_bytes(&self) -> u64 {
        let mut last = self.log_bytes.load(Ordering::Relaxed);
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = self.log_bytes.load(Ordering::Relaxed);
            if now == last {
                return now;
            }
            last = now;
        }
    }

    /// The binary's file name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A figure of /proc/<pid>/status in kB, e.g. `VmHWM` (peak resident memory).
    pub fn status_kb(&self, key: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let line = status.lines().find(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Ends the process (Lambda freezes, then reclaims, an environment) and the Runtime API.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    async fn next_request(&mut self) -> std::io::Result<Instant> {
        match self.report().await? {
            Report::Next(at) => Ok(at),
            Report::InitError(body) => {
                Err(io_error(format!("the function failed to start: {}", String::from_utf8_lossy(&body))))
            }
            _ => Err(io_error("the function answered out of turn")),
        }
    }

    async fn report(&mut self) -> std::io::Result<Report> {
        tokio::select! {
            // A report that came in just before the process ended still counts.
            biased;
            report = tokio::time::timeout(STEP_LIMIT, self.reports.recv()) => {
                report.map_err(|_| io_error("the function hung"))?.ok_or_else(|| io_error("the Runtime API stopped"))
            }
            status = self.child.wait() => Err(io_error(format!("the function exited: {}", status?))),
        }
    }
}

impl Drop for LocalFunction {
    fn drop(&mut self) {
        // The child is killed on drop too (`kill_on_drop`).
        self.server.abort();
        for reader in &self.log_readers {
            reader.abort();
        }
    }
}

/// CPU time by thread at one moment: see `LocalFunction::cpu_times`.
pub struct CpuTimes(BTreeMap<String, u64>);

impl CpuTimes {
    /// CPU time used between `before` and this moment: by threads alive at both, their difference;
    /// by threads started since, all of theirs. (A thread that ended in between takes the time it
    /// used in between with it; the functions' threads live as long as the process.)
    pub fn since(&self, before: &CpuTimes) -> Duration {
        let nanos = self
            .0
            .iter()
            .map(|(thread, now)| now.saturating_sub(before.0.get(thread).copied().unwrap_or(0)))
            .sum();
        Duration::from_nanos(nanos)
    }
}

fn count_bytes(
    stream: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>,
    total: Arc<AtomicU64>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let Some(mut stream) = stream else { return };
        let mut buffer = vec![0; 64 * 1024];
        while let Ok(read @ 1..) = stream.read(&mut buffer).await {
            total.fetch_add(read as u64, Ordering::Relaxed);
        }
    })
}

async fn next(State(shared): State<Arc<Shared>>) -> Result<(HeaderMap, Bytes), StatusCode> {
    let _ = shared.reports.send(Report::Next(Instant::now()));
    let event = shared.events.lock().await.recv().await.ok_or(StatusCode::GONE)?;
    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + STEP_LIMIT;
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", uuid::Uuid::new_v4().to_string());
    set("lambda-runtime-deadline-ms", deadline.as_millis().to_string());
    set("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:000000000000:function:local".into());
    set("lambda-runtime-trace-id", "Root=1-67a0b1c2-1234567890abcdef01234567;Sampled=0".into());
    Ok((headers, event))
}

async fn response(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    let _ = shared.reports.send(Report::Response(body, Instant::now()));
    StatusCode::ACCEPTED
}

async fn error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    let _ = shared.reports.send(Report::Error(body));
    StatusCode::ACCEPTED
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    let _ = shared.reports.send(Report::InitError(body));
    StatusCode::ACCEPTED
}
