//! A Lambda runtime API of the benchmark's own: it starts a function's
//! release binary as Lambda would, hands it invocations one at a time, and
//! times what the function does with them, so the figures are the
//! function's and not a harness's.

use serde_json::Value;
use std::collections::VecDeque;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Mutex, Notify};

/// An invocation's outcome, as the function reported it.
#[derive(Debug)]
pub struct Outcome {
    /// The invocation's request id.
    pub request_id: String,
    /// Whether the function reported an error instead of a response.
    pub error: bool,
    /// The response (or error) body.
    pub body: String,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<VecDeque<(String, String)>>,
    ready: Notify,
    first_poll: Mutex<Option<Instant>>,
    polled: Notify,
}

/// The runtime API server, on a loopback port.
pub struct RuntimeApi {
    port: u16,
    shared: Arc<Shared>,
    outcomes: mpsc::UnboundedReceiver<Outcome>,
}

impl RuntimeApi {
    /// Starts serving on a free loopback port.
    pub async fn start() -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let shared = Arc::new(Shared::default());
        let (tx, outcomes) = mpsc::unbounded_channel();
        let serving = shared.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(stream, serving.clone(), tx.clone()));
            }
        });
        RuntimeApi { port, shared, outcomes }
    }

    /// `AWS_LAMBDA_RUNTIME_API` for a function served by this server.
    pub fn url(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts `binary` as Lambda would, with `env` on top of a clean
    /// environment.
    pub fn spawn(&self, binary: &std::path::Path, env: &[(String, String)]) -> Child {
        Command::new(binary)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", self.url())
            .env("AWS_LAMBDA_FUNCTION_NAME", binary.file_name().unwrap_or_default())
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", binary.display()))
    }

    /// Waits for the first poll of `/invocation/next` since this server
    /// started (the end of a cold start); `None` after `limit`.
    pub async fn first_poll(&self, limit: Duration) -> Option<Instant> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(at) = *self.shared.first_poll.lock().await {
                return Some(at);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            let _ = tokio::time::timeout(left, self.shared.polled.notified()).await;
        }
    }

    /// Hands the function one invocation and waits for its outcome; the
    /// time is from the hand-over to the function's answer.
    pub async fn invoke(&mut self, request_id: &str, event: &Value) -> (Outcome, Duration) {
        let started = Instant::now();
        self.shared.queue.lock().await.push_back((request_id.to_owned(), event.to_string()));
        self.shared.ready.notify_one();
        let outcome = tokio::time::timeout(Duration::from_secs(60), self.outcomes.recv())
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no answer to {request_id} within 60 s"));
        (outcome, started.elapsed())
    }
}

async fn connection(stream: TcpStream, shared: Arc<Shared>, outcomes: mpsc::UnboundedSender<Outcome>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let mut length = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).await.unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let answer = if path.ends_with("/invocation/next") {
            {
                let mut first = shared.first_poll.lock().await;
                if first.is_none() {
                    *first = Some(Instant::now());
                    shared.polled.notify_waiters();
                }
            }
            let (id, event) = loop {
                if let Some(next) = shared.queue.lock().await.pop_front() {
                    break next;
                }
                shared.ready.notified().await;
            };
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: {id}\r\n\
                 Lambda-Runtime-Deadline-Ms: {}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:bench\r\n\
                 Content-Length: {}\r\n\r\n{event}",
                epoch_ms() + 60_000,
                event.len()
            )
        } else {
            let segments: Vec<&str> = path.split('/').collect();
            let request_id = segments.iter().rev().nth(1).map_or(String::new(), |s| s.to_string());
            let _ = outcomes.send(Outcome {
                request_id,
                error: path.ends_with("/error"),
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n".to_owned()
        };
        if write.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn epoch_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

/// CPU time (user + system) of a process so far, from /proc/<pid>/stat.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux Lambda runs on.
    Some(Duration::from_millis(ticks * 10))
}

/// Peak resident memory of a process so far (VmHWM), in bytes.
pub fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
