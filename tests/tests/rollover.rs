//! The scheduled `rollover`, against the emulator, each test on its own table.
//!
//! A request rolls over an account whose cycle has ended by the clock before
//! it decides (the last tests here), so the tests of the scheduled run sign
//! their accounts up in the 2090s: not due by the clock, due at the times the
//! tests give the run.

use integration_tests::*;
use serde_json::json;
use std::time::Duration;

async fn account_json(app: &credits::App, user: &str) -> serde_json::Value {
    account_event(app, &user_event("balance.json", Some(user), "")).await.json
}

/// The cycle end as stored, which is what a run wrote: the API shows an
/// account whose cycle has ended by the clock rolled over, written or not.
async fn stored_cycle_end(app: &credits::App, user: &str) -> String {
    attr(&account_item(app, user).await, "cycle_end").to_owned()
}

#[tokio::test]
async fn month_end_anchors_and_leap_years_hold_across_cycles_and_other_buckets_carry_over() {
    let app = app_on_fresh_table(&[]).await;
    let (user, code) = new_user_since(&app, "pro", "2096-01-31T10:00:00Z").await;
    // A referred friend whose own cycle is never due in this test: +250 bonus.
    let friend = json!({"user_id": unique("friend"), "email": "friend@example.net", "referral_code": code, "signed_up_at": "2096-04-15T00:00:00Z"});
    assert_eq!(signup(&app, friend).await.json["referral"]["status"], "rewarded");
    assert_eq!(
        buy(&app, json!({"user_id": user, "payment_id": "p", "amount_cents": 100, "currency": "USD"})).await.status,
        201
    );
    assert_eq!(spend(&app, json!({"user_id": user, "spend_id": "s", "credits": 1200})).await.status, 201);

    let early = rollover_at(&app, "2096-02-29T09:59:59Z", 0).await;
    assert_eq!(early["rolled_over"], 0, "not due a second early");
    let first = rollover_at(&app, "2096-02-29T10:00:00Z", 0).await;
    assert_eq!(first, json!({"rolled_over": 1, "cycles": 1, "errors": 0, "remaining": false}));
    let a = account_json(&app, &user).await;
    assert_eq!(
        (a["cycle_start"].as_str(), a["cycle_end"].as_str()),
        (Some("2096-02-29T10:00:00Z"), Some("2096-03-31T10:00:00Z"))
    );
    assert_eq!(a["balance"], json!({"plan": 5000, "bonus": 250, "flexible": 300, "held": 0, "debt": 0, "total": 5550}));
    assert_eq!(rollover_at(&app, "2096-02-29T10:00:00Z", 0).await["rolled_over"], 0, "once per cycle");

    let later = rollover_at(&app, "2096-05-01T00:00:00Z", 0).await;
    assert_eq!(later, json!({"rolled_over": 1, "cycles": 2, "errors": 0, "remaining": false}));
    let a = account_json(&app, &user).await;
    assert_eq!(a["cycle_end"], "2096-05-31T10:00:00Z");
    assert_eq!(a["balance"]["bonus"], 250);
    assert_eq!(a["balance"]["flexible"], 300);
    let kinds: Vec<(String, i64, String)> =
        ledger_kinds(&app, &user).await.into_iter().filter(|(k, ..)| k == "expire" || k == "cycle_grant").collect();
    assert_eq!(
        kinds,
        [
            ("expire".into(), -3800, "rollover:2096-02-29T10:00:00Z".into()),
            ("cycle_grant".into(), 5000, "rollover:2096-02-29T10:00:00Z".into()),
            ("expire".into(), -5000, "rollover:2096-03-31T10:00:00Z".into()),
            ("cycle_grant".into(), 5000, "rollover:2096-03-31T10:00:00Z".into()),
            ("expire".into(), -5000, "rollover:2096-04-30T10:00:00Z".into()),
            ("cycle_grant".into(), 5000, "rollover:2096-04-30T10:00:00Z".into()),
        ]
    );
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn three_missed_cycles_catch_up_in_one_run_and_expire_only_what_remains() {
    let app = app_on_fresh_table(&[]).await;
    let user = new_user_since(&app, "free", "2097-01-15T08:00:00Z").await.0;
    assert_eq!(spend(&app, json!({"user_id": user, "spend_id": "all", "credits": 1000})).await.status, 201);
    let report = rollover_at(&app, "2097-04-20T00:00:00Z", 0).await;
    assert_eq!(report, json!({"rolled_over": 1, "cycles": 3, "errors": 0, "remaining": false}));
    let kinds: Vec<String> = ledger_kinds(&app, &user).await.into_iter().map(|(k, ..)| k).collect();
    assert_eq!(kinds, ["signup_grant", "spend", "cycle_grant", "expire", "cycle_grant", "expire", "cycle_grant"]);
    assert_eq!(account_json(&app, &user).await["cycle_end"], "2097-05-15T08:00:00Z");
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn a_downgrade_takes_effect_at_the_rollover_and_the_new_cycle_starts_afresh() {
    let app = app_on_fresh_table(&[]).await;
    let user = new_user_since(&app, "pro", "2097-03-10T00:00:00Z").await.0;
    assert_eq!(
        change_plan(&app, json!({"user_id": user, "change_id": "down", "plan": "free"})).await.json["account"]
            ["balance"]["plan"],
        5000
    );
    rollover_at(&app, "2097-04-10T00:00:00Z", 0).await;
    assert_eq!(account_json(&app, &user).await["balance"]["plan"], 1000, "the new plan's allowance");
    // In the new cycle the largest allowance granted is free's: pro tops up 4,000 again.
    let up = change_plan(&app, json!({"user_id": user, "change_id": "up", "plan": "pro"})).await;
    assert_eq!(up.json["account"]["balance"]["plan"], 5000);
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn the_referral_cap_counts_afresh_each_cycle() {
    let app = app_on_fresh_table(&[("CREDITS_CONFIG", r#"{"referral_cap_per_cycle": 1}"#)]).await;
    let (_, code) = new_user_since(&app, "free", "2097-01-01T00:00:00Z").await;
    let status = |a: Answer| a.json["referral"]["status"].as_str().unwrap_or("").to_owned();
    let friend = |n: u32| json!({"user_id": unique(&format!("f{n}")), "email": format!("f{n}@example.net"), "referral_code": code, "signed_up_at": "2097-01-02T00:00:00Z"});
    assert_eq!(status(signup(&app, friend(1)).await), "rewarded");
    assert_eq!(status(signup(&app, friend(2)).await), "cap_reached");
    rollover_at(&app, "2097-02-01T00:00:00Z", 0).await;
    assert_eq!(status(signup(&app, friend(3)).await), "rewarded");
}

/// A `signed_up_at` 40 days ago: the first cycle ended 9 to 12 days ago, the
/// second ends 16 to 22 days from now.
fn forty_days_ago() -> String {
    credits::cycle::format_time(credits::cycle::now() - chrono::Duration::days(40))
}

fn kinds(entries: Vec<(String, i64, String)>) -> Vec<String> {
    entries.into_iter().map(|(kind, ..)| kind).collect()
}

#[tokio::test]
async fn a_request_on_an_account_whose_cycle_ended_rolls_it_over_first() {
    let app = app_on_fresh_table(&[]).await;
    let user = new_user_since(&app, "pro", &forty_days_ago()).await.0;
    let s = spend(&app, json!({"user_id": user, "spend_id": "s", "credits": 1200})).await;
    assert_eq!(s.status, 201, "{}", s.text);
    assert_eq!(kinds(ledger_kinds(&app, &user).await), ["signup_grant", "expire", "cycle_grant", "spend"]);
    let a = account_json(&app, &user).await;
    let end = a["cycle_end"].as_str().and_then(credits::cycle::parse_time).expect("cycle end");
    assert!(end > credits::cycle::now(), "the account is current: {end}");
    assert_eq!(a["balance"]["plan"], 3800);
    let now = credits::cycle::format_time(credits::cycle::now());
    assert_eq!(rollover_at(&app, &now, 0).await["rolled_over"], 0, "nothing left for the scheduled run");
    // A replay finds its record and writes nothing more.
    let again = spend(&app, json!({"user_id": user, "spend_id": "s", "credits": 1200})).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(ledger_kinds(&app, &user).await.len(), 4);
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn a_referrer_whose_cycle_ended_is_rolled_over_before_it_is_paid() {
    let app = app_on_fresh_table(&[("CREDITS_CONFIG", r#"{"referral_cap_per_cycle": 1}"#)]).await;
    let (referrer, code) = new_user_since(&app, "free", &forty_days_ago()).await;
    let friend = |n: u32| json!({"user_id": unique(&format!("f{n}")), "email": format!("f{n}@example.net"), "referral_code": code});
    assert_eq!(signup(&app, friend(1)).await.json["referral"]["status"], "rewarded");
    assert_eq!(kinds(ledger_kinds(&app, &referrer).await), ["signup_grant", "expire", "cycle_grant", "referral_bonus"]);
    assert_ledger_explains_balance(&app, &referrer).await;
}

/// A `signed_up_at` whose account has a cycle ending at `end`: whole months
/// before it, on the same day of the month (so no month-end clamping moves
/// the anchor).
fn anchored_for(end: credits::cycle::Time) -> String {
    (1..=48)
        .filter_map(|months| end.checked_sub_months(chrono::Months::new(months)))
        .find(|start| chrono::Datelike::day(start) == chrono::Datelike::day(&end))
        .map(credits::cycle::format_time)
        .expect("a month with the same day within four years")
}

#[tokio::test]
async fn the_referral_cap_counts_afresh_once_a_cycle_ends_before_any_rollover_run() {
    let app = app_on_fresh_table(&[("CREDITS_CONFIG", r#"{"referral_cap_per_cycle": 1}"#)]).await;
    let end = credits::cycle::now() + chrono::Duration::seconds(6);
    let (referrer, code) = new_user_since(&app, "free", &anchored_for(end)).await;
    let friend = |n: u32| json!({"user_id": unique(&format!("f{n}")), "email": format!("f{n}@example.net"), "referral_code": code});
    assert_eq!(signup(&app, friend(1)).await.json["referral"]["status"], "rewarded");
    assert_eq!(signup(&app, friend(2)).await.json["referral"]["status"], "cap_reached");
    assert_eq!(account_json(&app, &referrer).await["cycle_end"], credits::cycle::format_time(end), "the cycle in use");
    let wait = (end - credits::cycle::now()).to_std().unwrap_or_default() + Duration::from_secs(1);
    tokio::time::sleep(wait).await;
    // The cycle has ended; no scheduled run has come. The next signup starts the new cycle's count.
    assert_eq!(signup(&app, friend(3)).await.json["referral"]["status"], "rewarded");
    assert_eq!(signup(&app, friend(4)).await.json["referral"]["status"], "cap_reached");
    let tail: Vec<String> = kinds(ledger_kinds(&app, &referrer).await).into_iter().rev().take(3).collect();
    assert_eq!(tail, ["referral_bonus", "cycle_grant", "expire"]);
    assert_ledger_explains_balance(&app, &referrer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn four_racing_invocations_roll_each_account_over_once() {
    let app = app_on_fresh_table(&[]).await;
    let mut users = Vec::new();
    for i in 0..40 {
        users.push(new_user_since(&app, ["free", "basic", "pro"][i % 3], "2026-01-31T12:00:00Z").await.0);
    }
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { rollover_at(&app, "2026-03-01T00:00:00Z", 0).await })
        })
        .collect();
    let mut rolled = 0;
    for run in runs {
        let report = run.await.expect("run");
        assert_eq!(report["remaining"], false);
        rolled += report["rolled_over"].as_u64().unwrap_or(0);
    }
    assert_eq!(rolled, 40, "each account rolled over by exactly one invocation");
    for user in &users {
        let grants = ledger_kinds(&app, user).await.into_iter().filter(|(k, ..)| k == "cycle_grant").count();
        assert_eq!(grants, 1, "{user}");
        assert_eq!(stored_cycle_end(&app, user).await, "2026-03-31T12:00:00Z");
        assert_ledger_explains_balance(&app, user).await;
    }
}

#[tokio::test]
async fn a_deadline_a_few_milliseconds_away_leaves_the_work_whole_for_the_next_run() {
    let app = app_on_fresh_table(&[]).await;
    let mut users = Vec::new();
    for _ in 0..10 {
        users.push(new_user_since(&app, "free", "2026-01-31T12:00:00Z").await.0);
    }
    let hurried = rollover_at(&app, "2026-06-01T00:00:00Z", epoch_ms_in(Duration::from_millis(5))).await;
    assert_eq!(hurried["remaining"], true);
    assert_eq!(hurried["rolled_over"], 0);
    for user in &users {
        assert_eq!(stored_cycle_end(&app, user).await, "2026-02-28T12:00:00Z", "untouched, not half-rolled");
        assert_ledger_explains_balance(&app, user).await;
    }
    let next = rollover_at(&app, "2026-06-01T00:00:00Z", epoch_ms_in(Duration::from_secs(60))).await;
    assert_eq!(next, json!({"rolled_over": 10, "cycles": 40, "errors": 0, "remaining": false}));
    for user in &users {
        assert_eq!(stored_cycle_end(&app, user).await, "2026-06-30T12:00:00Z");
        assert_ledger_explains_balance(&app, user).await;
    }
}

#[tokio::test]
async fn the_eventbridge_rule_event_is_accepted_and_a_bad_time_is_refused() {
    let app = app_on_fresh_table(&[]).await;
    let user = new_user_since(&app, "free", "2026-01-31T10:00:00Z").await.0;
    let event = lambda_runtime::LambdaEvent::new(fixture("scheduled-event.json"), lambda_runtime::Context::default());
    let report = rollover::handle(&app, event).await.expect("runs");
    assert_eq!((report.rolled_over, report.cycles), (1, 1));
    assert_eq!(stored_cycle_end(&app, &user).await, "2026-03-31T10:00:00Z");
    let bad = lambda_runtime::LambdaEvent::new(json!({"time": "tomorrow"}), lambda_runtime::Context::default());
    assert!(rollover::handle(&app, bad).await.is_err());
}

async fn rollover_group(app: &credits::App, time: &str, group: u32, of: u32) -> serde_json::Value {
    let event = lambda_runtime::LambdaEvent::new(
        json!({"time": time, "shard_group": group, "shard_groups": of}),
        lambda_runtime::Context::default(),
    );
    serde_json::to_value(rollover::handle(app, event).await.expect("rollover runs")).expect("report")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn invocations_on_disjoint_shard_groups_share_the_backlog_and_roll_each_account_once() {
    let app = app_on_fresh_table(&[]).await;
    let mut users = Vec::new();
    for i in 0..40 {
        users.push(new_user_since(&app, ["free", "pro"][i % 2], "2026-01-31T12:00:00Z").await.0);
    }
    // Four groups at once, plus a second invocation racing on group 0.
    let runs: Vec<_> = [(0, 4), (1, 4), (2, 4), (3, 4), (0, 4)]
        .into_iter()
        .map(|(group, of)| {
            let app = app.clone();
            tokio::spawn(async move { rollover_group(&app, "2026-03-01T00:00:00Z", group, of).await })
        })
        .collect();
    let mut rolled = 0;
    let mut by_group = Vec::new();
    for run in runs {
        let report = run.await.expect("run");
        assert_eq!((report["errors"].as_u64(), report["remaining"].as_bool()), (Some(0), Some(false)), "{report}");
        rolled += report["rolled_over"].as_u64().unwrap_or(0);
        by_group.push(report["rolled_over"].as_u64().unwrap_or(0));
    }
    assert_eq!(rolled, 40, "each account rolled over by exactly one invocation: {by_group:?}");
    assert!(by_group[1] > 0 && by_group[2] > 0 && by_group[3] > 0, "the groups split the work: {by_group:?}");
    for user in &users {
        let grants = ledger_kinds(&app, user).await.into_iter().filter(|(k, ..)| k == "cycle_grant").count();
        assert_eq!(grants, 1, "{user}");
        assert_ledger_explains_balance(&app, user).await;
    }
    let bad = lambda_runtime::LambdaEvent::new(
        json!({"shard_group": 4, "shard_groups": 4}),
        lambda_runtime::Context::default(),
    );
    assert!(rollover::handle(&app, bad).await.is_err(), "a group outside the split is refused");
}

/// An account far behind (signed up in 1966, 730 cycles and more ago) is rolled
/// over for as long as a request may spend on it, 3 s, then the request
/// answers 503 `unavailable`: nothing spent, and the cycles rolled over so far
/// kept, so each retry carries on from there until one goes through. The
/// fault proxy answers each of the table's transactions 250 ms late, so 3 s
/// cover at most 12 writes of 40 cycles, whatever the machine's speed.
#[tokio::test]
async fn a_request_on_an_account_too_far_behind_answers_503_and_its_retries_carry_on() {
    let proxy = FaultProxy::start();
    let table = fresh_table(&app().await).await;
    let app = app_through(&proxy.url, &table).await;
    let user = new_user_since(&app, "pro", "1966-01-01T00:00:00Z").await.0;
    proxy.delay("TransactWriteItems", &table, 1_000, 0.25).await;
    let body = json!({"user_id": user, "spend_id": "s", "credits": 100});
    // Cycles rolled over so far, from the account item alone: a query of a
    // ledger of hundreds of cycles holds the emulator (one request at a
    // time) for 2 s, and every other test's request with it.
    let signed_up = credits::cycle::parse_time("1966-01-01T00:00:00Z").and_then(credits::cycle::Cycle::first);
    let rolled_over = |account: &Item| {
        let end = attr(account, "cycle_end").to_owned();
        std::iter::successors(signed_up, credits::cycle::Cycle::next)
            .take(10_000)
            .position(|c| credits::cycle::format_time(c.end) == end)
            .unwrap_or_else(|| panic!("{end} is no cycle end of the signup's"))
    };

    let mut rolled = 0;
    let mut answers = Vec::new();
    loop {
        let a = spend(&app, body.clone()).await;
        answers.push(a.status);
        if a.status == 201 {
            break;
        }
        assert_eq!((a.status, a.code()), (503, "unavailable"), "{}", a.text);
        let account = account_item(&app, &user).await;
        assert_eq!(attr_n(&account, "bal_plan"), 5000, "nothing spent");
        let now = rolled_over(&account);
        assert!(now > rolled && now - rolled <= 13 * 40, "progress kept: {rolled} then {now} cycles");
        rolled = now;
        assert!(answers.len() < 5, "{answers:?}");
    }
    let kinds = kinds(ledger_kinds(&app, &user).await);
    assert_eq!(kinds.last().map(String::as_str), Some("spend"), "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| *k == "spend").count(), 1, "spent once");
    assert_eq!(
        kinds.iter().filter(|k| *k == "cycle_grant").count(),
        rolled_over(&account_item(&app, &user).await),
        "a grant per cycle"
    );
    assert_eq!(answers[0], 503, "the first request could not catch up 730 cycles: {answers:?}");
    let a = account_json(&app, &user).await;
    let end = a["cycle_end"].as_str().and_then(credits::cycle::parse_time).expect("cycle end");
    assert!(end > credits::cycle::now(), "current: {end}");
    assert_eq!(a["balance"]["plan"], 4900);
    assert_ledger_explains_balance(&app, &user).await;
}
