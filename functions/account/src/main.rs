//! `account`: `GET /v1/me/balance`, `/v1/me/ledger`, `/v1/me/referral`, `/v1/me/holds`, `/v1/me/credit-options` (user routes, JWT).

use credits::runtime::run;
use credits::{telemetry, App, Mail};
use lambda_http::{service_fn, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let app = App::from_env(Mail::NotUsed)?;
    run(service_fn(|req| account::handle(&app, req))).await
}
