//! Serving an HTTP function: lambda_http's own adapter between the Lambda
//! runtime and a handler ([`run`], in place of `lambda_http::run`), with the
//! event repaired first ([`repair`]).
//!
//! lambda_http builds the request's URI from the event's `rawQueryString` as
//! API Gateway passes it on, as the caller sent it, and panics ("failed to
//! build request") when it holds a character a URI may not (`"`, `<`, `>`, a
//! space, a byte that is not ASCII): any caller could turn the invocation
//! into an error, answered by API Gateway as a 500 without the contract's
//! body. The same happens when the `Host` or `X-Forwarded-Proto` header, which
//! it also builds the URI from, is not one a URL can hold. [`repair`]
//! percent-encodes those characters of the query, which parsing the query
//! decodes again (the handler sees the same parameters and answers a bad one
//! as it would any other), and drops such a header (the URI then takes API
//! Gateway's domain name and `https`; no handler reads either).

use lambda_http::lambda_runtime::{self, Diagnostic, LambdaEvent, Service};
use lambda_http::request::LambdaRequest;
use lambda_http::{IntoResponse, Request};
use std::fmt::Write;
use std::task::{Context, Poll};

/// Runs `handler` for every invocation, as `lambda_http::run` does, with
/// each event [`repair`]ed first.
pub async fn run<'a, R, S, E>(handler: S) -> Result<(), lambda_http::Error>
where
    S: Service<Request, Response = R, Error = E>,
    S::Future: Send + 'a,
    R: IntoResponse,
    E: std::fmt::Debug + Into<Diagnostic>,
{
    lambda_runtime::run(Repaired(lambda_http::Adapter::from(handler))).await
}

/// An event service whose events are repaired before it sees them.
struct Repaired<S>(S);

impl<S: Service<LambdaEvent<LambdaRequest>>> Service<LambdaEvent<LambdaRequest>> for Repaired<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut event: LambdaEvent<LambdaRequest>) -> S::Future {
        repair(&mut event.payload);
        self.0.call(event)
    }
}

/// Makes an API Gateway event one lambda_http can turn into a request
/// without panicking (see the module's documentation); an event that already
/// is one is left as it is.
pub fn repair(request: &mut LambdaRequest) {
    #[allow(irrefutable_let_patterns)] // one variant with this crate's features
    let LambdaRequest::ApiGatewayV2(event) = request
    else {
        return;
    };
    if let Some(query) = &mut event.raw_query_string {
        if let Some(encoded) = encode_query(query) {
            *query = encoded;
        }
    }
    // lambda_http parses `{proto}://{host}{path}` and unwraps the result.
    let proto = event.headers.get("x-forwarded-proto").map(|v| v.as_bytes().to_ascii_lowercase());
    if proto.is_some_and(|p| p != b"https" && p != b"http") {
        event.headers.remove("x-forwarded-proto");
    }
    let host = event.headers.get("host").map(|h| h.to_str().map(|h| url::Url::parse(&format!("https://{h}/"))));
    if host.is_some_and(|parsed| !matches!(parsed, Ok(Ok(_)))) {
        event.headers.remove("host");
    }
}

/// The query with every byte a URI's query may not hold percent-encoded;
/// `None` when it holds none.
fn encode_query(query: &str) -> Option<String> {
    if lambda_http::http::uri::PathAndQuery::try_from(format!("/?{query}")).is_ok() {
        return None;
    }
    let mut out = String::with_capacity(query.len() * 3);
    for &b in query.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::RequestExt;
    use serde_json::json;

    fn event(query: &str, headers: serde_json::Value) -> LambdaRequest {
        let event = json!({
            "version": "2.0", "routeKey": "GET /v1/me/ledger", "rawPath": "/v1/me/ledger",
            "rawQueryString": query, "headers": headers,
            "requestContext": {"accountId": "1", "apiId": "a", "domainName": "api.example.com",
                "http": {"method": "GET", "path": "/v1/me/ledger", "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1", "userAgent": "t"},
                "requestId": "r", "routeKey": "GET /v1/me/ledger", "stage": "$default",
                "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 0},
            "isBase64Encoded": false
        });
        serde_json::from_value(event).expect("an API Gateway v2 event")
    }

    fn repaired(query: &str, headers: serde_json::Value) -> Request {
        let mut request = event(query, headers);
        repair(&mut request);
        request.into()
    }

    #[test]
    fn every_character_a_caller_can_put_in_a_query_reaches_the_handler_as_sent() {
        let mut characters: Vec<char> = (' '..='~').collect();
        characters.extend(['é', '€', '😀', '\u{7f}', '\t']);
        for c in characters {
            let value = format!("a{c}b");
            let raw = format!("limit={value}&cursor=1");
            let request = repaired(&raw, json!({}));
            let params = request.query_string_parameters();
            // The query's own syntax: `&` ends a value, `+` is a space.
            let expected = match c {
                '&' => "a".to_owned(),
                '+' => "a b".to_owned(),
                _ => value.clone(),
            };
            assert_eq!(params.first("limit"), Some(expected.as_str()), "{c:?}");
            assert_eq!(params.first("cursor"), Some("1"), "{c:?}");
        }
    }

    #[test]
    fn a_query_a_uri_can_hold_is_left_as_it_came() {
        for query in ["", "limit=5&cursor=12", "q=a+b%20c", "a[]=1&b={x}|^`", "a=%zz"] {
            assert_eq!(encode_query(query), None, "{query}");
        }
        assert_eq!(encode_query("limit=\"5\" <x>").as_deref(), Some("limit=%225%22%20%3Cx%3E"));
        assert_eq!(encode_query("q=é"), None, "a URI's query may hold bytes above ASCII");
        assert_eq!(encode_query("q=é\"").as_deref(), Some("q=%C3%A9%22"));
    }

    #[test]
    fn without_the_repair_lambda_http_panics_on_such_an_event() {
        // If this fails, lambda_http no longer panics there, and `repair` may go.
        for (query, headers) in [
            ("limit=\"5\"", json!({})),
            ("a=<b>", json!({})),
            ("limit=5", json!({"x-forwarded-proto": "a b"})),
            ("limit=5", json!({"host": "a:99999"})),
        ] {
            let request = event(query, headers.clone());
            let converted = std::panic::catch_unwind(move || Request::from(request).uri().to_string());
            assert!(converted.is_err(), "{query} {headers}");
        }
    }

    #[test]
    fn headers_the_uri_is_built_from_are_dropped_when_a_url_cannot_hold_them() {
        for (name, value) in [
            ("x-forwarded-proto", "no such scheme"),
            ("x-forwarded-proto", "1http"),
            ("host", "exa mple.com"),
            ("host", "example.com:abc"),
            ("host", "a:99999"),
            ("host", "["),
            ("host", ":"),
            ("host", ""),
        ] {
            let request = repaired("limit=5", json!({ name: value }));
            assert_eq!(request.uri().to_string(), "https://api.example.com/v1/me/ledger?limit=5", "{name}: {value}");
        }
        let kept = repaired("limit=5", json!({"x-forwarded-proto": "HTTP", "host": "localhost:9000"}));
        assert_eq!(kept.uri().to_string(), "http://localhost:9000/v1/me/ledger?limit=5");
        let ipv6 = repaired("limit=5", json!({"host": "[::1]:9000"}));
        assert_eq!(ipv6.uri().to_string(), "https://[::1]:9000/v1/me/ledger?limit=5");
    }
}
