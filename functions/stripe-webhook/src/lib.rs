//! `stripe-webhook`: `POST /v1/webhooks/stripe` (public; authenticity comes from the Stripe signature).

use credits::config::ConfigError;
use credits::http::{path, serve, ApiError};
use credits::ops::stripe::{webhook, StripeSettings};
use credits::App;
use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};

/// Environment variable naming the SSM parameter (a SecureString) that holds
/// the webhook endpoint's signing secret.
pub const SECRET_PARAMETER_ENV: &str = "STRIPE_SECRET_PARAMETER";
/// Environment variable with the Stripe price id → plan map (JSON).
pub const PRICE_PLANS_ENV: &str = "STRIPE_PRICE_PLANS";

/// Reads the signing secret from SSM Parameter Store (decrypted), once per
/// cold start.
pub async fn load_secret(ssm: &aws_sdk_ssm::Client, parameter: &str) -> Result<Vec<u8>, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid { name: SECRET_PARAMETER_ENV, reason };
    let out = ssm.get_parameter().name(parameter).with_decryption(true).send().await.map_err(|e| {
        invalid(format!("parameter {parameter:?} could not be read: {}", aws_sdk_ssm::error::DisplayErrorContext(&e)))
    })?;
    let value = out.parameter.and_then(|p| p.value).unwrap_or_default();
    // A value stored from a file may end in a line break, which no secret has.
    let secret = value.trim();
    let key = secret.strip_prefix("whsec_").unwrap_or_default();
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=_-".contains(&b)) {
        return Err(invalid(format!(
            "parameter {parameter:?} does not hold a Stripe signing secret (whsec_ and letters, digits, +, /, =, _ or -)"
        )));
    }
    Ok(secret.as_bytes().to_vec())
}

/// The Stripe settings of a cold start: the secret from SSM, the price map
/// from the environment.
pub async fn settings_from_env(app: &App, ssm: &aws_sdk_ssm::Client) -> Result<StripeSettings, ConfigError> {
    let parameter = std::env::var(SECRET_PARAMETER_ENV)
        .ok()
        .filter(|p| !p.trim().is_empty())
        .ok_or(ConfigError::Missing(SECRET_PARAMETER_ENV))?;
    let secret = load_secret(ssm, &parameter).await?;
    let price_plans =
        StripeSettings::price_plans(std::env::var(PRICE_PLANS_ENV).ok().as_deref(), &app.config.catalogue)
            .map_err(|reason| ConfigError::Invalid { name: PRICE_PLANS_ENV, reason })?;
    Ok(StripeSettings { secret, price_plans })
}

/// Answers one API Gateway event.
pub async fn handle(app: &App, stripe: &StripeSettings, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    Ok(serve(&req, async {
        if req.method() != Method::POST || path(&req) != "/v1/webhooks/stripe" {
            return Err(ApiError::not_found());
        }
        let signature = req.headers().get("stripe-signature").and_then(|v| v.to_str().ok());
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        webhook(app, stripe, signature, req.body().as_ref(), now).await
    })
    .await)
}
