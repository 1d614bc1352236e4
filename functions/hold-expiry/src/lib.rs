//! `hold-expiry`: releases open holds past their `expires_at`, every minute (EventBridge schedule).

use credits::ops::holds::{expire_due, ExpiryReport};
use credits::ops::schedule::{event_time, Budget, Deadline};
use credits::App;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

/// Handles one scheduled event: an EventBridge rule's event or a Scheduler
/// payload `{"time": ...}`.
pub async fn handle(app: &App, event: LambdaEvent<Value>) -> Result<ExpiryReport, Error> {
    let now = event_time(&event.payload)?;
    let budget = Budget::new(Deadline::from_context_ms(event.context.deadline));
    let started = std::time::Instant::now();
    let report = expire_due(&app.store, &app.config.catalogue, now, &budget).await;
    tracing::info!(
        time = %credits::cycle::format_time(now),
        expired = report.expired,
        errors = report.errors,
        remaining = report.remaining,
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "hold expiry done"
    );
    Ok(report)
}
