//! API Gateway (HTTP API, payload 2.0) glue: routing paths, authentication,
//! JSON bodies, the contract's error answers, and one log line per request.

use crate::account::{LedgerError, UnknownPlan};
use crate::config::{Config, DEV_CALLER_HEADER, DEV_USER_HEADER};
use crate::store::StoreError;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use lambda_http::http::{header, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::de::DeserializeOwned;
use std::future::Future;
use std::time::Instant;
use tracing::Instrument;

/// Largest request body accepted; the contract's bodies are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Every error answer the service gives: status and code (docs/api.md's
/// error table is checked against this list).
pub const ERROR_CODES: &[(u16, &str)] = &[
    (400, "invalid_request"),
    (401, "unauthenticated"),
    (402, "insufficient_credits"),
    (403, "plan_not_eligible"),
    (404, "account_not_found"),
    (404, "purchase_not_found"),
    (404, "referral_not_found"),
    (404, "hold_not_found"),
    (404, "not_found"),
    (409, "idempotency_conflict"),
    (409, "reversal_exceeds_purchase"),
    (409, "hold_closed"),
    (503, "unavailable"),
    (500, "internal"),
];

/// An answer other than 2xx: the contract's status, code and a message for
/// people. What went wrong inside (`detail`) goes to the log line of the
/// request, never into the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// The contract's error code.
    pub code: &'static str,
    /// What went wrong, for the caller.
    pub message: String,
    /// Why, for the operator: logged with the request, never answered.
    pub detail: Option<String>,
    /// A 5xx the protocol expects (a Stripe event that must be delivered
    /// again later): its request is logged as a warning, not an error, so
    /// the error alarm stays for failures.
    pub expected: bool,
}

impl ApiError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), detail: None, expected: false }
    }

    /// The same answer, logged as a warning (see [`ApiError::expected`]).
    pub fn expected(self) -> ApiError {
        ApiError { expected: true, ..self }
    }

    /// 400 `invalid_request`.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "invalid_request", message)
    }

    /// 400 `invalid_request` about one field.
    pub fn field(field: &str, problem: impl std::fmt::Display) -> ApiError {
        ApiError::invalid(format!("{field}: {problem}"))
    }

    /// 401 `unauthenticated`.
    pub fn unauthenticated(message: impl Into<String>) -> ApiError {
        ApiError::new(401, "unauthenticated", message)
    }

    /// 402 `insufficient_credits`.
    pub fn insufficient_credits(message: impl Into<String>) -> ApiError {
        ApiError::new(402, "insufficient_credits", message)
    }

    /// 403 `plan_not_eligible`.
    pub fn plan_not_eligible(message: impl Into<String>) -> ApiError {
        ApiError::new(403, "plan_not_eligible", message)
    }

    /// 404 `account_not_found`.
    pub fn account_not_found() -> ApiError {
        ApiError::new(404, "account_not_found", "no account has this user_id")
    }

    /// 404 `purchase_not_found`: a reversal of a payment that is not a purchase of that user.
    pub fn purchase_not_found() -> ApiError {
        ApiError::new(404, "purchase_not_found", "this user made no purchase with this payment_id")
    }

    /// 404 `referral_not_found`: a clawback for a user who has no referrer.
    pub fn referral_not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, "referral_not_found", message)
    }

    /// 409 `reversal_exceeds_purchase`: reversals of one purchase would exceed its credits.
    pub fn reversal_exceeds_purchase(message: impl Into<String>) -> ApiError {
        ApiError::new(409, "reversal_exceeds_purchase", message)
    }

    /// 404 `hold_not_found`: capture or release of an unknown hold.
    pub fn hold_not_found() -> ApiError {
        ApiError::new(404, "hold_not_found", "this user has no hold with this hold_id")
    }

    /// 409 `hold_closed`: capture or release of a hold no longer open, or differently.
    pub fn hold_closed(message: impl Into<String>) -> ApiError {
        ApiError::new(409, "hold_closed", message)
    }

    /// 404 `not_found`: no such route or method on this function.
    pub fn not_found() -> ApiError {
        ApiError::new(404, "not_found", "no such route on this function")
    }

    /// 409 `idempotency_conflict`: `key_field`'s value was used with another request.
    pub fn idempotency_conflict(key_field: &str) -> ApiError {
        ApiError::new(
            409,
            "idempotency_conflict",
            format!("this {key_field} was already used with a different request"),
        )
    }

    /// 503 `unavailable`: safe to retry with the same key.
    pub fn unavailable(detail: impl Into<String>) -> ApiError {
        ApiError {
            detail: Some(detail.into()),
            ..ApiError::new(503, "unavailable", "the service is busy; retry with the same key")
        }
    }

    /// 500 `internal`, with the reason for the log.
    pub fn internal(detail: impl Into<String>) -> ApiError {
        ApiError { detail: Some(detail.into()), ..ApiError::new(500, "internal", "internal error") }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        match err {
            StoreError::Unavailable(_) | StoreError::Conflict(_) => ApiError::unavailable(err.to_string()),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<LedgerError> for ApiError {
    fn from(err: LedgerError) -> ApiError {
        ApiError::internal(err.to_string())
    }
}

impl From<UnknownPlan> for ApiError {
    fn from(err: UnknownPlan) -> ApiError {
        ApiError {
            detail: Some(err.to_string()),
            ..ApiError::new(
                500,
                "internal",
                // What to do about it (the configuration's name) is for the
                // operator, in the log's detail, not for the caller.
                format!("this account's plan {:?} is not in the plan catalogue", err.plan),
            )
        }
    }
}

/// A successful answer; bodies are JSON text, serialised once so that a
/// replay returns exactly the original bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// 200.
    Ok(String),
    /// 201.
    Created(String),
    /// 200 with `idempotent-replayed: true`: the original body of a replay.
    Replayed(String),
}

impl Reply {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Reply::Created(_) => 201,
            Reply::Ok(_) | Reply::Replayed(_) => 200,
        }
    }

    /// The body.
    pub fn body(&self) -> &str {
        match self {
            Reply::Ok(body) | Reply::Created(body) | Reply::Replayed(body) => body,
        }
    }
}

