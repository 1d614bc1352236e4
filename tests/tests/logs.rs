//! One structured log line per request: route, user, outcome, latency; no
//! full email addresses. The capture is process-wide and other tests log
//! beside this one, so it reads only the lines of its own two users.

use integration_tests::*;
use serde_json::{json, Value};

#[tokio::test]
async fn each_request_logs_one_json_line_without_full_emails() {
    let captured = capture_logs();
    let app = app().await;
    let (referrer, code) = new_user(&app, "free").await;
    // A domain of its own: the masked address (`j***@<domain>`) names this test's user alone.
    let domain = format!("{}.example.com", unique("logs"));
    let user = format!("jane.doe@{domain}");
    let masked = format!("j***@{domain}");
    let a = signup(&app, json!({"user_id": user, "email": user, "referral_code": code})).await;
    assert_eq!(a.status, 201, "{}", a.text);
    // Well-formed JSON, so the user is read (and logged) before the bad key is refused.
    let bad =
        buy(&app, json!({"user_id": user, "payment_id": "not a key", "amount_cents": 500, "currency": "usd"})).await;
    assert_eq!(bad.status, 400);

    let lines = captured.lines();
    let ours = |l: &&Value| l["span"]["user"] == referrer.as_str() || l["span"]["user"] == masked.as_str();
    let done: Vec<&Value> = lines.iter().filter(|l| l["message"] == "request done").filter(ours).collect();
    assert_eq!(done.len(), 3, "one line per request: {lines:#?}");
    let line = done[1];
    assert_eq!(line["span"]["route"], "POST /v1/signups");
    assert_eq!(line["span"]["user"], masked);
    assert_eq!(line["status"], 201);
    assert!(line["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{line}");
    assert_eq!(done[2]["status"], 400);
    assert_eq!(done[2]["code"], "invalid_request");
    let leaks: Vec<&Value> = lines.iter().filter(|l| l.to_string().contains(&user)).collect();
    assert!(leaks.is_empty(), "a full email address reached the log: {leaks:#?}");
}
