//! `email-outbox`: sends pending emails every 5 minutes (EventBridge schedule).

use credits::ops::outbox::{run, Report};
use credits::ops::schedule::{event_time, Budget, Deadline};
use credits::App;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

/// Handles one scheduled event: an EventBridge rule's event or a Scheduler
/// payload `{"time": ...}`.
pub async fn handle(app: &App, event: LambdaEvent<Value>) -> Result<Report, Error> {
    let now = event_time(&event.payload)?;
    let mailer = app.mailer.as_ref().ok_or("email-outbox needs SENDER_EMAIL")?;
    let budget = Budget::new(Deadline::from_context_ms(event.context.deadline));
    let started = std::time::Instant::now();
    let report = run(&app.store, mailer, now, &budget).await;
    tracing::info!(
        time = %credits::cycle::format_time(now),
        sent = report.sent,
        retried = report.retried,
        failed = report.failed,
        throttled = report.throttled,
        errors = report.errors,
        remaining = report.remaining,
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "email outbox done"
    );
    Ok(report)
}
