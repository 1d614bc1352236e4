//! `corrections`: `POST /v1/reversals`, `/v1/adjustments`, `/v1/referral-clawbacks` (service routes, IAM).

use credits::http::{json_body, path, require_iam, serve, ApiError};
use credits::ops::corrections::{adjust, claw_back, reverse};
use credits::App;
use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};

/// Answers one API Gateway event.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    Ok(serve(&req, async {
        let route = path(&req);
        if req.method() != Method::POST
            || !matches!(route.as_str(), "/v1/reversals" | "/v1/adjustments" | "/v1/referral-clawbacks")
        {
            return Err(ApiError::not_found());
        }
        require_iam(&req, &app.config)?;
        match route.as_str() {
            "/v1/reversals" => reverse(app, json_body(&req)?).await,
            "/v1/adjustments" => adjust(app, json_body(&req)?).await,
            _ => claw_back(app, json_body(&req)?).await,
        }
    })
    .await)
}
