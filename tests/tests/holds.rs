//! Holds through `spend` (`POST /v1/holds`, `.../capture`, `.../release`),
//! `account` (`GET /v1/me/holds`) and `hold-expiry`, against the emulator.

use integration_tests::*;
use serde_json::{json, Value};

async fn kinds(app: &credits::App, user: &str) -> Vec<String> {
    ledger_kinds(app, user).await.into_iter().map(|(k, ..)| k).collect()
}

/// A pro user with 5,000 plan, 500 bonus and 3,000 flexible credits.
async fn renderer(app: &credits::App) -> String {
    let (user, _) = new_user(app, "pro").await;
    let b = buy(app, json!({"user_id": user, "payment_id": "p", "amount_cents": 1000, "currency": "USD"})).await;
    assert_eq!(b.status, 201, "{}", b.text);
    let a = adjust(
        app,
        json!({"user_id": user, "adjustment_id": "b", "credits": 500, "bucket": "bonus", "reason": "promotion"}),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(
        balance(app, &user).await,
        json!({"plan": 5000, "bonus": 500, "flexible": 3000, "held": 0, "debt": 0, "total": 8500})
    );
    user
}

#[tokio::test]
async fn a_render_hold_of_8500_captured_for_7900_returns_the_rest() {
    let app = app().await;
    let user = renderer(&app).await;
    let h =
        hold(&app, json!({"user_id": user, "hold_id": "render-1", "credits": 8500, "feature": "video-render"})).await;
    assert_eq!(h.status, 201, "{}", h.text);
    assert_eq!(h.json["hold"]["from"], json!({"plan": 5000, "bonus": 500, "flexible": 3000}));
    assert_eq!((h.json["hold"]["status"].as_str(), h.json["hold"]["captured"].is_null()), (Some("open"), true));
    assert_eq!(h.json["balance"], json!({"plan": 0, "bonus": 0, "flexible": 0, "held": 8500, "debt": 0, "total": 0}));
    let listed = open_holds(&app, &user).await;
    assert_eq!(listed.json["holds"].as_array().map(Vec::len), Some(1), "{}", listed.text);
    assert_eq!(
        spend(&app, json!({"user_id": user, "spend_id": "meanwhile", "credits": 1})).await.code(),
        "insufficient_credits"
    );

    let c = settle_hold(&app, "render-1", "capture", json!({"user_id": user, "credits": 7900})).await;
    assert_eq!(c.status, 200, "{}", c.text);
    assert_eq!(
        (c.json["hold"]["status"].as_str(), c.json["hold"]["captured"].as_i64()),
        (Some("captured"), Some(7900))
    );
    assert_eq!(c.json["balance"], json!({"plan": 0, "bonus": 0, "flexible": 600, "held": 0, "debt": 0, "total": 600}));
    let tail: Vec<String> = kinds(&app, &user).await.into_iter().rev().take(3).collect();
    assert_eq!(tail, ["release", "capture", "hold"]);
    assert_eq!(open_holds(&app, &user).await.json["holds"], json!([]));

    let again = settle_hold(&app, "render-1", "capture", json!({"user_id": user, "credits": 7900})).await;
    assert_eq!((again.status, again.replayed, again.text.as_str()), (200, true, c.text.as_str()));
    let other = settle_hold(&app, "render-1", "capture", json!({"user_id": user, "credits": 8000})).await;
    assert_eq!((other.status, other.code()), (409, "hold_closed"), "{}", other.text);
    let late = settle_hold(&app, "render-1", "release", json!({"user_id": user})).await;
    assert_eq!((late.status, late.code()), (409, "hold_closed"), "{}", late.text);
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn a_release_gives_everything_back_and_settling_twice_differently_is_hold_closed() {
    let app = app().await;
    let (user, _) = new_user(&app, "basic").await;
    assert_eq!(hold(&app, json!({"user_id": user, "hold_id": "h", "credits": 1500})).await.status, 201);
    let r = settle_hold(&app, "h", "release", json!({"user_id": user})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!((r.json["hold"]["status"].as_str(), r.json["hold"]["captured"].is_null()), (Some("released"), true));
    assert_eq!(r.json["balance"]["plan"], 2000);
    let again = settle_hold(&app, "h", "release", json!({"user_id": user})).await;
    assert_eq!((again.status, again.replayed, again.text.as_str()), (200, true, r.text.as_str()));
    let capture = settle_hold(&app, "h", "capture", json!({"user_id": user, "credits": 10})).await;
    assert_eq!((capture.status, capture.code()), (409, "hold_closed"));
    let unknown = settle_hold(&app, "nope", "release", json!({"user_id": user})).await;
    assert_eq!((unknown.status, unknown.code()), (404, "hold_not_found"));
    let (other, _) = new_user(&app, "basic").await;
    let theirs = settle_hold(&app, "h", "release", json!({"user_id": other})).await;
    assert_eq!(theirs.code(), "hold_not_found", "a hold is found under its own user only");
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn a_hold_larger_than_the_total_is_402_and_holds_nothing() {
    let app = app().await;
    let (user, _) = new_user(&app, "free").await;
    let a = hold(&app, json!({"user_id": user, "hold_id": "big", "credits": 1001})).await;
    assert_eq!((a.status, a.code()), (402, "insufficient_credits"), "{}", a.text);
    assert_eq!(balance(&app, &user).await["held"], 0);
    assert_eq!(kinds(&app, &user).await, ["signup_grant"]);
    assert_eq!(open_holds(&app, &user).await.json["holds"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn forty_concurrent_holds_of_thirty_on_a_thousand_let_exactly_33_through() {
    let app = app().await;
    let (user, _) = new_user(&app, "free").await;
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let (app, body) = (app.clone(), json!({"user_id": user, "hold_id": format!("h{i}"), "credits": 30}));
            tokio::spawn(async move { hold(&app, body).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("task").status);
    }
    assert_eq!(
        (statuses.iter().filter(|s| **s == 201).count(), statuses.iter().filter(|s| **s == 402).count()),
        (33, 7)
    );
    assert_eq!(
        balance(&app, &user).await,
        json!({"plan": 10, "bonus": 0, "flexible": 0, "held": 990, "debt": 0, "total": 10})
    );
    assert_eq!(open_holds(&app, &user).await.json["holds"].as_array().map(Vec::len), Some(33));
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn racing_holds_spends_and_captures_never_overspend() {
    let app = app().await;
    let (user, _) = new_user(&app, "free").await; // 1,000
    for i in 0..5 {
        assert_eq!(
            hold(&app, json!({"user_id": user, "hold_id": format!("first{i}"), "credits": 100})).await.status,
            201
        );
    }
    let mut tasks: Vec<tokio::task::JoinHandle<Answer>> = Vec::new();
    for i in 0..5 {
        let (a, u) = (app.clone(), user.clone());
        tasks.push(tokio::spawn(async move {
            settle_hold(&a, &format!("first{i}"), "capture", json!({"user_id": u, "credits": 60})).await
        }));
        let (a, u) = (app.clone(), user.clone());
        tasks.push(tokio::spawn(async move {
            hold(&a, json!({"user_id": u, "hold_id": format!("more{i}"), "credits": 150})).await
        }));
        let (a, u) = (app.clone(), user.clone());
        tasks.push(tokio::spawn(async move {
            spend(&a, json!({"user_id": u, "spend_id": format!("s{i}"), "credits": 90})).await
        }));
    }
    for task in tasks {
        let a = task.await.expect("task");
        assert!([200, 201, 402].contains(&a.status), "{} {}", a.status, a.text);
    }
    let b = balance(&app, &user).await;
    assert!(b["total"].as_i64().is_some_and(|t| t >= 0), "{b}");
    let spent = 5 * 60; // captured
    let held_or_free = b["total"].as_i64().unwrap_or(0) + b["held"].as_i64().unwrap_or(0);
    let spends = ledger_kinds(&app, &user).await.iter().filter(|(k, ..)| k == "spend").count() as i64;
    assert_eq!(held_or_free + spent + spends * 90, 1_000, "every credit is somewhere: {b}");
    // The open holds' entries are exactly the holds the race left open.
    let listed = open_holds(&app, &user).await.json;
    let listed_credits: i64 =
        listed["holds"].as_array().into_iter().flatten().filter_map(|h| h["credits"].as_i64()).sum();
    assert_eq!(Some(listed_credits), b["held"].as_i64(), "{listed}");
    let entries = open_entries(&app, &user).await;
    assert_eq!(entries.len(), listed["holds"].as_array().map_or(0, Vec::len), "{entries:?}");
    assert!(entries.iter().all(|c| c.starts_with("OPENHOLD#more")), "the captured ones lost theirs: {entries:?}");
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn plan_credits_whose_cycle_ended_while_held_expire_at_capture() {
    let app = app_on_fresh_table(&[]).await;
    let (user, _) = new_user_since(&app, "pro", "2097-01-31T10:00:00Z").await;
    assert_eq!(
        buy(&app, json!({"user_id": user, "payment_id": "p", "amount_cents": 100, "currency": "USD"})).await.status,
        201
    );
    let h = hold(&app, json!({"user_id": user, "hold_id": "long", "credits": 5200, "expires_in_s": 86400})).await;
    assert_eq!(h.json["hold"]["from"], json!({"plan": 5000, "bonus": 0, "flexible": 200}));
    // The rollover does not count held plan credits as remaining: nothing to expire in the bucket.
    assert_eq!(rollover_at(&app, "2097-02-28T10:00:00Z", 0).await["rolled_over"], 1);
    let after = balance(&app, &user).await;
    assert_eq!((after["plan"].as_i64(), after["held"].as_i64()), (Some(5000), Some(5200)));
    let c = settle_hold(&app, "long", "capture", json!({"user_id": user, "credits": 3000})).await;
    assert_eq!(c.status, 200, "{}", c.text);
    // 3,000 captured from the plan part; its other 2,000 belonged to the ended cycle: expired; flexible
    // 200 back beside the 100 never held.
    assert_eq!(
        c.json["balance"],
        json!({"plan": 5000, "bonus": 0, "flexible": 300, "held": 0, "debt": 0, "total": 5300})
    );
    let tail: Vec<(String, i64)> =
        ledger_kinds(&app, &user).await.into_iter().rev().take(3).map(|(k, p, _)| (k, p)).collect();
    assert_eq!(tail, [("release".to_owned(), 0), ("expire".to_owned(), 0), ("capture".to_owned(), 0)]);
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn the_expiry_of_a_hold_whose_cycle_ended_rolls_the_account_over_and_expires_its_plan_part() {
    let app = app_on_fresh_table(&[]).await;
    let (user, _) = new_user_since(&app, "pro", "2097-01-31T10:00:00Z").await;
    let h = hold(&app, json!({"user_id": user, "hold_id": "h", "credits": 5000, "expires_in_s": 60})).await;
    assert_eq!(h.json["hold"]["from"], json!({"plan": 5000, "bonus": 0, "flexible": 0}));
    // The sweep's time is past the hold's expiry and past the account's cycle end, before any rollover run.
    assert_eq!(expire_holds_at(&app, "2097-03-01T00:00:00Z").await["expired"], 1);
    assert_eq!(kinds(&app, &user).await, ["signup_grant", "hold", "cycle_grant", "expire"]);
    let a = account_event(&app, &user_event("balance.json", Some(&user), "")).await.json;
    assert_eq!(a["cycle_end"], "2097-03-31T10:00:00Z");
    assert_eq!(a["balance"], json!({"plan": 5000, "bonus": 0, "flexible": 0, "held": 0, "debt": 0, "total": 5000}));
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_holds_are_released_once_by_racing_runs() {
    let app = app_on_fresh_table(&[]).await;
    let (user, _) = new_user(&app, "free").await;
    assert_eq!(
        hold(&app, json!({"user_id": user, "hold_id": "short", "credits": 400, "expires_in_s": 60})).await.status,
        201
    );
    assert_eq!(
        hold(&app, json!({"user_id": user, "hold_id": "long", "credits": 100, "expires_in_s": 3600})).await.status,
        201
    );
    assert_eq!(expire_holds_at(&app, &in_minutes(0)).await["expired"], 0, "not yet due");
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { expire_holds_at(&app, &in_minutes(2)).await })
        })
        .collect();
    let mut expired = 0;
    for run in runs {
        let report: Value = run.await.expect("run");
        assert_eq!(report["errors"], 0);
        expired += report["expired"].as_u64().unwrap_or(0);
    }
    assert_eq!(expired, 1, "three racing runs release it once");
    let listed = open_holds(&app, &user).await;
    assert_eq!(listed.json["holds"].as_array().map(|h| h.len()), Some(1));
    assert_eq!(listed.json["holds"][0]["hold_id"], "long");
    assert_eq!(
        balance(&app, &user).await,
        json!({"plan": 900, "bonus": 0, "flexible": 0, "held": 100, "debt": 0, "total": 900})
    );
    let late = settle_hold(&app, "short", "capture", json!({"user_id": user, "credits": 10})).await;
    assert_eq!((late.status, late.code()), (409, "hold_closed"));
    assert!(late.json["error"]["message"].as_str().is_some_and(|m| m.contains("expired")), "{}", late.text);
    // After the sweep the hold is closed: a release is 409 too, and says the credits are back.
    let release = settle_hold(&app, "short", "release", json!({"user_id": user})).await;
    assert_eq!((release.status, release.code()), (409, "hold_closed"), "{}", release.text);
    assert!(release.json["error"]["message"].as_str().is_some_and(|m| m.contains("credits were released")));
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn a_release_past_expires_at_before_the_sweep_gives_everything_back_and_the_sweep_then_has_nothing_to_do() {
    let app = app().await;
    let (user, _) = new_user(&app, "free").await;
    let h = hold(&app, json!({"user_id": user, "hold_id": "late", "credits": 300, "expires_in_s": 60})).await;
    assert_eq!(h.status, 201, "{}", h.text);
    let past = credits::cycle::format_time(credits::cycle::now() - chrono::Duration::seconds(5));
    set_hold_attributes(&app, &user, "late", &[("hold_expires_at", aws_sdk_dynamodb::types::AttributeValue::S(past))])
        .await;
    let release = settle_hold(&app, "late", "release", json!({"user_id": user})).await;
    assert_eq!((release.status, release.json["hold"]["status"].as_str()), (200, Some("released")), "{}", release.text);
    assert_eq!(
        release.json["balance"],
        json!({"plan": 1000, "bonus": 0, "flexible": 0, "held": 0, "debt": 0, "total": 1000})
    );
    assert_eq!(kinds(&app, &user).await, ["signup_grant", "hold", "release"]);
    // The sweep then finds nothing to do, and the release, sent again, replays.
    assert_eq!(expire_holds_at(&app, &in_minutes(2)).await["expired"], 0);
    let again = settle_hold(&app, "late", "release", json!({"user_id": user})).await;
    assert_eq!((again.status, again.text.as_str()), (200, release.text.as_str()));
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expiry_racing_a_capture_leaves_one_winner() {
    let app = app_on_fresh_table(&[]).await;
    for round in 0..6 {
        let (user, _) = new_user(&app, "free").await;
        let id = format!("race{round}");
        assert_eq!(
            hold(&app, json!({"user_id": user, "hold_id": id, "credits": 500, "expires_in_s": 60})).await.status,
            201
        );
        let capture = {
            let (app, id, user) = (app.clone(), id.clone(), user.clone());
            tokio::spawn(
                async move { settle_hold(&app, &id, "capture", json!({"user_id": user, "credits": 200})).await },
            )
        };
        let expiry = {
            let app = app.clone();
            tokio::spawn(async move { expire_holds_at(&app, &in_minutes(2)).await })
        };
        let (capture, expiry) = (capture.await.expect("capture"), expiry.await.expect("expiry"));
        let b = balance(&app, &user).await;
        match (capture.status, expiry["expired"].as_u64()) {
            (200, Some(0)) => assert_eq!(b["total"], 800, "captured 200: {b}"),
            (409, Some(1)) => {
                assert_eq!(capture.code(), "hold_closed");
                assert_eq!(b["total"], 1000, "expired, all back: {b}");
            }
            other => panic!("both or neither won: {other:?} {}", capture.text),
        }
        assert_eq!(b["held"], 0);
        assert_ledger_explains_balance(&app, &user).await;
    }
}

#[tokio::test]
async fn bad_holds_are_400_naming_the_field_and_hold_nothing() {
    let app = app().await;
    let (user, _) = new_user(&app, "free").await;
    for (body, field) in [
        (json!({"user_id": user, "hold_id": "h", "credits": 0}), "credits"),
        (json!({"user_id": user, "hold_id": "h", "credits": 10, "expires_in_s": 30}), "expires_in_s"),
        (json!({"user_id": user, "hold_id": "h", "credits": 10, "expires_in_s": 100000}), "expires_in_s"),
        (json!({"user_id": user, "hold_id": "h h", "credits": 10}), "hold_id"),
        (json!({"user_id": user, "hold_id": "..", "credits": 10}), "hold_id"),
        (json!({"user_id": user, "hold_id": ".", "credits": 10}), "hold_id"),
        (json!({"user_id": user, "hold_id": "h", "credits": 10, "ttl": 5}), "unknown field"),
    ] {
        let a = hold(&app, body.clone()).await;
        assert_eq!((a.status, a.code()), (400, "invalid_request"), "{body}: {}", a.text);
        assert!(a.json["error"]["message"].as_str().unwrap_or("").contains(field), "{body}: {}", a.text);
    }
    assert_eq!(hold(&app, json!({"user_id": user, "hold_id": "ok", "credits": 10})).await.status, 201);
    let over = settle_hold(&app, "ok", "capture", json!({"user_id": user, "credits": 11})).await;
    assert_eq!((over.status, over.code()), (400, "invalid_request"), "{}", over.text);
    let negative = settle_hold(&app, "ok", "capture", json!({"user_id": user, "credits": -1})).await;
    assert_eq!(negative.status, 400);
    let bad_id = settle_hold(&app, "a:b@c", "release", json!({"user_id": user})).await;
    assert_eq!(bad_id.status, 400, "{}", bad_id.text);
    assert_eq!(balance(&app, &user).await["held"], 10);
}

#[tokio::test]
async fn expiry_finds_due_holds_through_the_schedule_index_without_a_scan() {
    let table = integration_tests::table::fresh_table(&app().await).await;
    let log = RequestLog::default();
    let app = app_with(&[("TABLE_NAME", table.as_str())], Some(log.clone())).await;
    let (user, _) = new_user(&app, "free").await;
    let placed = hold(&app, json!({"user_id": user, "hold_id": "h", "credits": 100, "expires_in_s": 60})).await;
    assert_eq!(placed.status, 201, "{}", placed.text);
    log.clear();
    assert_eq!(expire_holds_at(&app, &in_minutes(2)).await["expired"], 1);
    let ops = log.operations();
    assert!(ops.iter().any(|op| op == "Query"), "{ops:?}");
    assert!(!ops.iter().any(|op| op == "Scan"), "no scan: {ops:?}");
}

/// Closed holds stay in the user's partition: with nothing held, the list
/// is answered from the account alone and does not read them.
#[tokio::test]
async fn with_nothing_held_the_list_reads_no_hold() {
    let log = RequestLog::default();
    let app = app_with(&[], Some(log.clone())).await;
    let (user, _) = new_user(&app, "free").await;
    for id in ["a", "b"] {
        assert_eq!(hold(&app, json!({"user_id": user, "hold_id": id, "credits": 10})).await.status, 201);
    }
    assert_eq!(settle_hold(&app, "a", "release", json!({"user_id": user})).await.status, 200);

    log.clear();
    let listed = open_holds(&app, &user).await;
    assert_eq!(listed.json["holds"].as_array().map(|h| h.len()), Some(1), "{}", listed.text);
    assert_eq!(listed.json["holds"][0]["hold_id"], "b");
    assert_eq!(log.operations(), ["GetItem", "Query", "BatchGetItem"], "an open hold: its entry, then it");

    assert_eq!(settle_hold(&app, "b", "capture", json!({"user_id": user, "credits": 4})).await.status, 200);
    log.clear();
    let listed = open_holds(&app, &user).await;
    assert_eq!((listed.status, &listed.json["holds"]), (200, &json!([])), "{}", listed.text);
    assert_eq!(log.operations(), ["GetItem"], "nothing held: only the account is read");
}

/// The sort keys of `user`'s entries of open holds.
async fn open_entries(app: &credits::App, user: &str) -> Vec<String> {
    integration_tests::table::partition(app, &format!("USER#{user}"))
        .await
        .iter()
        .filter_map(|i| i.get("sk").and_then(|v| v.as_s().ok()).filter(|sk| sk.starts_with("OPENHOLD#")).cloned())
        .collect()
}

/// Each open hold has an entry naming it, deleted as it closes whichever
/// way (capture, release, expiry), so the list reads the open holds alone,
/// however many closed ones the user has. Where the open holds the entries
/// name do not add up to `held`, every hold is read: a hold opened before
/// the entries existed (its entry deleted here) is still listed, and an
/// entry an older release left behind when it closed its hold (put back
/// here) lists nothing.
#[tokio::test]
async fn the_list_reads_only_the_open_holds_entries_and_still_finds_older_holds() {
    use aws_sdk_dynamodb::types::AttributeValue;
    // Its own table: its expiry sweep must see only its own holds.
    let table = integration_tests::table::fresh_table(&app().await).await;
    let log = RequestLog::default();
    let app = app_with(&[("TABLE_NAME", &table)], Some(log.clone())).await;
    let (user, _) = new_user(&app, "free").await;
    for (id, expires) in [("cap", 3600), ("rel", 3600), ("exp", 60), ("open", 3600), ("older", 3600)] {
        let body = json!({"user_id": user, "hold_id": id, "credits": 10, "expires_in_s": expires});
        assert_eq!(hold(&app, body).await.status, 201);
    }
    let entry_of = |id: &str| {
        std::collections::HashMap::from([
            ("pk".to_owned(), AttributeValue::S(format!("USER#{user}"))),
            ("sk".to_owned(), AttributeValue::S(format!("OPENHOLD#{id}"))),
        ])
    };
    let db = integration_tests::table::dynamodb().await;
    let cap_entry = db.get_item().table_name(&table).set_key(Some(entry_of("cap"))).send().await.expect("read");
    let cap_entry = cap_entry.item.expect("an open hold has its entry");
    assert_eq!(open_entries(&app, &user).await.len(), 5);
    assert_eq!(settle_hold(&app, "cap", "capture", json!({"user_id": user, "credits": 4})).await.status, 200);
    assert_eq!(settle_hold(&app, "rel", "release", json!({"user_id": user})).await.status, 200);
    assert_eq!(expire_holds_at(&app, &in_minutes(2)).await["expired"], 1);
    assert_eq!(open_entries(&app, &user).await, ["OPENHOLD#older", "OPENHOLD#open"], "closed holds lose their entries");

    // (The holds were opened within a second or two: compared as sets.)
    let ids = |listed: &Answer| -> std::collections::BTreeSet<String> {
        listed.json["holds"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| h["hold_id"].as_str().map(str::to_owned))
            .collect()
    };
    let both: std::collections::BTreeSet<String> = ["older".to_owned(), "open".to_owned()].into();
    log.clear();
    let listed = open_holds(&app, &user).await;
    assert_eq!(ids(&listed), both, "{}", listed.text);
    assert_eq!(log.operations(), ["GetItem", "Query", "BatchGetItem"], "the entries, then the two holds");

    db.delete_item().table_name(&table).set_key(Some(entry_of("older"))).send().await.expect("entry deleted");
    log.clear();
    let listed = open_holds(&app, &user).await;
    assert_eq!(ids(&listed), both, "the hold without an entry is found: {}", listed.text);
    assert_eq!(log.operations(), ["GetItem", "Query", "BatchGetItem", "Query"], "short of held: every hold read");

    // The captured hold's entry back, as a release before the entries would
    // leave it: with the hold without one, it names as many credits as held.
    db.put_item().table_name(&table).set_item(Some(cap_entry)).send().await.expect("stale entry");
    let listed = open_holds(&app, &user).await;
    assert_eq!(ids(&listed), both, "the captured hold is not listed: {}", listed.text);

    // Closing the hold without an entry deletes nothing that fails.
    assert_eq!(settle_hold(&app, "older", "release", json!({"user_id": user})).await.status, 200);
    let listed = open_holds(&app, &user).await;
    assert_eq!(ids(&listed), ["open".to_owned()].into(), "{}", listed.text);
    assert_ledger_explains_balance(&app, &user).await;
}

/// Every page is read: an open hold behind a page with none (DynamoDB's
/// filter applies after a page's limit) must still be listed. Here no entry
/// is found, so the holds themselves are read, in two pages.
#[tokio::test]
async fn the_list_of_open_holds_reads_every_page() {
    use aws_sdk_dynamodb::operation::query::QueryOutput;
    use aws_sdk_dynamodb::types::AttributeValue;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    let real = app().await;
    let (user, _) = new_user(&real, "free").await;
    let placed = hold(&real, json!({"user_id": user, "hold_id": "late", "credits": 10})).await;
    assert_eq!(placed.status, 201, "{}", placed.text);
    let stored = integration_tests::table::partition(&real, &format!("USER#{user}"))
        .await
        .into_iter()
        .find(|i| i.get("sk").and_then(|v| v.as_s().ok()).is_some_and(|sk| sk.starts_with("HOLD#")))
        .expect("the stored hold");
    let next = std::collections::HashMap::from([
        ("pk".to_owned(), AttributeValue::S(format!("USER#{user}"))),
        ("sk".to_owned(), AttributeValue::S("HOLD#early".to_owned())),
    ]);
    let cursor = next.clone();
    let prefix = |req: &aws_sdk_dynamodb::operation::query::QueryInput| {
        req.expression_attribute_values().and_then(|v| v.get(":prefix")).and_then(|v| v.as_s().ok()).cloned()
    };
    let entries = mock!(aws_sdk_dynamodb::Client::query)
        .match_requests(move |req| prefix(req).as_deref() == Some("OPENHOLD#"))
        .then_output(|| QueryOutput::builder().set_items(Some(Vec::new())).build());
    let first = mock!(aws_sdk_dynamodb::Client::query)
        .match_requests(move |req| prefix(req).as_deref() == Some("HOLD#") && req.exclusive_start_key().is_none())
        .then_output(move || {
            QueryOutput::builder().set_items(Some(Vec::new())).set_last_evaluated_key(Some(next.clone())).build()
        });
    // The second page only for a request that carries the first page's cursor.
    let second = mock!(aws_sdk_dynamodb::Client::query)
        .match_requests(move |req| {
            prefix(req).as_deref() == Some("HOLD#") && req.exclusive_start_key() == Some(&cursor)
        })
        .then_output(move || QueryOutput::builder().items(stored.clone()).build());
    let db = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&entries, &first, &second]);
    let mocked = mocked_app(db, aws_sdk_sesv2::Client::new(&sdk_config()));
    let holds = mocked.store.open_holds(&user, 10).await.expect("listed");
    assert_eq!(holds.iter().map(|h| h.hold_id.as_str()).collect::<Vec<_>>(), ["late"]);
    assert_eq!((entries.num_calls(), first.num_calls(), second.num_calls()), (1, 1, 1), "each page read once");
}
