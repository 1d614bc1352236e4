//! Bad input: 400 `invalid_request` naming the field, 401 without an
//! authorizer, 404 for other routes; never a panic, never a write.

use integration_tests::*;
use serde_json::json;

/// Bodies refused by `POST /v1/purchases`, with a word the message must hold.
fn bad_purchases(user: &str) -> Vec<(String, &'static str)> {
    let with = |field: &str, value: serde_json::Value| {
        let mut body = json!({"user_id": user, "payment_id": "pay-bad", "amount_cents": 1000, "currency": "USD"});
        body[field] = value;
        body.to_string()
    };
    let without = |field: &str| {
        let mut body = json!({"user_id": user, "payment_id": "pay-bad", "amount_cents": 1000, "currency": "USD"});
        body.as_object_mut().map(|o| o.remove(field));
        body.to_string()
    };
    vec![
        ("".into(), "JSON"),
        ("not json".into(), "JSON"),
        ("{\"user_id\": ".into(), "JSON"),
        ("[]".into(), "object"),
        ("null".into(), "object"),
        ("\"text\"".into(), "object"),
        (format!("{}{}", "[".repeat(5_000), "]".repeat(5_000)), "JSON"),
        (format!("{{\"user_id\": {}{}}}", "[".repeat(2_000), "]".repeat(2_000)), "recursion limit"),
        (with("amount_cents", json!("1000")), "amount_cents"),
        (with("amount_cents", json!(1000.5)), "amount_cents"),
        (with("amount_cents", json!(1e30)), "amount_cents"),
        (with("amount_cents", json!(99)), "amount_cents"),
        (with("amount_cents", json!(1_000_001)), "amount_cents"),
        (with("amount_cents", json!(-1000)), "amount_cents"),
        (with("amount_cents", json!(0)), "amount_cents"),
        (with("amount_cents", json!(null)), "amount_cents"),
        (
            r#"{"user_id":"u","payment_id":"p","amount_cents":18446744073709551616,"currency":"USD"}"#.into(),
            "amount_cents",
        ),
        (with("currency", json!("EUR")), "currency"),
        (with("currency", json!("usd")), "currency"),
        (with("payment_id", json!("")), "payment_id"),
        (with("payment_id", json!("p".repeat(129))), "payment_id"),
        (with("payment_id", json!("pay 1")), "payment_id"),
        (with("payment_id", json!("pay/1")), "payment_id"),
        (with("payment_id", json!("päy")), "payment_id"),
        (with("payment_id", json!("pay\u{0}1")), "payment_id"),
        (with("payment_id", json!("pay@1")), "payment_id"),
        (with("payment_id", json!(42)), "payment_id"),
        (with("user_id", json!("a b")), "user_id"),
        (with("user_id", json!(["alice"])), "user_id"),
        (with("extra", json!(1)), "unknown field"),
        (without("currency"), "currency"),
        (without("user_id"), "user_id"),
        (format!("{{\"user_id\": \"{}\"}}", "x".repeat(20_000)), "bytes"),
    ]
}

fn bad_signups(user: &str) -> Vec<(String, &'static str)> {
    let with = |field: &str, value: serde_json::Value| {
        let mut body = json!({"user_id": user, "email": "ok@example.com"});
        body[field] = value;
        body.to_string()
    };
    vec![
        (with("email", json!("no-at-sign")), "email"),
        (with("email", json!("two@@example.com")), "email"),
        (with("email", json!("@example.com")), "email"),
        (with("email", json!("a@")), "email"),
        (with("email", json!("a b@example.com")), "email"),
        (with("email", json!("jos\u{e9}@example.com")), "email"),
        (with("email", json!(format!("{}@example.com", "a".repeat(250)))), "email"),
        (with("email", json!(7)), "email"),
        (with("plan", json!("platinum")), "free, basic, pro, business"),
        (with("plan", json!(2)), "plan"),
        (with("referral_code", json!("x".repeat(65))), "referral_code"),
        (with("referral_code", json!(12345678)), "referral_code"),
        (with("signed_up_at", json!("yesterday")), "signed_up_at"),
        (with("signed_up_at", json!("2026-01-31")), "signed_up_at"),
        (with("signed_up_at", json!(1769853600)), "signed_up_at"),
        // Its first cycle would end in the year 10000; in UTC, the year 10000 and -1.
        (with("signed_up_at", json!("9999-12-15T00:00:00Z")), "signed_up_at"),
        (with("signed_up_at", json!("9999-12-31T23:00:00-05:00")), "signed_up_at"),
        (with("signed_up_at", json!("0000-01-01T00:00:00+01:00")), "signed_up_at"),
        (with("user_id", json!("")), "user_id"),
        (with("user_id", json!("u".repeat(129))), "user_id"),
        (with("user_id", json!("alice#1")), "user_id"),
        (with("nickname", json!("al")), "unknown field"),
        (json!({"email": "a@example.com"}).to_string(), "user_id"),
    ]
}

