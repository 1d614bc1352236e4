//! `referral-signup`: `POST /v1/signups` (service route, IAM).

use credits::runtime::run;
use credits::{telemetry, App, Mail};
use lambda_http::{service_fn, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let app = App::from_env(Mail::Required)?;
    run(service_fn(|req| referral_signup::handle(&app, req))).await
}
