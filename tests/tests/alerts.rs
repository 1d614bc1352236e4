//! Low-balance alerts, "how can I get more credits?", and the deployer's
//! brand on every email, against the emulator.

use credits::email::{email_id, EmailKind};
use integration_tests::*;
use serde_json::{json, Value};

/// The low-balance emails in the outbox for `user` (any threshold, any cycle).
async fn alerts(app: &credits::App, user: &str) -> Vec<Item> {
    let mut found = Vec::new();
    let account = account_item(app, user).await;
    for cycle_end in [attr(&account, "cycle_end").to_owned()] {
        for threshold in ["0", "100", "200", "500", "2000"] {
            let id = email_id(EmailKind::LowBalance, &[user, &cycle_end, threshold]);
            if let Some(item) = outbox_item(app, &id).await {
                found.push(item);
            }
        }
    }
    found
}

#[tokio::test]
async fn a_spend_below_ten_per_cent_sends_one_personalised_email() {
    let app = app().await;
    let (user, code) = new_user(&app, "free").await;
    assert_eq!(spend(&app, json!({"user_id": user, "spend_id": "a", "credits": 800})).await.status, 201);
    assert!(alerts(&app, &user).await.is_empty(), "200 left: above 10% of 1,000");
    assert_eq!(spend(&app, json!({"user_id": user, "spend_id": "b", "credits": 150})).await.status, 201);
    let sent = alerts(&app, &user).await;
    assert_eq!(sent.len(), 1);
    let email = &sent[0];
    assert_eq!((attr(email, "status"), attr(email, "email_kind")), ("sent", "low_balance"));
    assert_eq!(attr(email, "subject"), "You have 50 credits left");
    let text = attr(email, "text");
    assert!(text.contains("balance is down to 50 credits."), "{text}");
    assert!(text.contains("Flexible credits can be bought on the pro or business plan."), "{text}");
    assert!(text.contains(&format!("signup?ref={code}: you earn 250 credits")), "{text}");
    assert!(text.contains("Upgrade to business: it adds 19,000 credits right away"), "{text}");
    assert!(attr(email, "html").contains("<p>"), "an HTML part too");
    assert!(sent_emails()
        .await
        .iter()
        .any(|m| m.to_string().contains("You have 50 credits left") && m.to_string().contains(&user)));
}

