//! `spend`: `POST /v1/spends`, `POST /v1/holds`, `POST /v1/holds/{hold_id}/capture`, `POST /v1/holds/{hold_id}/release` (service routes, IAM).

use credits::http::{json_body, path, require_iam, serve, ApiError};
use credits::ops::holds::{capture, place, release};
use credits::ops::spend::spend;
use credits::App;
use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};

/// Answers one API Gateway event.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    Ok(serve(&req, async {
        if req.method() != Method::POST {
            return Err(ApiError::not_found());
        }
        let route = path(&req);
        let hold_action = route.strip_prefix("/v1/holds/").and_then(|rest| rest.split_once('/'));
        match (route.as_str(), hold_action) {
            ("/v1/spends", _) => {
                require_iam(&req, &app.config)?;
                spend(app, json_body(&req)?).await
            }
            ("/v1/holds", _) => {
                require_iam(&req, &app.config)?;
                place(app, json_body(&req)?).await
            }
            (_, Some((hold_id, "capture"))) => {
                require_iam(&req, &app.config)?;
                capture(app, hold_id, json_body(&req)?).await
            }
            (_, Some((hold_id, "release"))) => {
                require_iam(&req, &app.config)?;
                release(app, hold_id, json_body(&req)?).await
            }
            _ => Err(ApiError::not_found()),
        }
    })
    .await)
}
