//! `spend`: `POST /v1/spends`, `POST /v1/holds`, `POST /v1/holds/{hold_id}/capture`, `POST /v1/holds/{hold_id}/release` (service routes, IAM).

use credits::runtime::run;
use credits::{telemetry, App, Mail};
use lambda_http::{service_fn, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let app = App::from_env(Mail::Required)?;
    run(service_fn(|req| spend::handle(&app, req))).await
}
