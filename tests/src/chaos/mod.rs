//! The fault-injection suite (`make chaos`; a small configuration runs in
//! `make test`).
//!
//! Each run puts a fault proxy of its own (`infra/faultproxy.py`) between
//! the functions and the emulator at a fault rate, with a seeded RNG, runs the
//! workload ([`workload`]) on a fresh table, turns the faults off, lets the
//! outbox drain, and checks the invariants ([`checks`]) from the table
//! itself. Then it plants one defect per invariant into a copy of what the
//! run left and shows the check catches it, so no check passes vacuously.

pub mod checks;
pub mod workload;

use crate::drivers::{app, app_through, outbox_at};
use crate::emulator::{sent_emails, FaultProxy};
use crate::table::{attr, fresh_table, scan, Item};
use checks::World;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Instant;

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// One run per seed and rate.
    pub seeds: Vec<u64>,
    /// Probability that a request through the proxy gets a fault.
    pub rates: Vec<f64>,
    /// Accounts signed up per run.
    pub users: usize,
    /// Purchases, spends and plan changes per run.
    pub operations: usize,
    /// Operations in flight at once.
    pub concurrency: usize,
}

impl Config {
    /// The configuration `make test` runs: one seed at a 30% fault rate.
    pub fn small() -> Config {
        Config { seeds: vec![1], rates: vec![0.3], users: 10, operations: 40, concurrency: 8 }
    }

    /// [`Config::small`] with what the environment overrides:
    /// `CHAOS_SEEDS="1 2 3"`, `CHAOS_RATES="0.15 0.3"`, `CHAOS_USERS`,
    /// `CHAOS_OPERATIONS`, `CHAOS_CONCURRENCY`.
    pub fn from_env() -> Config {
        let small = Config::small();
        let list =
            |name: &str| std::env::var(name).ok().map(|v| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>());
        let number =
            |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
        Config {
            seeds: list("CHAOS_SEEDS").map_or(small.seeds, |v| v.iter().filter_map(|s| s.parse().ok()).collect()),
            rates: list("CHAOS_RATES").map_or(small.rates, |v| v.iter().filter_map(|s| s.parse().ok()).collect()),
            users: number("CHAOS_USERS", small.users),
            operations: number("CHAOS_OPERATIONS", small.operations),
            concurrency: number("CHAOS_CONCURRENCY", small.concurrency),
        }
    }
}

/// Runs every configured run; prints what it injected and checked, and ends
/// with `N passed, M failed`. Returns whether everything passed.
pub async fn run(config: &Config) -> bool {
    let (mut passed, mut failed) = (0, 0);
    for &seed in &config.seeds {
        for &rate in &config.rates {
            let (p, f) = run_one(config, seed, rate).await;
            passed += p;
            failed += f;
        }
    }
    println!("chaos: {passed} passed, {failed} failed");
    failed == 0
}

fn counts(map: &Value) -> String {
    let mut parts: Vec<(String, u64)> =
        map.as_object().into_iter().flatten().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect();
    parts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let total: u64 = parts.iter().map(|p| p.1).sum();
    let list: Vec<String> = parts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    format!("{total} ({})", list.join(", "))
}

async fn run_one(config: &Config, seed: u64, rate: f64) -> (usize, usize) {
    let proxy = FaultProxy::start();
    let table = fresh_table(&app().await).await;
    let app = app_through(&proxy.url, &table).await;
    println!("chaos run: seed {seed}, fault rate {rate:.2}, table {table}");

    proxy.inject(rate, seed).await;
    let started = Instant::now();
    let (ops, tally) = workload::run(&app, seed, config.users, config.operations, config.concurrency).await;
    let stats = proxy.report().await;
    proxy.inject(0.0, seed).await;
    let faulted = started.elapsed();

    // Faults off: what is pending is sent by the scheduled sender, as in production.
    let mut drains = 0;
    for day in 1..=12 {
        let time = credits::cycle::format_time(credits::cycle::now() + chrono::Duration::days(day));
        let report = outbox_at(&app, &time).await;
        drains += 1;
        let busy = ["sent", "retried", "failed", "errors"].iter().any(|k| report[k].as_u64().unwrap_or(0) > 0);
        if !busy && report["remaining"] == false {
            break;
        }
    }

    let items: Vec<Item> = scan(&app).await;
    let addresses: HashSet<String> =
        items.iter().filter(|i| attr(i, "sk") == "ACCOUNT").map(|i| attr(i, "email").to_owned()).collect();
    let ses: Vec<Value> = sent_emails()
        .await
        .into_iter()
        .filter(|m| m["to"].as_array().into_iter().flatten().any(|a| a.as_str().is_some_and(|a| addresses.contains(a))))
        .collect();
    let emails = items.iter().filter(|i| attr(i, "sk") == "EMAIL").count();
    let lost_ses_answers = stats["faults"]["reset_after"]["SendEmail"].as_u64().unwrap_or(0) as usize;
    let world = World { items, ops, ses, panics: tally.panics, lost_ses_answers };

    let ok = world.ops.iter().filter(|o| (200..300).contains(&o.status())).count();
    let refused = world.ops.iter().filter(|o| (400..500).contains(&o.status())).count();
    println!(
        "  workload: {} operations ({ok} 2xx, {refused} 4xx; {} sent by concurrent duplicates), {} scheduled runs, in {:.1} s",
        world.ops.len(),
        tally.duplicated,
        tally.scheduled,
        faulted.as_secs_f64()
    );
    println!("  callers: {} requests, {} retries after a 5xx", tally.attempts, tally.retries);
    println!("  AWS requests through the proxy: {}", counts(&stats["requests"]));
    let mut by_kind = serde_json::Map::new();
    for (kind, ops) in stats["faults"].as_object().into_iter().flatten() {
        let n: u64 = ops.as_object().into_iter().flatten().filter_map(|(_, v)| v.as_u64()).sum();
        by_kind.insert(kind.clone(), json!(n));
    }
    println!("  faults injected: {}", counts(&Value::Object(by_kind)));
    println!(
        "  emails: {emails} queued, {} copies accepted by SES ({} duplicates; {} SES answers lost), outbox drained in {drains} runs",
        world.ses.len(),
        world.ses.len().saturating_sub(emails),
        world.lost_ses_answers
    );

    let (mut passed, mut failed) = (0, 0);
    for check in checks::checks() {
        let violations = (check.run)(&world);
        if violations.is_empty() {
            passed += 1;
            println!("  [pass] {}", check.name);
        } else {
            failed += 1;
            println!("  [FAIL] {} ({} violations)", check.name, violations.len());
            for v in violations.iter().take(10) {
                println!("         {v}");
            }
        }
    }
    let plants = checks::plants();
    let mut caught = 0;
    for plant in &plants {
        let mut planted = world.clone();
        let check = checks::checks().into_iter().find(|c| c.name == plant.check);
        let result = match ((plant.plant)(&mut planted), check) {
            (Some(()), Some(check)) => {
                let violations = (check.run)(&planted);
                if violations.is_empty() {
                    "NOT caught".to_owned()
                } else {
                    format!("caught: {}", violations[0])
                }
            }
            (None, _) => "NOT planted (this run gave nothing to plant it on)".to_owned(),
            (_, None) => "NOT caught (no such check)".to_owned(),
        };
        if result.starts_with("caught") {
            caught += 1;
            passed += 1;
        } else {
            failed += 1;
            println!("  [FAIL] self-test: {}: {result}", plant.name);
        }
    }
    println!("  self-test: {} planted defects, {caught} caught", plants.len());
    (passed, failed)
}