#[tokio::test]
async fn bad_purchases_are_400_naming_the_field_and_change_nothing() {
    let app = app().await;
    let (user, _) = new_user(&app, "pro").await;
    for (body, needle) in bad_purchases(&user) {
        let a = purchase_event(&app, &service_event("purchase.json", &body)).await;
        let shown: String = body.chars().take(60).collect();
        assert_eq!((a.status, a.code()), (400, "invalid_request"), "{shown}: {}", a.text);
        let message = a.json["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(needle), "{shown}: message {message:?} lacks {needle:?}");
        assert!(message.len() < 400, "messages stay short: {message}");
    }
    assert_eq!(balance(&app, &user).await["total"], 5000);
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn bad_signups_are_400_naming_the_field_and_create_nothing() {
    let app = app().await;
    let user = unique("never");
    for (body, needle) in bad_signups(&user) {
        let a = signup_event(&app, &service_event("signup.json", &body)).await;
        assert_eq!((a.status, a.code()), (400, "invalid_request"), "{body}: {}", a.text);
        let message = a.json["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(needle), "{body}: message {message:?} lacks {needle:?}");
    }
    assert!(partition(&app, &format!("USER#{user}")).await.is_empty(), "a refused signup wrote something");
}

#[tokio::test]
async fn service_routes_without_iam_authorization_are_401_and_write_nothing() {
    let app = app().await;
    let user = unique("noauth");
    let mut signup = service_event("signup.json", &json!({"user_id": user, "email": "x@example.com"}).to_string());
    signup["requestContext"]["authorizer"] = json!({"jwt": {"claims": {"sub": user}}});
    let a = signup_event(&app, &signup).await;
    assert_eq!((a.status, a.code()), (401, "unauthenticated"), "{}", a.text);
    if let Some(ctx) = signup["requestContext"].as_object_mut() {
        ctx.remove("authorizer");
    }
    assert_eq!(signup_event(&app, &signup).await.status, 401);

    let (buyer, _) = new_user(&app, "pro").await;
    let mut purchase = service_event(
        "purchase.json",
        &json!({"user_id": buyer, "payment_id": "p1", "amount_cents": 1000, "currency": "USD"}).to_string(),
    );
    if let Some(ctx) = purchase["requestContext"].as_object_mut() {
        ctx.remove("authorizer");
    }
    assert_eq!(purchase_event(&app, &purchase).await.code(), "unauthenticated");
    assert!(partition(&app, &format!("USER#{user}")).await.is_empty());
    assert_eq!(balance(&app, &buyer).await["flexible"], 0);
}

#[tokio::test]
async fn other_routes_on_service_functions_are_404() {
    let app = app().await;
    let body = json!({"user_id": "x", "email": "x@example.com"}).to_string();
    for (method, path) in [("GET", "/v1/signups"), ("POST", "/v1/signup"), ("POST", "/v1/purchases")] {
        let a = signup_event(&app, &with_route(service_event("signup.json", &body), method, path)).await;
        assert_eq!((a.status, a.code()), (404, "not_found"), "{method} {path}");
    }
    let a = purchase_event(&app, &with_route(service_event("purchase.json", &body), "POST", "/v1/signups")).await;
    assert_eq!((a.status, a.code()), (404, "not_found"));
}

#[tokio::test]
async fn error_bodies_carry_no_internal_detail() {
    let app = app().await;
    let a = purchase_event(&app, &service_event("purchase.json", "{\"user_id\": 1}")).await;
    let error = a.json["error"].as_object().expect("error object");
    assert_eq!(error.len(), 2, "only code and message: {}", a.text);
    assert!(!a.text.contains("Error {") && !a.text.contains("line 1 column"), "{}", a.text);
}
