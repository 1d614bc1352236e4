//! `stripe-webhook`: `POST /v1/webhooks/stripe` (public; authenticity comes from the Stripe signature).

use credits::runtime::run;
use credits::{telemetry, App, Mail};
use lambda_http::{service_fn, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let sdk = credits::sdk::from_env()?;
    let app = App::from_sdk(&sdk, Mail::Required)?;
    let ssm = credits::sdk::partition::build(&sdk, aws_sdk_ssm::Client::new);
    let stripe = match stripe_webhook::settings_from_env(&app, &ssm).await {
        Ok(stripe) => stripe,
        Err(e) => {
            tracing::error!(error = %e, "cold start failed: Stripe settings");
            return Err(e.into());
        }
    };
    run(service_fn(|req| stripe_webhook::handle(&app, &stripe, req))).await
}
