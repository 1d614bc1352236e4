//! What only the emulator and the fault proxy can tell, over plain HTTP.

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends one HTTP/1.0 request to `base` (`http://host:port`) and returns the
/// answer's body as JSON.
pub async fn http_json(base: &str, method: &str, path: &str, body: Option<&Value>) -> Value {
    let host = base.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let mut stream = tokio::net::TcpStream::connect(&host).await.unwrap_or_else(|e| panic!("{host} reachable: {e}"));
    let payload = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
        payload.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let raw = String::from_utf8_lossy(&raw);
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {body}"))
}

/// Messages the emulator's SES accepted, oldest first: `{"id", "source",
/// "to": [...], "subject", "body"}` (the body is the HTML part).
pub async fn sent_emails() -> Vec<Value> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
    match http_json(&endpoint, "GET", "/_emulator/ses/messages", None).await {
        Value::Array(messages) => messages,
        other => panic!("not a list of messages: {other}"),
    }
}

/// A fault proxy (`infra/faultproxy.py`) of the caller's own in front of the
/// emulator, stopped when dropped: it injects nothing until asked, and what
/// it injects and counts concerns its caller alone. (One proxy shared by the
/// tests let the chaos run's 30% of faults reach another test's requests,
/// and its reset drop that test's stalls.)
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`, an endpoint for [`crate::app_through`].
    pub url: String,
    child: std::process::Child,
}

impl FaultProxy {
    /// Starts one on a free loopback port, forwarding to `AWS_ENDPOINT_URL`.
    pub fn start() -> FaultProxy {
        use std::io::BufRead;
        let upstream = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (run through make test)");
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let python = root.join(".venv/bin/python");
        let mut child = std::process::Command::new(&python)
            .arg(root.join("infra/faultproxy.py"))
            .args(["--port", "0", "--upstream", &upstream])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{} infra/faultproxy.py: {e}", python.display()));
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        std::io::BufReader::new(stdout).read_line(&mut line).expect("the proxy's first line");
        let port = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("not a port: {line:?}"));
        FaultProxy { url: format!("http://127.0.0.1:{port}"), child }
    }

    /// Faults from now on: each request gets one with probability `rate`,
    /// drawn from an RNG seeded with `seed`; the counters start afresh.
    pub async fn inject(&self, rate: f64, seed: u64) {
        http_json(&self.url, "POST", "/__faults", Some(&serde_json::json!({"rate": rate, "seed": seed}))).await;
    }

    /// The counters: `{"rate", "seed", "requests": {operation: n}, "faults": {kind: {operation: n}}}`.
    pub async fn report(&self) -> Value {
        http_json(&self.url, "GET", "/__faults", None).await
    }

    /// Leaves the next `count` requests of `operation` on `table` unanswered
    /// until the caller gives up on them: after forwarding them (they take
    /// effect) when `forward`, without otherwise.
    pub async fn stall(&self, operation: &str, table: &str, count: u32, forward: bool) {
        let settings = serde_json::json!({"operation": operation, "table": table, "count": count, "forward": forward});
        http_json(&self.url, "POST", "/__faults/stall", Some(&settings)).await;
    }

    /// Answers the next `count` requests of `operation` on `table`
    /// `seconds` late.
    pub async fn delay(&self, operation: &str, table: &str, count: u32, seconds: f64) {
        let settings = serde_json::json!({"operation": operation, "table": table, "count": count, "delay": seconds});
        http_json(&self.url, "POST", "/__faults/stall", Some(&settings)).await;
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
