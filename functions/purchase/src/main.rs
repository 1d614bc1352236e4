//! `purchase`: `POST /v1/purchases` (service route, IAM).

use credits::runtime::run;
use credits::{telemetry, App, Mail};
use lambda_http::{service_fn, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let app = App::from_env(Mail::Required)?;
    run(service_fn(|req| purchase::handle(&app, req))).await
}
