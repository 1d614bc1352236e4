//! `rollover`: the hourly billing-cycle rollover (EventBridge schedule).

use credits::ops::rollover::{run, Report, CONCURRENCY};
use credits::ops::schedule::{event_time, Budget, Deadline, ShardGroup};
use credits::App;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

/// Handles one scheduled event: an EventBridge rule's event or a Scheduler
/// payload `{"time": ...}`, optionally naming the group of shards to work
/// on (`{"shard_group": 0, "shard_groups": 4}`; every shard by default).
pub async fn handle(app: &App, event: LambdaEvent<Value>) -> Result<Report, Error> {
    let now = event_time(&event.payload)?;
    let shards = ShardGroup::of_event(&event.payload)?;
    let budget = Budget::new(Deadline::from_context_ms(event.context.deadline));
    let started = std::time::Instant::now();
    let report = run(&app.store, &app.config.catalogue, now, shards, &budget, CONCURRENCY).await;
    tracing::info!(
        time = %credits::cycle::format_time(now),
        shard_group = shards.group,
        shard_groups = shards.of,
        rolled_over = report.rolled_over,
        cycles = report.cycles,
        errors = report.errors,
        remaining = report.remaining,
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "rollover done"
    );
    Ok(report)
}
