//! What only the emulator can tell.

use serde_json::Value;

/// Messages the emulator's SES accepted (from `/moto-api/data.json`).
pub async fn sent_emails() -> Vec<Value> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let mut stream = tokio::net::TcpStream::connect(&host).await.expect("emulator reachable");
    let req = format!("GET /moto-api/data.json HTTP/1.0\r\nHost: {host}\r\n\r\n");
    stream.write_all(req.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let raw = String::from_utf8_lossy(&raw);
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let data: Value = serde_json::from_str(body).expect("data.json");
    let mut out = Vec::new();
    collect_messages(&data["ses"], &mut out);
    out
}

fn collect_messages(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Object(map) if map.contains_key("destinations") || map.contains_key("destination") => {
            out.push(v.clone())
        }
        Value::Object(map) => map.values().for_each(|v| collect_messages(v, out)),
        Value::Array(items) => items.iter().for_each(|v| collect_messages(v, out)),
        _ => {}
    }
}