/// Serialises a response body.
pub fn to_json(value: &impl serde::Serialize) -> Result<String, ApiError> {
    serde_json::to_string(value).map_err(|e| ApiError::internal(format!("response does not serialise: {e}")))
}

/// Turns an outcome into the HTTP response.
pub fn respond(outcome: &Result<Reply, ApiError>) -> Response<Body> {
    let (status, body, replayed) = match outcome {
        Ok(reply) => (reply.status(), reply.body().to_owned(), matches!(reply, Reply::Replayed(_))),
        Err(e) => {
            let body = serde_json::json!({"error": {"code": e.code, "message": e.message}});
            (e.status, body.to_string(), false)
        }
    };
    let mut response = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json");
    if replayed {
        response = response.header("idempotent-replayed", "true");
    }
    response.body(Body::Text(body)).unwrap_or_else(|_| Response::new(Body::Empty))
}

fn v2_context(req: &Request) -> Option<&ApiGatewayV2httpRequestContext> {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => Some(ctx),
        _ => None,
    }
}

/// The request's path without the stage prefix API Gateway adds for named
/// stages (`/prod/v1/me/balance` → `/v1/me/balance`).
pub fn path(req: &Request) -> String {
    let raw = req.raw_http_path();
    let raw = if raw.is_empty() { req.uri().path() } else { raw };
    let stage = v2_context(req).and_then(|c| c.stage.as_deref()).filter(|s| !s.is_empty() && *s != "$default");
    if let Some(rest) = stage.and_then(|stage| raw.strip_prefix('/').and_then(|r| r.strip_prefix(stage))) {
        if rest.starts_with('/') {
            return rest.to_owned();
        }
    }
    raw.to_owned()
}

fn dev_header<'a>(req: &'a Request, config: &Config, name: &str) -> Option<&'a str> {
    if !config.dev_identity_headers {
        return None;
    }
    req.headers().get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty())
}

/// Service routes: refuses events that API Gateway did not authorise with IAM
/// (or, in local development only, that lack the dev caller header).
pub fn require_iam(req: &Request, config: &Config) -> Result<(), ApiError> {
    let iam = v2_context(req).and_then(|c| c.authorizer.as_ref()).and_then(|a| a.iam.as_ref());
    if iam.is_some() || dev_header(req, config, DEV_CALLER_HEADER).is_some() {
        Ok(())
    } else {
        Err(ApiError::unauthenticated("this route requires IAM (SigV4) authorization"))
    }
}

/// User routes: the user id, from the validated JWT's `sub` claim and nowhere
/// else (in local development only, the dev user header stands in for it).
pub fn jwt_subject(req: &Request, config: &Config) -> Result<crate::types::UserId, ApiError> {
    let sub = v2_context(req)
        .and_then(|c| c.authorizer.as_ref())
        .and_then(|a| a.jwt.as_ref())
        .and_then(|jwt| jwt.claims.get("sub"))
        .map(String::as_str)
        .filter(|sub| !sub.is_empty())
        .or_else(|| dev_header(req, config, DEV_USER_HEADER))
        .ok_or_else(|| ApiError::unauthenticated("this route requires a signed-in user (JWT with a sub claim)"))?;
    crate::types::UserId::parse(sub)
        .map_err(|_| ApiError::unauthenticated("the token's sub claim is not a valid user id"))
}

/// Parses a JSON object body into `T`, naming the field at fault.
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::invalid(format!("the body must be at most {MAX_BODY_BYTES} bytes")));
    }
    // Through a Value first: it bounds nesting (serde_json's recursion limit)
    // and lets us insist on an object, where serde would also take an array.
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::invalid(format!("the body is not valid JSON ({e})")))?;
    if !value.is_object() {
        return Err(ApiError::invalid("the body must be a JSON object"));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ApiError::invalid(inner.to_string())
        } else {
            ApiError::field(&path, inner)
        }
    })
}

/// Records the user a request is about in its log line.
pub fn record_user(user_id: &crate::types::UserId) {
    tracing::Span::current().record("user", user_id.redacted());
}

