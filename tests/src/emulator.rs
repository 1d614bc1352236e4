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

/// The fault proxy between the functions and the emulator
/// (`infra/faultproxy.py`), which `infra/with-emulator.sh` starts: it injects
/// nothing until a test asks.
pub fn fault_proxy_url() -> String {
    std::env::var("FAULT_PROXY_URL")
        .expect("FAULT_PROXY_URL (run through infra/with-emulator.sh: make test or make chaos)")
}

/// Makes the fault proxy leave the next `count` requests of `operation` on
/// `table` unanswered until the caller gives up on them: after forwarding
/// them (they take effect) when `forward`, without otherwise.
pub async fn stall(operation: &str, table: &str, count: u32, forward: bool) {
    let settings = serde_json::json!({"operation": operation, "table": table, "count": count, "forward": forward});
    http_json(&fault_proxy_url(), "POST", "/__faults/stall", Some(&settings)).await;
}
