//! API Gateway v2 events built from the fixtures, and answers decoded.

use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};
use std::path::PathBuf;

/// Reads a fixture event.
pub fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// Turns event JSON into the request a function hands its handler: repaired
/// as `credits::runtime::run` does, then converted by lambda_http.
pub fn request(event: &Value) -> Request {
    let mut event: lambda_http::request::LambdaRequest =
        serde_json::from_value(event.clone()).expect("a valid API Gateway v2 event");
    credits::runtime::repair(&mut event);
    event.into()
}

/// A service-route event: the fixture with this body (raw text).
pub fn service_event(fixture_name: &str, body: &str) -> Value {
    let mut event = fixture(fixture_name);
    event["body"] = json!(body);
    event["headers"]["content-length"] = json!(body.len().to_string());
    event
}

/// A user-route event for `sub` (`None`: no JWT claims) with this query.
pub fn user_event(fixture_name: &str, sub: Option<&str>, query: &str) -> Value {
    let mut event = fixture(fixture_name);
    match sub {
        Some(sub) => event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = json!(sub),
        None => {
            if let Some(ctx) = event["requestContext"].as_object_mut() {
                ctx.remove("authorizer");
            }
        }
    }
    event["rawQueryString"] = json!(query);
    if let Some(obj) = event.as_object_mut() {
        obj.remove("queryStringParameters");
    }
    event
}

/// Moves an event to another method and path.
pub fn with_route(mut event: Value, method: &str, path: &str) -> Value {
    event["rawPath"] = json!(path);
    event["routeKey"] = json!(format!("{method} {path}"));
    event["requestContext"]["routeKey"] = json!(format!("{method} {path}"));
    event["requestContext"]["http"]["method"] = json!(method);
    event["requestContext"]["http"]["path"] = json!(path);
    event
}

/// An answer, decoded.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body as JSON (Null when not JSON).
    pub json: Value,
    /// The body as text.
    pub text: String,
    /// Whether `idempotent-replayed: true` was set.
    pub replayed: bool,
}

impl Answer {
    /// The error code of an error answer.
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }
}

/// Decodes a handler's response.
pub fn answer(response: Response<Body>) -> Answer {
    let status = response.status().as_u16();
    let replayed = response.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
    let text = String::from_utf8_lossy(response.body().as_ref()).into_owned();
    Answer { status, json: serde_json::from_str(&text).unwrap_or(Value::Null), text, replayed }
}
