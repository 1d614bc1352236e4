//! `spend`: `POST /v1/spends` (service route, IAM).

use credits::http::{json_body, path, require_iam, serve, ApiError};
use credits::ops::spend::spend;
use credits::App;
use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};

/// Answers one API Gateway event.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    Ok(serve(&req, async {
        match (req.method(), path(&req).as_str()) {
            (&Method::POST, "/v1/spends") => {
                require_iam(&req, &app.config)?;
                spend(app, json_body(&req)?).await
            }
            _ => Err(ApiError::not_found()),
        }
    })
    .await)
}
