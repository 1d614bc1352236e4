//! Rollover benchmark: N due accounts (20,000 unless BENCH_ACCOUNTS says
//! otherwise) signed up through the real handler in the emulator, then one
//! rollover invocation over all of them, then their next cycle rolled over
//! by two invocations at once on disjoint shard groups (the template's
//! fan-out). Prints accounts per second, DynamoDB requests per account, and
//! the CPU time per account of the function's own process. Run with
//! `make bench`.

use integration_tests::{app_with, epoch_ms_in, signup, RequestLog};
use serde_json::json;
use std::time::{Duration, Instant};

/// CPU time (user + system) of this process so far, from /proc/self/stat.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Linux reports in clock ticks of 1/100 s (USER_HZ) on every platform it runs Lambda on.
    Some(Duration::from_millis(ticks * 10))
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // built by `cargo test --all-targets`; only `cargo bench` runs it
    }
    let accounts: usize = std::env::var("BENCH_ACCOUNTS").ok().and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let log = RequestLog::default();
    let app = app_with(&[], Some(log.clone())).await;

    let started = Instant::now();
    let seeding: Vec<_> = (0..8)
        .map(|worker| {
            let app = app.clone();
            tokio::spawn(async move {
                for i in (worker..accounts).step_by(8) {
                    let plan = ["free", "basic", "pro", "business"][i % 4];
                    let body = json!({"user_id": format!("bench-{i}"), "email": format!("bench-{i}@example.com"),
                        "plan": plan, "signed_up_at": "2026-01-31T12:00:00Z"});
                    let a = signup(&app, body).await;
                    assert!(a.status == 201 || a.status == 200, "{}", a.text);
                }
            })
        })
        .collect();
    for task in seeding {
        task.await.expect("seeding");
    }
    println!("seeded {accounts} due accounts in {:.1} s", started.elapsed().as_secs_f64());

    // One invocation over every shard, then (on a second backlog as large)
    // two at once on disjoint halves of the shards, as the template's
    // fan-out runs them. Each invocation has its own request log.
    let single = invoke(&app, &log, json!({"time": "2026-03-01T00:00:00Z"})).await;
    assert_eq!(single.report.rolled_over as usize, accounts, "every account rolled over once");
    assert!(!single.report.remaining);
    let n = accounts as f64;
    println!(
        "\none invocation, every shard: {accounts} accounts ({} cycles) against the local emulator",
        single.report.cycles
    );
    println!(
        "  wall time            {:>10.2} s ({:.0} accounts/s)",
        single.wall.as_secs_f64(),
        n / single.wall.as_secs_f64()
    );
    print_requests("  DynamoDB requests", &single.requests, n);
    print_cpu("  function CPU time", single.cpu, n);

    // The next cycle is due a month later: the same accounts are a second backlog.
    let halves = [json!({"shard_group": 0, "shard_groups": 2}), json!({"shard_group": 1, "shard_groups": 2})];
    let logs = [RequestLog::default(), RequestLog::default()];
    let apps = [app_with(&[], Some(logs[0].clone())).await, app_with(&[], Some(logs[1].clone())).await];
    let cpu_before = cpu_time();
    let started = Instant::now();
    let runs = halves.iter().zip(apps.iter().zip(logs.iter())).map(|(group, (app, log))| {
        let mut event = group.clone();
        event["time"] = json!("2026-04-01T00:00:00Z");
        invoke(app, log, event)
    });
    let runs = futures::future::join_all(runs).await;
    let wall = started.elapsed();
    let cpu = cpu_before.zip(cpu_time()).map(|(a, b)| b.saturating_sub(a));
    let rolled: u64 = runs.iter().map(|r| r.report.rolled_over).sum();
    assert_eq!(rolled as usize, accounts, "the two halves together roll every account over once");
    assert!(runs.iter().all(|r| !r.report.remaining && r.report.errors == 0));
    println!("\ntwo invocations at once, shard groups 0 and 1 of 2: the next cycle of the same {accounts} accounts");
    println!(
        "  wall time            {:>10.2} s ({:.0} accounts/s; the emulator serves one request at a time)",
        wall.as_secs_f64(),
        n / wall.as_secs_f64()
    );
    for (i, run) in runs.iter().enumerate() {
        println!("  invocation {i}: {} accounts in {:.2} s", run.report.rolled_over, run.wall.as_secs_f64());
        print_requests("    DynamoDB requests", &run.requests, run.report.rolled_over as f64);
    }
    print_cpu("  function CPU time (both)", cpu, n);
}

struct Run {
    report: credits::ops::rollover::Report,
    wall: Duration,
    cpu: Option<Duration>,
    requests: Vec<String>,
}

async fn invoke(app: &credits::App, log: &RequestLog, event: serde_json::Value) -> Run {
    log.clear();
    let cpu_before = cpu_time();
    let started = Instant::now();
    let mut ctx = lambda_runtime::Context::default();
    ctx.deadline = epoch_ms_in(Duration::from_secs(3_600));
    let report = rollover::handle(app, lambda_runtime::LambdaEvent::new(event, ctx)).await.expect("rollover");
    let wall = started.elapsed();
    Run { report, wall, cpu: cpu_before.zip(cpu_time()).map(|(a, b)| b.saturating_sub(a)), requests: log.operations() }
}

fn print_requests(label: &str, ops: &[String], accounts: f64) {
    let mut by_op = std::collections::BTreeMap::new();
    for op in ops {
        *by_op.entry(op.as_str()).or_insert(0usize) += 1;
    }
    println!("{label:<23}{:>8} ({:.3} per account) {by_op:?}", ops.len(), ops.len() as f64 / accounts);
}

fn print_cpu(label: &str, cpu: Option<Duration>, accounts: f64) {
    match cpu {
        Some(cpu) => println!(
            "{label:<23}{:>8.2} s ({:.1} µs per account; the emulator's own CPU is not counted)",
            cpu.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / accounts
        ),
        None => println!("{label:<23}unavailable (no /proc/self/stat)"),
    }
}
