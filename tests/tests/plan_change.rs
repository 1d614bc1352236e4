//! `POST /v1/plan-changes` through `upgrade-bonus`, against the emulator.

use credits::email::{email_id, EmailKind};
use integration_tests::*;
use serde_json::json;

async fn change(app: &credits::App, user: &str, plan: &str) -> Answer {
    let a = change_plan(app, json!({"user_id": user, "change_id": unique("chg"), "plan": plan})).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a
}

#[tokio::test]
async fn an_upgrade_tops_up_the_plan_bucket_and_pays_the_referrer_once_per_plan() {
    let app = app().await;
    let (referrer, code) = new_user(&app, "free").await;
    let friend = new_referred_user(&app, "free", &code).await;
    let referrer_before = balance(&app, &referrer).await["bonus"].as_i64().unwrap_or(-1);

    let change_id = unique("chg");
    let a = change_plan(&app, json!({"user_id": friend, "change_id": change_id, "plan": "pro"})).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["account"]["plan"], "pro");
    assert_eq!(
        a.json["account"]["balance"],
        json!({"plan": 5000, "bonus": 0, "flexible": 0, "held": 0, "debt": 0, "total": 5000})
    );
    assert_eq!(a.json["upgrade_bonus"], json!({"referrer_bonus": 1500, "plans": ["basic", "pro"]}));
    assert_eq!(balance(&app, &referrer).await["bonus"].as_i64(), Some(referrer_before + 1500));

    let email =
        outbox_item(&app, &email_id(EmailKind::ReferralUpgradeBonus, &[&friend, &change_id])).await.expect("email");
    assert_eq!(attr(&email, "status"), "sent");
    assert_eq!(attr(&email, "to"), format!("{referrer}@example.com"));

    // pro → free → pro within the cycle: nothing more, for anyone.
    let down = change(&app, &friend, "free").await;
    assert_eq!(down.json["account"]["balance"]["plan"], 5000, "a downgrade leaves the plan bucket");
    assert!(down.json["upgrade_bonus"].is_null());
    let up = change(&app, &friend, "pro").await;
    assert_eq!(up.json["account"]["balance"]["plan"], 5000);
    assert!(up.json["upgrade_bonus"].is_null());
    // then pro → business adds 15,000 and pays business only.
    let top = change(&app, &friend, "business").await;
    assert_eq!(top.json["account"]["balance"]["plan"], 20000);
    assert_eq!(top.json["upgrade_bonus"], json!({"referrer_bonus": 2500, "plans": ["business"]}));
    assert_eq!(balance(&app, &referrer).await["bonus"].as_i64(), Some(referrer_before + 4000));

    let r = account_event(&app, &user_event("referral.json", Some(&referrer), "")).await;
    assert_eq!(r.json["rewarded_credits"], 250 + 4000);
    assert_ledger_explains_balance(&app, &friend).await;
    assert_ledger_explains_balance(&app, &referrer).await;
}

#[tokio::test]
async fn the_referrer_earns_the_same_whatever_the_path() {
    let app = app().await;
    let (direct_referrer, code_a) = new_user(&app, "free").await;
    let (stepwise_referrer, code_b) = new_user(&app, "free").await;
    let direct = new_referred_user(&app, "free", &code_a).await;
    let stepwise = new_referred_user(&app, "free", &code_b).await;
    let a = change(&app, &direct, "business").await;
    assert_eq!(a.json["upgrade_bonus"], json!({"referrer_bonus": 4000, "plans": ["basic", "pro", "business"]}));
    for plan in ["basic", "free", "pro", "basic", "business", "pro", "business"] {
        change(&app, &stepwise, plan).await;
    }
    assert_eq!(balance(&app, &direct_referrer).await["bonus"], balance(&app, &stepwise_referrer).await["bonus"]);
    assert_eq!(balance(&app, &direct_referrer).await["bonus"], 250 + 4000);
    assert_ledger_explains_balance(&app, &stepwise).await;
    assert_ledger_explains_balance(&app, &stepwise_referrer).await;
}

