//! `POST /v1/reversals`, `/v1/adjustments`, `/v1/referral-clawbacks` through
//! `corrections`, against the emulator.

use integration_tests::*;
use serde_json::{json, Value};

fn purchase(user: &str, payment: &str, cents: i64) -> Value {
    json!({"user_id": user, "payment_id": payment, "amount_cents": cents, "currency": "USD"})
}

/// A pro user who bought `cents` worth of credits (3 per cent) under `payment`.
async fn buyer(app: &credits::App, cents: i64) -> (String, String) {
    let (user, _) = new_user(app, "pro").await;
    let payment = unique("pay");
    let a = buy(app, purchase(&user, &payment, cents)).await;
    assert_eq!(a.status, 201, "{}", a.text);
    (user, payment)
}

async fn last_entry(app: &credits::App, user: &str) -> Value {
    let a = account_event(app, &user_event("ledger.json", Some(user), "limit=1")).await;
    a.json["entries"][0].clone()
}

#[tokio::test]
async fn a_chargeback_after_spending_creates_debt_and_the_next_purchase_repays_it_first() {
    let app = app().await;
    let (user, payment) = buyer(&app, 1_000).await; // plan 5,000 + flexible 3,000
    assert_eq!(spend(&app, json!({"user_id": user, "spend_id": "all", "credits": 7_000})).await.status, 201);
    // left: flexible 1,000

    let reversal = unique("rev");
    let a =
        reverse(&app, json!({"user_id": user, "reversal_id": reversal, "payment_id": payment, "reason": "chargeback"}))
            .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(
        a.json["reversal"],
        json!({"reversal_id": reversal, "payment_id": payment, "credits": 3000, "from": {"plan": 0, "bonus": 0, "flexible": 1000}, "debt_added": 2000})
    );
    assert_eq!(a.json["balance"], json!({"plan": 0, "bonus": 0, "flexible": 0, "held": 0, "debt": 2000, "total": 0}));
    let entry = last_entry(&app, &user).await;
    assert_eq!((entry["kind"].as_str(), entry["ref"].as_str()), (Some("reversal"), Some(reversal.as_str())));
    assert_eq!((entry["payment_id"].as_str(), entry["reason"].as_str()), (Some(payment.as_str()), Some("chargeback")));
    assert_eq!(entry["delta"], json!({"plan": 0, "bonus": 0, "flexible": -1000, "held": 0, "debt": 2000}));

    // Debt is not subtracted from the total: a spend is refused for lack of credits, not for the debt.
    assert_eq!(
        spend(&app, json!({"user_id": user, "spend_id": "more", "credits": 1})).await.code(),
        "insufficient_credits"
    );

    let b = buy(&app, purchase(&user, &unique("pay"), 1_000)).await; // 3,000 credits
    assert_eq!(b.status, 201, "{}", b.text);
    assert_eq!(b.json["purchase"]["credits"], 3_000);
    assert_eq!(
        b.json["balance"],
        json!({"plan": 0, "bonus": 0, "flexible": 1000, "held": 0, "debt": 0, "total": 1000})
    );
    let entry = last_entry(&app, &user).await;
    assert_eq!(entry["delta"], json!({"plan": 0, "bonus": 0, "flexible": 1000, "held": 0, "debt": -2000}));
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn partial_reversals_add_up_to_at_most_the_purchase() {
    let app = app().await;
    let (user, payment) = buyer(&app, 1_000).await; // 3,000 credits
    let body = |credits: Option<i64>| {
        let mut b = json!({"user_id": user, "reversal_id": unique("rev"), "payment_id": payment, "reason": "refund"});
        if let Some(c) = credits {
            b["credits"] = json!(c);
        }
        b
    };
    assert_eq!(reverse(&app, body(Some(1_000))).await.status, 201);
    assert_eq!(reverse(&app, body(Some(1_500))).await.status, 201);
    let over = reverse(&app, body(Some(501))).await;
    assert_eq!((over.status, over.code()), (409, "reversal_exceeds_purchase"), "{}", over.text);
    assert!(
        over.json["error"]["message"].as_str().is_some_and(|m| m.contains("500 remain reversible")),
        "{}",
        over.text
    );
    let rest = reverse(&app, body(None)).await;
    assert_eq!((rest.status, rest.json["reversal"]["credits"].as_i64()), (201, Some(500)));
    assert_eq!(reverse(&app, body(None)).await.code(), "reversal_exceeds_purchase");
    assert_eq!(balance(&app, &user).await["flexible"], 0);
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn a_reversal_of_a_payment_that_is_not_a_purchase_of_that_user_is_404() {
    let app = app().await;
    let (user, payment) = buyer(&app, 500).await;
    let (other, _) = new_user(&app, "pro").await;
    for (who, pay) in [(other.as_str(), payment.as_str()), (user.as_str(), "never-paid")] {
        let a =
            reverse(&app, json!({"user_id": who, "reversal_id": unique("rev"), "payment_id": pay, "reason": "refund"}))
                .await;
        assert_eq!((a.status, a.code()), (404, "purchase_not_found"), "{}", a.text);
    }
    let ghost = reverse(
        &app,
        json!({"user_id": unique("ghost"), "reversal_id": "r", "payment_id": payment, "reason": "refund"}),
    )
    .await;
    assert_eq!(ghost.code(), "account_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn twenty_concurrent_identical_reversals_reverse_once() {
    let app = app().await;
    let (user, payment) = buyer(&app, 1_000).await;
    let body = json!({"user_id": user, "reversal_id": unique("rev"), "payment_id": payment, "reason": "refund", "credits": 2000});
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (app, body) = (app.clone(), body.clone());
            tokio::spawn(async move { reverse(&app, body).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("task"));
    }
    assert_eq!(answers.iter().filter(|a| a.status == 201).count(), 1);
    assert!(
        answers.iter().all(|a| a.status == 201 || (a.status == 200 && a.replayed)),
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert!(answers.iter().all(|a| a.text == answers[0].text));
    assert_eq!(balance(&app, &user).await["flexible"], 1_000);
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_reversal_racing_twenty_spends_never_lets_a_figure_go_negative() {
    let app = app().await;
    let (user, payment) = buyer(&app, 1_000).await; // 8,000 credits
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (task_app, body) = (app.clone(), json!({"user_id": user, "spend_id": format!("s{i}"), "credits": 500}));
        tasks.push(tokio::spawn(async move { spend(&task_app, body).await }));
        if i == 10 {
            let (app, body) = (
                app.clone(),
                json!({"user_id": user, "reversal_id": "race", "payment_id": payment, "reason": "chargeback"}),
            );
            tasks.push(tokio::spawn(async move { reverse(&app, body).await }));
        }
    }
    for task in tasks {
        let a = task.await.expect("task");
        assert!([201, 402].contains(&a.status), "{} {}", a.status, a.text);
    }
    let b = balance(&app, &user).await;
    // 8,000 − 3,000 reversed − 500 × spends that went through (at most 10 fit once the reversal took its share)
    assert!(b["total"].as_i64().is_some_and(|t| t >= 0) && b["debt"].as_i64().is_some_and(|d| d >= 0), "{b}");
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn adjustments_repay_debt_credit_a_bucket_and_never_create_debt() {
    let app = app().await;
    let (user, payment) = buyer(&app, 100).await; // flexible 300
    assert_eq!(spend(&app, json!({"user_id": user, "spend_id": "s", "credits": 5_300})).await.status, 201);
    assert_eq!(
        reverse(&app, json!({"user_id": user, "reversal_id": "r", "payment_id": payment, "reason": "refund"}))
            .await
            .json["balance"]["debt"],
        300
    );
    let up = adjust(&app, json!({"user_id": user, "adjustment_id": "a1", "credits": 500, "bucket": "bonus", "reason": "goodwill", "note": "outage"})).await;
    assert_eq!(up.status, 201, "{}", up.text);
    assert_eq!(
        up.json["adjustment"],
        json!({"adjustment_id": "a1", "credits": 500, "bucket": "bonus", "reason": "goodwill", "note": "outage", "debt_repaid": 300})
    );
    assert_eq!(up.json["balance"], json!({"plan": 0, "bonus": 200, "flexible": 0, "held": 0, "debt": 0, "total": 200}));
    let entry = last_entry(&app, &user).await;
    assert_eq!(
        (entry["kind"].as_str(), entry["reason"].as_str(), entry["note"].as_str()),
        (Some("adjustment"), Some("goodwill"), Some("outage"))
    );

    let down = adjust(
        &app,
        json!({"user_id": user, "adjustment_id": "a2", "credits": -201, "bucket": "bonus", "reason": "correction"}),
    )
    .await;
    assert_eq!((down.status, down.code()), (402, "insufficient_credits"), "{}", down.text);
    let down = adjust(
        &app,
        json!({"user_id": user, "adjustment_id": "a3", "credits": -200, "bucket": "bonus", "reason": "correction"}),
    )
    .await;
    assert_eq!(down.json["balance"]["bonus"], 0);
    assert_eq!(down.json["balance"]["debt"], 0);
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn a_clawback_takes_back_exactly_what_the_referral_paid_once() {
    let app = app().await;
    let (referrer, code) = new_user(&app, "free").await;
    let friend = new_referred_user(&app, "free", &code).await; // +250
    assert_eq!(change_plan(&app, json!({"user_id": friend, "change_id": "up", "plan": "pro"})).await.status, 200); // +1,500
    assert_eq!(balance(&app, &referrer).await["bonus"], 1_750);
    let _honest = new_referred_user(&app, "free", &code).await; // +250, stays

    let claw = unique("claw");
    let a = claw_back(&app, json!({"referred_user_id": friend, "clawback_id": claw, "reason": "fraud"})).await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(
        a.json["clawback"],
        json!({"referrer_id": referrer, "referred_user_id": friend, "credits": 1750, "debt_added": 0})
    );
    assert_eq!(a.json["balance"]["bonus"], 250, "the honest referral's bonus stays");
    let entry = last_entry(&app, &referrer).await;
    assert_eq!(
        (entry["kind"].as_str(), entry["referred_user_id"].as_str(), entry["reason"].as_str()),
        (Some("clawback"), Some(friend.as_str()), Some("fraud"))
    );

    let r = account_event(&app, &user_event("referral.json", Some(&referrer), "")).await;
    assert_eq!((r.json["signups"].as_i64(), r.json["rewarded_credits"].as_i64()), (Some(1), Some(250)));

    let again = claw_back(&app, json!({"referred_user_id": friend, "clawback_id": claw, "reason": "fraud"})).await;
    assert_eq!((again.status, again.replayed, again.text.as_str()), (200, true, a.text.as_str()));
    let second =
        claw_back(&app, json!({"referred_user_id": friend, "clawback_id": unique("claw"), "reason": "refund"})).await;
    assert_eq!((second.status, second.json["clawback"]["credits"].as_i64()), (200, Some(0)), "{}", second.text);

    let up = change_plan(&app, json!({"user_id": friend, "change_id": "top", "plan": "business"})).await;
    assert!(up.json["upgrade_bonus"].is_null(), "a revoked referral pays nothing: {}", up.text);
    assert_eq!(balance(&app, &referrer).await["bonus"], 250);
    assert_ledger_explains_balance(&app, &referrer).await;
    assert_ledger_explains_balance(&app, &friend).await;
}

#[tokio::test]
async fn a_clawback_of_spent_bonuses_leaves_debt_and_a_user_without_referrer_is_404() {
    let app = app().await;
    let (referrer, code) = new_user(&app, "free").await;
    let friend = new_referred_user(&app, "free", &code).await;
    assert_eq!(spend(&app, json!({"user_id": referrer, "spend_id": "s", "credits": 1_250})).await.status, 201);
    let a = claw_back(&app, json!({"referred_user_id": friend, "clawback_id": "k", "reason": "fraud"})).await;
    assert_eq!(
        (a.json["clawback"]["credits"].as_i64(), a.json["clawback"]["debt_added"].as_i64()),
        (Some(250), Some(250))
    );
    assert_eq!(a.json["balance"]["debt"], 250);
    let (lone, _) = new_user(&app, "free").await;
    let none = claw_back(&app, json!({"referred_user_id": lone, "clawback_id": "k", "reason": "fraud"})).await;
    assert_eq!((none.status, none.code()), (404, "referral_not_found"));
    assert_ledger_explains_balance(&app, &referrer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_clawback_racing_the_referred_users_upgrade_pays_and_claws_back_consistently() {
    let app = app().await;
    for round in 0..6 {
        let (referrer, code) = new_user(&app, "free").await;
        let friend = new_referred_user(&app, "free", &code).await;
        let up = {
            let (app, body) =
                (app.clone(), json!({"user_id": friend, "change_id": format!("up{round}"), "plan": "business"}));
            tokio::spawn(async move { change_plan(&app, body).await })
        };
        let claw = {
            let (app, body) = (
                app.clone(),
                json!({"referred_user_id": friend, "clawback_id": format!("k{round}"), "reason": "fraud"}),
            );
            tokio::spawn(async move { claw_back(&app, body).await })
        };
        let (up, claw) = (up.await.expect("upgrade"), claw.await.expect("clawback"));
        assert_eq!((up.status, claw.status), (200, 201), "{} / {}", up.text, claw.text);
        let paid = up.json["upgrade_bonus"]["referrer_bonus"].as_i64().unwrap_or(0);
        let taken = claw.json["clawback"]["credits"].as_i64().unwrap_or(-1);
        // Either the bonus was paid first and taken back, or never paid.
        assert!(paid == 4_000 && taken == 4_250 || paid == 0 && taken == 250, "paid {paid}, taken {taken}");
        assert_eq!(balance(&app, &referrer).await["bonus"], 0);
        assert_ledger_explains_balance(&app, &referrer).await;
    }
}

#[tokio::test]
async fn debt_is_repaid_by_bonuses_and_cycle_grants_too() {
    let app = app_on_fresh_table(&[]).await;
    let (user, code) = new_user_since(&app, "pro", "2097-01-31T10:00:00Z").await;
    let payment = unique("pay");
    assert_eq!(buy(&app, purchase(&user, &payment, 2_000)).await.status, 201); // flexible 6,000
    assert_eq!(spend(&app, json!({"user_id": user, "spend_id": "s", "credits": 11_000})).await.status, 201);
    assert_eq!(
        reverse(&app, json!({"user_id": user, "reversal_id": "r", "payment_id": payment, "reason": "chargeback"}))
            .await
            .json["balance"]["debt"],
        6_000
    );

    new_referred_user(&app, "free", &code).await; // a referral bonus of 250 repays 250
    assert_eq!(balance(&app, &user).await["debt"], 5_750);
    let entry = last_entry(&app, &user).await;
    assert_eq!(
        (entry["kind"].as_str(), entry["delta"]["bonus"].as_i64(), entry["delta"]["debt"].as_i64()),
        (Some("referral_bonus"), Some(0), Some(-250))
    );

    rollover_at(&app, "2097-02-28T10:00:00Z", 0).await; // a cycle grant of 5,000 repays 5,000
    let after = balance(&app, &user).await;
    assert_eq!((after["plan"].as_i64(), after["debt"].as_i64()), (Some(0), Some(750)));
    rollover_at(&app, "2097-03-31T10:00:00Z", 0).await;
    let after = balance(&app, &user).await;
    assert_eq!((after["plan"].as_i64(), after["debt"].as_i64()), (Some(4_250), Some(0)));
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn bad_corrections_are_400_naming_the_field_and_write_nothing() {
    let app = app().await;
    let (user, payment) = buyer(&app, 100).await;
    let reversal = json!({"user_id": user, "reversal_id": "r", "payment_id": payment, "reason": "refund"});
    let adjustment = json!({"user_id": user, "adjustment_id": "a", "credits": 5, "bucket": "bonus", "reason": "other"});
    let with = |base: &Value, field: &str, value: Value| {
        let mut b = base.clone();
        b[field] = value;
        b
    };
    let cases = [
        ("reversals", with(&reversal, "reason", json!("oops")), "reason"),
        ("reversals", with(&reversal, "credits", json!(0)), "credits"),
        ("reversals", with(&reversal, "credits", json!(1.5)), "credits"),
        ("reversals", with(&reversal, "payment_id", json!("p q")), "payment_id"),
        ("reversals", with(&reversal, "extra", json!(1)), "unknown field"),
        ("adjustments", with(&adjustment, "credits", json!(0)), "credits"),
        ("adjustments", with(&adjustment, "credits", json!(-10_000_001)), "credits"),
        ("adjustments", with(&adjustment, "bucket", json!("plan")), "bucket"),
        ("adjustments", with(&adjustment, "reason", json!("gift")), "reason"),
        ("adjustments", with(&adjustment, "note", json!("x".repeat(201))), "note"),
        ("adjustments", with(&adjustment, "note", json!("line one\nline two")), "note"),
        ("adjustments", with(&adjustment, "user", json!("u")), "unknown field"),
        ("referral-clawbacks", json!({"referred_user_id": user, "clawback_id": "k", "reason": "spite"}), "reason"),
        ("referral-clawbacks", json!({"referred_user_id": user, "reason": "fraud"}), "clawback_id"),
        (
            "referral-clawbacks",
            json!({"referred_user_id": user, "clawback_id": "k", "reason": "fraud", "credits": 5}),
            "unknown field",
        ),
    ];
    for (route, body, field) in cases {
        let a = match route {
            "reversals" => reverse(&app, body.clone()).await,
            "adjustments" => adjust(&app, body.clone()).await,
            _ => claw_back(&app, body.clone()).await,
        };
        assert_eq!((a.status, a.code()), (400, "invalid_request"), "{route} {body}: {}", a.text);
        assert!(a.json["error"]["message"].as_str().unwrap_or("").contains(field), "{route} {body}: {}", a.text);
    }
    let mut unsigned = service_event("reversal.json", &reversal.to_string());
    if let Some(ctx) = unsigned["requestContext"].as_object_mut() {
        ctx.remove("authorizer");
    }
    assert_eq!(corrections_event(&app, &unsigned).await.status, 401);
    assert_eq!(balance(&app, &user).await["flexible"], 300, "nothing was written");
    assert_eq!(ledger_kinds(&app, &user).await.len(), 2);
}

#[tokio::test]
async fn each_correction_replays_its_key_and_refuses_it_for_another_request() {
    let app = app().await;
    let (user, payment) = buyer(&app, 1_000).await;
    let (referrer, code) = new_user(&app, "free").await;
    let friend = new_referred_user(&app, "free", &code).await;
    let reversal =
        json!({"user_id": user, "reversal_id": "r", "payment_id": payment, "reason": "refund", "credits": 100});
    let adjustment =
        json!({"user_id": user, "adjustment_id": "a", "credits": 50, "bucket": "bonus", "reason": "goodwill"});
    let clawback = json!({"referred_user_id": friend, "clawback_id": "k", "reason": "fraud"});
    let cases: [(&str, Value, Value); 3] = [
        ("reversal_id", reversal.clone(), json!({"credits": 101})),
        ("adjustment_id", adjustment.clone(), json!({"credits": 51})),
        ("clawback_id", clawback.clone(), json!({"reason": "refund"})),
    ];
    async fn send(app: &credits::App, key_field: &str, body: Value) -> Answer {
        match key_field {
            "reversal_id" => reverse(app, body).await,
            "adjustment_id" => adjust(app, body).await,
            _ => claw_back(app, body).await,
        }
    }
    for (key_field, first, change) in cases {
        let a = send(&app, key_field, first.clone()).await;
        assert_eq!(a.status, 201, "{key_field}: {}", a.text);
        let before = (balance(&app, &user).await, balance(&app, &referrer).await);
        let again = send(&app, key_field, first.clone()).await;
        assert_eq!((again.status, again.replayed, again.text.as_str()), (200, true, a.text.as_str()), "{key_field}");
        let mut other = first.clone();
        for (field, value) in change.as_object().into_iter().flatten() {
            other[field] = value.clone();
        }
        let refused = send(&app, key_field, other).await;
        assert_eq!((refused.status, refused.code()), (409, "idempotency_conflict"), "{key_field}: {}", refused.text);
        assert!(refused.text.contains(key_field), "the 409 names {key_field}: {}", refused.text);
        assert_eq!(
            (balance(&app, &user).await, balance(&app, &referrer).await),
            before,
            "{key_field}: nothing changed"
        );
    }
    assert_ledger_explains_balance(&app, &user).await;
}
