//! `email-outbox`: sends pending emails every 5 minutes (EventBridge schedule).

use credits::{telemetry, App, Mail};
use lambda_runtime::{run, service_fn, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let app = App::from_env(Mail::Required)?;
    run(service_fn(|event| email_outbox::handle(&app, event))).await
}
