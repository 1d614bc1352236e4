//! `POST /v1/spends` through `spend`, against the emulator.

use integration_tests::*;
use serde_json::json;

#[tokio::test]
async fn spends_draw_plan_then_bonus_then_flexible() {
    let app = app().await;
    let (referrer, code) = new_user(&app, "pro").await;
    new_referred_user(&app, "free", &code).await; // +250 bonus
    assert_eq!(
        buy(&app, json!({"user_id": referrer, "payment_id": "p", "amount_cents": 100, "currency": "USD"})).await.status,
        201
    );
    // plan 5000, bonus 250, flexible 300
    let a =
        spend(&app, json!({"user_id": referrer, "spend_id": "s1", "credits": 5100, "feature": "video-export"})).await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(
        a.json,
        json!({
            "spend": {"spend_id": "s1", "credits": 5100, "from": {"plan": 5000, "bonus": 100, "flexible": 0}},
            "balance": {"plan": 0, "bonus": 150, "flexible": 300, "held": 0, "debt": 0, "total": 450}
        })
    );
    let b = spend(&app, json!({"user_id": referrer, "spend_id": "s2", "credits": 400})).await;
    assert_eq!(b.json["spend"]["from"], json!({"plan": 0, "bonus": 150, "flexible": 250}));
    assert_eq!(b.json["balance"]["total"], 50);
    let ledger = account_event(&app, &user_event("ledger.json", Some(&referrer), "limit=1")).await;
    assert_eq!(ledger.json["entries"][0]["kind"], "spend");
    assert_eq!(
        ledger.json["entries"][0]["delta"],
        json!({"plan": 0, "bonus": -150, "flexible": -250, "held": 0, "debt": 0})
    );
    assert_ledger_explains_balance(&app, &referrer).await;
}

#[tokio::test]
async fn a_spend_larger_than_the_balance_is_402_and_deducts_nothing() {
    let app = app().await;
    let (user, _) = new_user(&app, "free").await;
    let a = spend(&app, json!({"user_id": user, "spend_id": "big", "credits": 1001})).await;
    assert_eq!((a.status, a.code()), (402, "insufficient_credits"), "{}", a.text);
    assert_eq!(balance(&app, &user).await["total"], 1000);
    // The key was not used up: an affordable spend under it goes through
    // (a stored refusal would replay 402, or conflict with the new amount).
    let exact = spend(&app, json!({"user_id": user, "spend_id": "big", "credits": 1000})).await;
    assert_eq!(exact.status, 201);
    assert_eq!(exact.json["balance"], json!({"plan": 0, "bonus": 0, "flexible": 0, "held": 0, "debt": 0, "total": 0}));
    assert_eq!(spend(&app, json!({"user_id": user, "spend_id": "one", "credits": 1})).await.status, 402);
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn replayed_spends_return_the_original_and_changed_ones_conflict() {
    let app = app().await;
    let (user, _) = new_user(&app, "free").await;
    let body = json!({"user_id": user, "spend_id": "s", "credits": 10, "feature": "export"});
    let first = spend(&app, body.clone()).await;
    assert_eq!(first.status, 201);
    let again = spend(&app, body).await;
    assert_eq!((again.status, again.replayed, again.text.as_str()), (200, true, first.text.as_str()));
    let other = spend(&app, json!({"user_id": user, "spend_id": "s", "credits": 10, "feature": "import"})).await;
    assert_eq!((other.status, other.code()), (409, "idempotency_conflict"));
    assert_eq!(balance(&app, &user).await["total"], 990);
}

#[tokio::test]
async fn bad_spends_are_400_and_write_nothing() {
    let app = app().await;
    let (user, _) = new_user(&app, "free").await;
    for (body, field) in [
        (json!({"user_id": user, "spend_id": "s", "credits": 0}), "credits"),
        (json!({"user_id": user, "spend_id": "s", "credits": -5}), "credits"),
        (json!({"user_id": user, "spend_id": "s", "credits": 1.5}), "credits"),
        (json!({"user_id": user, "spend_id": "s", "credits": 10_000_001}), "credits"),
        (json!({"user_id": user, "spend_id": "s", "credits": "5"}), "credits"),
        (json!({"user_id": user, "spend_id": "s", "credits": 5, "feature": "f".repeat(65)}), "feature"),
        (json!({"user_id": user, "spend_id": "s", "credits": 5, "feature": "a\u{7}b"}), "feature"),
        (json!({"user_id": user, "spend_id": "s", "credits": 5, "feature": 5}), "feature"),
        (json!({"user_id": user, "spend_id": "", "credits": 5}), "spend_id"),
        (json!({"user_id": user, "credits": 5}), "spend_id"),
        (json!({"user_id": user, "spend_id": "s", "credits": 5, "plan": "pro"}), "unknown field"),
    ] {
        let a = spend(&app, body.clone()).await;
        assert_eq!((a.status, a.code()), (400, "invalid_request"), "{body}: {}", a.text);
        assert!(a.json["error"]["message"].as_str().unwrap_or("").contains(field), "{body}: {}", a.text);
    }
    assert_eq!(
        spend(&app, json!({"user_id": user, "spend_id": "s", "credits": 5, "feature": "é".repeat(64)})).await.status,
        201
    );
    let ghost = spend(&app, json!({"user_id": unique("ghost"), "spend_id": "s", "credits": 5})).await;
    assert_eq!((ghost.status, ghost.code()), (404, "account_not_found"));
    let mut unsigned =
        service_event("spend.json", &json!({"user_id": user, "spend_id": "u", "credits": 5}).to_string());
    if let Some(ctx) = unsigned["requestContext"].as_object_mut() {
        ctx.remove("authorizer");
    }
    assert_eq!(spend_event(&app, &unsigned).await.status, 401);
    assert_eq!(balance(&app, &user).await["total"], 995);
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn forty_concurrent_spends_of_thirty_on_a_thousand_leave_ten() {
    let app = app().await;
    let (user, _) = new_user(&app, "free").await; // 1,000 credits
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let (app, body) = (app.clone(), json!({"user_id": user, "spend_id": format!("s{i}"), "credits": 30}));
            tokio::spawn(async move { spend(&app, body).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("task").status);
    }
    let ok = statuses.iter().filter(|s| **s == 201).count();
    let refused = statuses.iter().filter(|s| **s == 402).count();
    assert_eq!((ok, refused), (33, 7), "{statuses:?}");
    assert_eq!(balance(&app, &user).await["total"], 10);
    assert_ledger_explains_balance(&app, &user).await;
}
