//! Rollover benchmark: N due accounts (20,000 unless BENCH_ACCOUNTS says
//! otherwise) signed up through the real handler in the emulator, then one
//! rollover invocation over all of them. Prints accounts per second,
//! DynamoDB requests per account, and the CPU time per account of the
//! function's own process. Run with `make bench`.

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

    log.clear();
    let cpu_before = cpu_time();
    let started = Instant::now();
    let mut ctx = lambda_runtime::Context::default();
    ctx.deadline = epoch_ms_in(Duration::from_secs(3_600));
    let event = lambda_runtime::LambdaEvent::new(json!({"time": "2026-03-01T00:00:00Z"}), ctx);
    let report = rollover::handle(&app, event).await.expect("rollover");
    let wall = started.elapsed();
    let cpu = cpu_before.zip(cpu_time()).map(|(a, b)| b.saturating_sub(a));
    assert_eq!(report.rolled_over as usize, accounts, "every account rolled over once");
    assert!(!report.remaining);

    let ops = log.operations();
    let mut by_op = std::collections::BTreeMap::new();
    for op in &ops {
        *by_op.entry(op.as_str()).or_insert(0usize) += 1;
    }
    let n = accounts as f64;
    println!("rollover of {accounts} accounts ({} cycles) against the local emulator:", report.cycles);
    println!("  wall time            {:>10.2} s", wall.as_secs_f64());
    println!("  accounts per second  {:>10.0}", n / wall.as_secs_f64());
    println!("  DynamoDB requests    {:>10} ({:.3} per account) {by_op:?}", ops.len(), ops.len() as f64 / n);
    match cpu {
        Some(cpu) => println!(
            "  function CPU time    {:>10.2} s ({:.1} µs per account; the emulator's own CPU is not counted)",
            cpu.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / n
        ),
        None => println!("  function CPU time    unavailable (no /proc/self/stat)"),
    }
}
