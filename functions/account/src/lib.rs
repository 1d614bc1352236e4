//! `account`: `GET /v1/me/balance`, `/v1/me/ledger`, `/v1/me/referral`, `/v1/me/holds`, `/v1/me/credit-options` (user routes, JWT).

use credits::http::{jwt_subject, path, record_user, serve, ApiError};
use credits::ops::account::{balance, ledger, ledger_query, referral};
use credits::App;
use lambda_http::http::Method;
use lambda_http::{Body, Request, RequestExt, Response};

/// Answers one API Gateway event.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    Ok(serve(&req, async {
        let route = path(&req);
        if req.method() != Method::GET
            || !matches!(
                route.as_str(),
                "/v1/me/balance" | "/v1/me/ledger" | "/v1/me/referral" | "/v1/me/holds" | "/v1/me/credit-options"
            )
        {
            return Err(ApiError::not_found());
        }
        let user = jwt_subject(&req, &app.config)?;
        record_user(&user);
        match route.as_str() {
            "/v1/me/balance" => balance(app, &user).await,
            "/v1/me/referral" => referral(app, &user).await,
            "/v1/me/holds" => credits::ops::holds::list(app, &user).await,
            "/v1/me/credit-options" => credits::ops::account::credit_options(app, &user).await,
            _ => {
                let params = req.query_string_parameters();
                let (limit, cursor) = ledger_query(params.iter())?;
                ledger(app, &user, limit, cursor).await
            }
        }
    })
    .await)
}
