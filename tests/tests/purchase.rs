//! `POST /v1/purchases` through `purchase`, against the emulator.

use credits::email::{email_id, EmailKind};
use integration_tests::*;
use serde_json::json;

fn purchase_body(user: &str, payment: &str, cents: i64) -> serde_json::Value {
    json!({"user_id": user, "payment_id": payment, "amount_cents": cents, "currency": "USD"})
}

#[tokio::test]
async fn a_pro_purchase_credits_three_per_cent_and_sends_a_receipt() {
    let app = app().await;
    let (user, _) = new_user(&app, "pro").await;
    let payment = unique("pay");
    let a = buy(&app, purchase_body(&user, &payment, 1_000)).await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(
        a.json,
        json!({
            "purchase": {"payment_id": payment, "amount_cents": 1000, "credits": 3000, "rate_per_dollar": 300, "plan": "pro"},
            "balance": {"plan": 5000, "bonus": 0, "flexible": 3000, "held": 0, "debt": 0, "total": 8000}
        })
    );
    let email = outbox_item(&app, &email_id(EmailKind::PurchaseReceipt, &[&user, &payment]))
        .await
        .expect("receipt in the outbox");
    assert_eq!(attr(&email, "status"), "sent");
    assert!(attr(&email, "text").contains("$10.00 USD for 3,000 flexible credits"));
    assert!(attr(&email, "html").contains("<p>"));
    assert!(sent_emails().await.iter().any(|m| m.to_string().contains(&format!("{user}@example.com"))));
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn a_business_purchase_credits_two_per_cent() {
    let app = app().await;
    let (user, _) = new_user(&app, "business").await;
    let a = buy(&app, purchase_body(&user, &unique("pay"), 1_000_000)).await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.json["purchase"]["credits"], 2_000_000);
    assert_eq!(a.json["balance"]["flexible"], 2_000_000);
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn plans_without_a_rate_cannot_buy_and_nothing_changes() {
    let app = app().await;
    for plan in ["free", "basic"] {
        let (user, _) = new_user(&app, plan).await;
        let before = balance(&app, &user).await;
        let payment = unique("pay");
        let a = buy(&app, purchase_body(&user, &payment, 1_000)).await;
        assert_eq!((a.status, a.code()), (403, "plan_not_eligible"), "{}", a.text);
        assert_eq!(balance(&app, &user).await, before);
        let ledger = account_event(&app, &user_event("ledger.json", Some(&user), "")).await;
        assert_eq!(ledger.json["entries"].as_array().map(Vec::len), Some(1));
        // The refusal used up nothing: after an upgrade the same payment
        // buys (a stored refusal would replay 403).
        let up = change_plan(&app, json!({"user_id": user, "change_id": "up", "plan": "pro"})).await;
        assert_eq!(up.status, 200, "{}", up.text);
        let again = buy(&app, purchase_body(&user, &payment, 1_000)).await;
        assert_eq!((again.status, again.replayed), (201, false), "{}", again.text);
    }
}

#[tokio::test]
async fn an_unknown_user_is_404() {
    let app = app().await;
    let a = buy(&app, purchase_body(&unique("ghost"), &unique("pay"), 1_000)).await;
    assert_eq!((a.status, a.code()), (404, "account_not_found"), "{}", a.text);
}

#[tokio::test]
async fn replayed_purchase_returns_the_original_receipt_and_a_changed_one_conflicts() {
    let app = app().await;
    let (user, _) = new_user(&app, "pro").await;
    let payment = unique("pay");
    let first = buy(&app, purchase_body(&user, &payment, 2_500)).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let again = buy(&app, purchase_body(&user, &payment, 2_500)).await;
    assert_eq!((again.status, again.replayed), (200, true));
    assert_eq!(again.text, first.text);
    let changed = buy(&app, purchase_body(&user, &payment, 2_600)).await;
    assert_eq!((changed.status, changed.code()), (409, "idempotency_conflict"), "{}", changed.text);
    assert_eq!(balance(&app, &user).await["flexible"], 7_500);
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn a_replay_after_a_downgrade_still_returns_the_original_receipt() {
    // The idempotency record is checked before the plan's eligibility.
    let app = app().await;
    let (user, _) = new_user(&app, "pro").await;
    let payment = unique("pay");
    let first = buy(&app, purchase_body(&user, &payment, 1_000)).await;
    assert_eq!(first.status, 201);
    set_account_attributes(&app, &user, &[("plan", aws_sdk_dynamodb::types::AttributeValue::S("free".into()))]).await;
    let again = buy(&app, purchase_body(&user, &payment, 1_000)).await;
    assert_eq!((again.status, again.replayed, again.text.as_str()), (200, true, first.text.as_str()));
}

#[tokio::test]
async fn a_purchase_makes_exactly_three_dynamodb_requests() {
    let log = RequestLog::default();
    let app = app_with(&[], Some(log.clone())).await;
    let (user, _) = new_user(&app, "pro").await;
    log.clear();
    let a = buy(&app, purchase_body(&user, &unique("pay"), 1_000)).await;
    assert_eq!(a.status, 201, "{}", a.text);
    // One read, one transaction, one update marking the receipt sent.
    assert_eq!(log.operations(), ["TransactGetItems", "TransactWriteItems", "UpdateItem"]);
    log.clear();
    let another = buy(&app, purchase_body(&user, &unique("pay"), 1_000)).await;
    assert_eq!(another.status, 201);
    assert_eq!(log.operations().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn twenty_four_concurrent_duplicates_credit_exactly_once() {
    let app = app().await;
    let (user, _) = new_user(&app, "pro").await;
    let payment = unique("pay");
    let tasks: Vec<_> = (0..24)
        .map(|_| {
            let (app, body) = (app.clone(), purchase_body(&user, &payment, 1_000));
            tokio::spawn(async move { buy(&app, body).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("task"));
    }
    let created: Vec<_> = answers.iter().filter(|a| a.status == 201).collect();
    assert_eq!(created.len(), 1, "{:?}", answers.iter().map(|a| a.status).collect::<Vec<_>>());
    for a in &answers {
        assert!(a.status == 201 || (a.status == 200 && a.replayed), "{} {}", a.status, a.text);
        assert_eq!(a.text, created[0].text);
    }
    assert_eq!(balance(&app, &user).await["flexible"], 3_000);
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_distinct_purchases_all_land() {
    let app = app().await;
    let (user, _) = new_user(&app, "pro").await;
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let (app, body) = (app.clone(), purchase_body(&user, &unique("pay"), 100));
            tokio::spawn(async move { buy(&app, body).await })
        })
        .collect();
    for task in tasks {
        let a = task.await.expect("task");
        assert_eq!(a.status, 201, "{}", a.text);
    }
    assert_eq!(balance(&app, &user).await["flexible"], 12 * 300);
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn when_ses_refuses_the_purchase_still_succeeds_and_the_receipt_stays_pending() {
    // A sender whose domain the emulator never verified: SES refuses it.
    let app = app_with(&[("SENDER_EMAIL", "billing@unverified-sender.example.net")], None).await;
    let (user, _) = new_user(&app, "pro").await;
    let payment = unique("pay");
    let a = buy(&app, purchase_body(&user, &payment, 1_000)).await;
    assert_eq!(a.status, 201, "{}", a.text);
    let email = outbox_item(&app, &email_id(EmailKind::PurchaseReceipt, &[&user, &payment]))
        .await
        .expect("receipt in the outbox");
    assert_eq!(attr(&email, "status"), "pending");
    assert_eq!(attr_n(&email, "attempts"), 1);
    assert!(attr(&email, "last_error").contains("MessageRejected"), "{}", attr(&email, "last_error"));
    assert!(attr(&email, "sched_pk").starts_with("OUTBOX#"), "pending emails stay on the schedule index");
    assert!(attr(&email, "next_attempt_at") > attr(&email, "created_at"));
    assert!(!sent_emails().await.iter().any(|m| m.to_string().contains(&payment)));
    assert_eq!(balance(&app, &user).await["flexible"], 3_000);
}

/// A connection that goes silent (a read lost on the way, a transaction
/// DynamoDB commits but whose answer never comes) is given up after the
/// SDK's attempt timeout and tried again: the purchase answers within the
/// function's 10 s Lambda timeout, and credits once. Without the timeout it
/// waited for the proxy's 60 s, twice.
#[tokio::test]
async fn a_silent_connection_is_given_up_and_the_purchase_still_counts_once() {
    let proxy = FaultProxy::start();
    let table = fresh_table(&app().await).await;
    let app = app_through(&proxy.url, &table).await;
    let (user, _) = new_user(&app, "pro").await;
    proxy.stall("TransactGetItems", &table, 1, false).await;
    proxy.stall("TransactWriteItems", &table, 1, true).await;
    let started = std::time::Instant::now();
    let a = buy(&app, purchase_body(&user, &unique("pay"), 1_000)).await;
    let took = started.elapsed();
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.json["balance"]["flexible"], 3_000, "{}", a.text);
    assert!(took >= 2 * credits::sdk::ATTEMPT_TIMEOUT, "both stalls were served: {took:?}");
    assert!(took < std::time::Duration::from_secs(10), "within the Lambda timeout: {took:?}");
    let purchases = ledger_kinds(&app, &user).await.into_iter().filter(|(kind, ..)| kind == "purchase").count();
    assert_eq!(purchases, 1);
    assert_ledger_explains_balance(&app, &user).await;
}

/// A purchase whose calls would outlast its invocation (here a commit
/// DynamoDB makes but whose answer never comes, with 2 s left) answers 503
/// before Lambda would end it, not a bare 500; sent again with the same key,
/// it replays what committed, and credits once.
#[tokio::test]
async fn a_purchase_still_at_work_near_its_deadline_answers_503_and_its_retry_counts_once() {
    use lambda_http::RequestExt;
    let proxy = FaultProxy::start();
    let table = fresh_table(&app().await).await;
    let app = app_through(&proxy.url, &table).await;
    let (user, _) = new_user(&app, "pro").await;
    let body = purchase_body(&user, &unique("pay"), 1_000);
    proxy.stall("TransactWriteItems", &table, 1, true).await;
    let mut context = lambda_runtime::Context::default();
    let now_ms = chrono::Utc::now().timestamp_millis().unsigned_abs();
    context.deadline = now_ms + 2_000;
    let req = request(&service_event("purchase.json", &body.to_string())).with_lambda_context(context);
    let started = std::time::Instant::now();
    let cut = answer(purchase::handle(&app, req).await.expect("handlers never fail"));
    let took = started.elapsed();
    assert_eq!((cut.status, cut.code()), (503, "unavailable"), "{}", cut.text);
    assert!(took < std::time::Duration::from_secs(2), "answered before the deadline: {took:?}");
    let retry = buy(&app, body).await;
    assert_eq!((retry.status, retry.replayed), (200, true), "{}", retry.text);
    assert_eq!(balance(&app, &user).await["flexible"], 3_000);
    assert_ledger_explains_balance(&app, &user).await;
}
