//! `rollover`: the hourly billing-cycle rollover (EventBridge schedule).

use credits::ops::rollover::{run, Report, CONCURRENCY};
use credits::ops::schedule::{event_time, Budget, Deadline};
use credits::App;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

/// Handles one scheduled event: an EventBridge rule's event or a Scheduler
/// payload `{"time": ...}`.
pub async fn handle(app: &App, event: LambdaEvent<Value>) -> Result<Report, Error> {
    let now = event_time(&event.payload)?;
    let budget = Budget::new(Deadline::from_context_ms(event.context.deadline));
    let started = std::time::Instant::now();
    let report = run(&app.store, &app.config.catalogue, now, &budget, CONCURRENCY).await;
    tracing::info!(
        time = %credits::cycle::format_time(now),
        rolled_over = report.rolled_over,
        cycles = report.cycles,
        errors = report.errors,
        remaining = report.remaining,
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "rollover done"
    );
    Ok(report)
}