#[tokio::test]
async fn an_unreferred_upgrade_pays_no_one() {
    let app = app().await;
    let (user, _) = new_user(&app, "basic").await;
    let a = change(&app, &user, "business").await;
    assert!(a.json["upgrade_bonus"].is_null());
    assert_eq!(a.json["account"]["balance"]["plan"], 20000);
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn a_signup_on_a_higher_plan_counts_as_held() {
    let app = app().await;
    let (referrer, code) = new_user(&app, "free").await;
    let friend = new_referred_user(&app, "pro", &code).await;
    let a = change(&app, &friend, "business").await;
    assert_eq!(a.json["upgrade_bonus"], json!({"referrer_bonus": 2500, "plans": ["business"]}));
    assert_eq!(balance(&app, &referrer).await["bonus"], 250 + 2500);
}

#[tokio::test]
async fn replays_return_the_original_and_changed_payloads_conflict() {
    let app = app().await;
    let (user, _) = new_user(&app, "free").await;
    let body = json!({"user_id": user, "change_id": "c-1", "plan": "pro"});
    let first = change_plan(&app, body.clone()).await;
    assert_eq!(first.status, 200);
    assert!(!first.replayed);
    change(&app, &user, "free").await;
    let again = change_plan(&app, body).await;
    assert_eq!((again.status, again.replayed, again.text.as_str()), (200, true, first.text.as_str()));
    let other = change_plan(&app, json!({"user_id": user, "change_id": "c-1", "plan": "business"})).await;
    assert_eq!((other.status, other.code()), (409, "idempotency_conflict"));
    let now = account_event(&app, &user_event("balance.json", Some(&user), "")).await;
    assert_eq!(now.json["plan"], "free", "the replay changed nothing");
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn a_replay_answers_as_before_after_its_plan_left_the_catalogue() {
    let app = app().await;
    let user = unique("retiring");
    let signup_body = json!({"user_id": user, "email": format!("{user}@example.com"), "plan": "pro"});
    let created = signup(&app, signup_body.clone()).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let change_body = json!({"user_id": user, "change_id": "c-1", "plan": "business"});
    let changed = change_plan(&app, change_body.clone()).await;
    assert_eq!(changed.status, 200, "{}", changed.text);

    // The deployer retires pro and business; the caller retries both requests.
    let plans = r#"{"plans": [{"name": "free", "rank": 0, "monthly_allowance": 1000},
        {"name": "basic", "rank": 1, "monthly_allowance": 2000}]}"#;
    let retired = app_with(&[("CREDITS_CONFIG", plans)], None).await;
    let signup_again = signup(&retired, signup_body).await;
    let change_again = change_plan(&retired, change_body).await;
    for (again, first) in [(&signup_again, &created), (&change_again, &changed)] {
        assert_eq!((again.status, again.replayed, again.text.as_str()), (200, true, first.text.as_str()));
    }
    let new = change_plan(&retired, json!({"user_id": user, "change_id": "c-2", "plan": "pro"})).await;
    assert_eq!((new.status, new.code()), (400, "invalid_request"), "{}", new.text);
    assert!(new.text.contains("free, basic"), "{}", new.text);
}

#[tokio::test]
async fn bad_plan_changes_are_refused() {
    let app = app().await;
    let (user, _) = new_user(&app, "free").await;
    for (body, field) in [
        (json!({"user_id": user, "change_id": "c", "plan": "platinum"}), "plan"),
        (json!({"user_id": user, "change_id": "c", "plan": 3}), "plan"),
        (json!({"user_id": user, "change_id": "c d", "plan": "pro"}), "change_id"),
        (json!({"user_id": user, "plan": "pro"}), "change_id"),
        (json!({"user_id": user, "change_id": "c", "plan": "pro", "at": "now"}), "unknown field"),
    ] {
        let a = change_plan(&app, body.clone()).await;
        assert_eq!((a.status, a.code()), (400, "invalid_request"), "{body}");
        assert!(a.json["error"]["message"].as_str().unwrap_or("").contains(field), "{body}: {}", a.text);
    }
    let ghost = change_plan(&app, json!({"user_id": unique("ghost"), "change_id": "c", "plan": "pro"})).await;
    assert_eq!((ghost.status, ghost.code()), (404, "account_not_found"));
    assert_eq!(balance(&app, &user).await["plan"], 1000);
    let mut unsigned =
        service_event("plan-change.json", &json!({"user_id": user, "change_id": "c", "plan": "pro"}).to_string());
    if let Some(ctx) = unsigned["requestContext"].as_object_mut() {
        ctx.remove("authorizer");
    }
    assert_eq!(plan_change_event(&app, &unsigned).await.status, 401);
    assert_eq!(balance(&app, &user).await["plan"], 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn racing_upgrades_never_pay_a_plan_twice() {
    let app = app().await;
    let (referrer, code) = new_user(&app, "free").await;
    let friend = new_referred_user(&app, "free", &code).await;
    let plans = ["basic", "pro", "business", "pro", "basic", "business", "free", "pro"];
    let tasks: Vec<_> = plans
        .iter()
        .map(|plan| {
            let (app, body) = (app.clone(), json!({"user_id": friend, "change_id": unique("race"), "plan": plan}));
            tokio::spawn(async move { change_plan(&app, body).await })
        })
        .collect();
    let mut paid = Vec::new();
    for task in tasks {
        let a = task.await.expect("task");
        assert_eq!(a.status, 200, "{}", a.text);
        if let Some(plans) = a.json["upgrade_bonus"]["plans"].as_array() {
            paid.extend(plans.iter().filter_map(|p| p.as_str().map(str::to_owned)));
        }
    }
    paid.sort();
    assert_eq!(paid, ["basic", "business", "pro"], "each plan paid exactly once");
    assert_eq!(balance(&app, &referrer).await["bonus"], 250 + 4000);
    assert_ledger_explains_balance(&app, &friend).await;
    assert_ledger_explains_balance(&app, &referrer).await;
}