#[tokio::test]
async fn crossing_again_in_the_same_cycle_sends_nothing_more_and_running_out_does() {
    let app = app().await;
    let (user, _) = new_user(&app, "free").await;
    assert_eq!(spend(&app, json!({"user_id": user, "spend_id": "a", "credits": 950})).await.status, 201);
    assert_eq!(alerts(&app, &user).await.len(), 1);
    let up = adjust(
        &app,
        json!({"user_id": user, "adjustment_id": "g", "credits": 500, "bucket": "bonus", "reason": "goodwill"}),
    )
    .await;
    assert_eq!(up.status, 201);
    assert_eq!(spend(&app, json!({"user_id": user, "spend_id": "b", "credits": 500})).await.status, 201);
    assert_eq!(alerts(&app, &user).await.len(), 1, "100 was alerted this cycle already");
    assert_eq!(spend(&app, json!({"user_id": user, "spend_id": "c", "credits": 50})).await.status, 201);
    let sent = alerts(&app, &user).await;
    assert_eq!(sent.len(), 2, "0 (run out) is a threshold of its own");
    assert!(sent.iter().any(|e| attr(e, "subject") == "You have 0 credits left"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_spends_crossing_together_send_one_email() {
    let app = app().await;
    let (user, _) = new_user(&app, "free").await;
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let (app, body) = (app.clone(), json!({"user_id": user, "spend_id": format!("s{i}"), "credits": 95}));
            tokio::spawn(async move { spend(&app, body).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.expect("task").status, 201);
    }
    assert_eq!(balance(&app, &user).await["total"], 50);
    assert_eq!(alerts(&app, &user).await.len(), 1);
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn holds_reversals_and_negative_adjustments_alert_too_and_credits_do_not() {
    let app = app().await;
    let (holder, _) = new_user(&app, "free").await;
    assert_eq!(hold(&app, json!({"user_id": holder, "hold_id": "h", "credits": 950})).await.status, 201);
    assert_eq!(alerts(&app, &holder).await.len(), 1, "a hold lowers total");

    let (buyer, _) = new_user(&app, "pro").await; // 5,000 plan
    assert_eq!(
        buy(&app, json!({"user_id": buyer, "payment_id": "p", "amount_cents": 1000, "currency": "USD"})).await.status,
        201
    );
    assert!(alerts(&app, &buyer).await.is_empty());
    assert_eq!(
        reverse(&app, json!({"user_id": buyer, "reversal_id": "r", "payment_id": "p", "reason": "chargeback"}))
            .await
            .status,
        201
    );
    assert!(alerts(&app, &buyer).await.is_empty(), "back to 5,000: above 500");
    let down = adjust(
        &app,
        json!({"user_id": buyer, "adjustment_id": "a", "credits": -1, "bucket": "flexible", "reason": "correction"}),
    )
    .await;
    assert_eq!(down.status, 402, "flexible is empty");
    assert_eq!(spend(&app, json!({"user_id": buyer, "spend_id": "s", "credits": 4_600})).await.status, 201);
    assert_eq!(alerts(&app, &buyer).await.len(), 1, "400 left: below 500");
}

#[tokio::test]
async fn a_new_cycle_rearms_the_alerts() {
    let app = app_on_fresh_table(&[]).await;
    let (user, _) = new_user_since(&app, "free", "2097-01-31T10:00:00Z").await;
    assert_eq!(spend(&app, json!({"user_id": user, "spend_id": "a", "credits": 950})).await.status, 201);
    let first = email_id(EmailKind::LowBalance, &[&user, "2097-02-28T10:00:00Z", "100"]);
    assert!(outbox_item(&app, &first).await.is_some());
    rollover_at(&app, "2097-02-28T10:00:00Z", 0).await;
    assert_eq!(spend(&app, json!({"user_id": user, "spend_id": "b", "credits": 950})).await.status, 201);
    let second = email_id(EmailKind::LowBalance, &[&user, "2097-03-31T10:00:00Z", "100"]);
    assert!(outbox_item(&app, &second).await.is_some(), "the new cycle's crossing alerts again");
}

#[tokio::test]
async fn a_refused_alert_stays_pending_and_the_outbox_sends_it_later() {
    let domain = format!("{}.alerts.example", unique("d").to_lowercase());
    let app = app_on_fresh_table(&[("SENDER_EMAIL", &format!("credits@{domain}"))]).await;
    let (user, _) = new_user(&app, "free").await;
    assert_eq!(spend(&app, json!({"user_id": user, "spend_id": "a", "credits": 950})).await.status, 201);
    let pending = alerts(&app, &user).await;
    assert_eq!((pending.len(), attr(&pending[0], "status")), (1, "pending"), "SES refused the unverified sender");
    let ses = aws_sdk_sesv2::Client::new(&sdk_config());
    ses.create_email_identity().email_identity(&domain).send().await.expect("verify the sender");
    let later = credits::cycle::format_time(credits::cycle::now() + chrono::Duration::minutes(10));
    assert_eq!(outbox_at(&app, &later).await["sent"], 1);
    assert_eq!(attr(&alerts(&app, &user).await[0], "status"), "sent");
}

#[tokio::test]
async fn credit_options_answer_how_to_get_more_credits() {
    let app = app().await;
    let (user, code) = new_user(&app, "basic").await;
    let a = account_event(&app, &user_event("credit-options.json", Some(&user), "")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let cycle_end = balance_view(&app, &user).await["cycle_end"].clone();
    assert_eq!(
        a.json,
        json!({
            "balance": {"plan": 2000, "bonus": 0, "flexible": 0, "held": 0, "debt": 0, "total": 2000},
            "plan": {"name": "basic", "monthly_allowance": 2000, "cycle_end": cycle_end},
            "buy": {"eligible": false, "rate_per_dollar": null, "plans_that_can_buy": ["pro", "business"]},
            "refer": {
                "link": format!("https://app.example.com/signup?ref={code}"), "signup_bonus": 250,
                "rewarded_signups_left_this_cycle": 25,
                "upgrade_bonuses": [{"plan": "basic", "bonus": 500}, {"plan": "pro", "bonus": 1000}, {"plan": "business", "bonus": 2500}]
            },
            "upgrade": [
                {"plan": "pro", "monthly_allowance": 5000, "rate_per_dollar": 300, "credits_now": 3000},
                {"plan": "business", "monthly_allowance": 20000, "rate_per_dollar": 200, "credits_now": 18000}
            ]
        })
    );
    let missing = account_event(&app, &user_event("credit-options.json", Some(&unique("nobody")), "")).await;
    assert_eq!(missing.code(), "account_not_found");
    assert_eq!(account_event(&app, &user_event("credit-options.json", None, "")).await.status, 401);
}

async fn balance_view(app: &credits::App, user: &str) -> Value {
    account_event(app, &user_event("balance.json", Some(user), "")).await.json
}

#[tokio::test]
async fn the_deployers_brand_and_templates_are_on_every_email_with_values_escaped() {
    let config = json!({"email": {
        "product_name": "Acme <script>alert(1)</script>", "from_name": "Acme Video",
        "dashboard_url": "https://acme.example/app", "buy_url": "https://acme.example/buy",
        "templates": {"low_balance": {
            "subject": "{{product_name}}: {{balance}} credits left",
            "text": "Hi {{user_id}}, you are below {{threshold}}. {{buy_option}} {{upgrade_option}}",
            "html": "<h1>{{product_name}}</h1><p>{{refer_option}}</p><a href=\"{{buy_url}}\">Buy</a>"
        }}
    }})
    .to_string();
    let app = app_with(&[("CREDITS_CONFIG", &config)], None).await;
    let (user, _) = new_user(&app, "pro").await;
    assert_eq!(spend(&app, json!({"user_id": user, "spend_id": "a", "credits": 4_700})).await.status, 201);
    let sent = alerts(&app, &user).await;
    assert_eq!(sent.len(), 1);
    let email = &sent[0];
    assert_eq!(attr(email, "subject"), "Acme <script>alert(1)</script>: 300 credits left");
    assert!(
        attr(email, "text").starts_with(&format!(
            "Hi {user}, you are below 500. Buy flexible credits at 300 credits per dollar: https://acme.example/buy"
        )),
        "{}",
        attr(email, "text")
    );
    let html = attr(email, "html");
    assert!(html.starts_with("<h1>Acme &lt;script&gt;alert(1)&lt;/script&gt;</h1>"), "{html}");
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.ends_with("<a href=\"https://acme.example/buy\">Buy</a>"), "{html}");
    // The default templates carry the brand too, and the From header its name.
    assert_eq!(
        buy(&app, json!({"user_id": user, "payment_id": "p", "amount_cents": 100, "currency": "USD"})).await.status,
        201
    );
    let receipt = outbox_item(&app, &email_id(EmailKind::PurchaseReceipt, &[&user, "p"])).await.expect("receipt");
    assert!(
        attr(&receipt, "text").ends_with("— The Acme <script>alert(1)</script> team\n"),
        "{}",
        attr(&receipt, "text")
    );
    assert!(attr(&receipt, "html").contains("— The Acme &lt;script&gt;"), "{}", attr(&receipt, "html"));
    let messages = sent_emails().await;
    let ours: Vec<&Value> = messages.iter().filter(|m| m.to_string().contains(&user)).collect();
    assert!(!ours.is_empty() && ours.iter().all(|m| m["source"] == "\"Acme Video\" <credits@example.com>"), "{ours:?}");
}