tokio::task_local! {
    /// The deadline of the invocation [`serve`] is running, as an instant
    /// taken when it started.
    static DEADLINE: Option<Instant>;
}

/// The deadline of the invocation being served, from the Lambda context's
/// (`Lambda-Runtime-Deadline-Ms`), taken when [`serve`] started: `None`
/// outside it, or where the request carries no context (a test's).
pub fn invocation_deadline() -> Option<Instant> {
    DEADLINE.try_with(|until| *until).ok().flatten()
}

/// How long before the invocation's deadline a request still at work is
/// answered 503 `unavailable`: Lambda would otherwise end it, and API Gateway
/// answer a bare 500 without the contract's error body or this service's log
/// line. (The sending of emails stops 300 ms before the deadline, so a
/// committed request's answer is not lost to it.)
pub const ANSWER_MARGIN: std::time::Duration = std::time::Duration::from_millis(200);

/// Runs `work` until [`ANSWER_MARGIN`] before `until`, then gives up with
/// 503: whatever it had done is committed whole or not at all, so the same
/// request sent again (same key) replays or takes effect.
async fn within_deadline<F>(until: Option<Instant>, work: F) -> Result<Reply, ApiError>
where
    F: Future<Output = Result<Reply, ApiError>>,
{
    let Some(until) = until else { return work.await };
    let cut = until.checked_sub(ANSWER_MARGIN).unwrap_or(until);
    match tokio::time::timeout_at(cut.into(), work).await {
        Ok(outcome) => outcome,
        Err(_) => Err(ApiError::unavailable(
            "the request ran out of time before it could be answered; send it again with the same key",
        )),
    }
}

/// Runs a route's work and answers it, logging one line: route, user,
/// status, error code and latency.
pub async fn serve<F>(req: &Request, work: F) -> Response<Body>
where
    F: Future<Output = Result<Reply, ApiError>>,
{
    let started = Instant::now();
    let route: String = format!("{} {}", req.method(), path(req)).chars().take(160).collect();
    let request_id = v2_context(req).and_then(|c| c.request_id.clone()).unwrap_or_default();
    let span = tracing::info_span!("request", %route, %request_id, user = tracing::field::Empty);
    let deadline =
        req.lambda_context_ref().and_then(|c| crate::ops::schedule::Deadline::from_context_ms(c.deadline).instant());
    // On the heap: a route's future is large, and debug builds copy it on the stack.
    let work = Box::pin(work.instrument(span.clone()));
    let outcome = DEADLINE.scope(deadline, within_deadline(deadline, work)).await;
    let response = respond(&outcome);
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let status = response.status().as_u16();
    let code = outcome.as_ref().err().map_or("", |e| e.code);
    let replayed = matches!(outcome, Ok(Reply::Replayed(_)));
    span.in_scope(|| {
        let detail = outcome.as_ref().err().and_then(|e| e.detail.as_deref()).unwrap_or("");
        if status >= 500 && outcome.as_ref().is_err_and(|e| e.expected) {
            tracing::warn!(status, code, detail, latency_ms, "request answered 5xx, to be sent again later");
        } else if status >= 500 {
            tracing::error!(status, code, detail, latency_ms, "request failed");
        } else {
            tracing::info!(status, code, replayed, latency_ms, "request done");
        }
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_the_service_gives_is_listed() {
        let all = [
            ApiError::invalid("x"),
            ApiError::unauthenticated("x"),
            ApiError::insufficient_credits("x"),
            ApiError::plan_not_eligible("x"),
            ApiError::account_not_found(),
            ApiError::purchase_not_found(),
            ApiError::referral_not_found("x"),
            ApiError::hold_not_found(),
            ApiError::not_found(),
            ApiError::idempotency_conflict("x"),
            ApiError::reversal_exceeds_purchase("x"),
            ApiError::hold_closed("x"),
            ApiError::unavailable("x"),
            ApiError::internal("x"),
        ];
        assert_eq!(all.len(), ERROR_CODES.len());
        for e in all {
            assert!(ERROR_CODES.contains(&(e.status, e.code)), "{} {}", e.status, e.code);
        }
    }

    fn in_ms(ms: u64) -> Option<Instant> {
        Some(Instant::now() + std::time::Duration::from_millis(ms))
    }

    #[tokio::test]
    async fn work_still_running_near_the_deadline_is_answered_503_before_lambda_ends_it() {
        let slow = async {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            Ok(Reply::Ok("{}".into()))
        };
        let started = Instant::now();
        let outcome = within_deadline(in_ms(1_500), slow).await;
        let err = outcome.expect_err("cut");
        assert_eq!((err.status, err.code), (503, "unavailable"));
        let took = started.elapsed().as_millis();
        assert!((1_000..1_500).contains(&took), "answered {took} ms in: 200 ms before the deadline, not at once");
        // Work that finishes in time, or with no deadline, answers as it is.
        let quick = within_deadline(in_ms(700), async { Ok(Reply::Ok("{}".into())) }).await;
        assert_eq!(quick.ok(), Some(Reply::Ok("{}".into())));
        assert!(within_deadline(None, async { Ok(Reply::Ok("{}".into())) }).await.is_ok());
    }
}
