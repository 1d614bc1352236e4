//! `rollover`: the hourly billing-cycle rollover (EventBridge schedule).

use credits::{telemetry, App, Mail};
use lambda_runtime::{run, service_fn, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let app = App::from_env(Mail::NotUsed)?;
    run(service_fn(|event| rollover::handle(&app, event))).await
}
