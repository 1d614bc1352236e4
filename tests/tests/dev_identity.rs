//! The local-development identity headers: off unless the local run turns
//! them on, and never turned on by the deployment template.

use credits::config::{DEV_CALLER_HEADER, DEV_IDENTITY_ENV, DEV_USER_HEADER};
use integration_tests::*;
use serde_json::json;

fn without_authorizer(mut event: serde_json::Value, header: &str, value: &str) -> serde_json::Value {
    if let Some(ctx) = event["requestContext"].as_object_mut() {
        ctx.remove("authorizer");
    }
    event["headers"][header] = json!(value);
    event
}

#[test]
fn template_yaml_never_enables_the_dev_identity_headers() {
    let template = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let text = std::fs::read_to_string(&template).expect("template.yaml");
    assert!(text.contains("AWS::Serverless::Function"), "read the real template");
    assert!(!text.contains(DEV_IDENTITY_ENV), "template.yaml must never set {DEV_IDENTITY_ENV}");
}

#[tokio::test]
async fn identity_headers_are_ignored_unless_enabled() {
    let app = app().await;
    let user = unique("dev");
    let body = json!({"user_id": user, "email": "dev@example.com"}).to_string();
    let event = without_authorizer(service_event("signup.json", &body), DEV_CALLER_HEADER, "local");
    assert_eq!(signup_event(&app, &event).await.status, 401);
    let (someone, _) = new_user(&app, "free").await;
    let event = without_authorizer(user_event("balance.json", Some("x"), ""), DEV_USER_HEADER, &someone);
    assert_eq!(account_event(&app, &event).await.status, 401);
}

#[tokio::test]
async fn enabled_identity_headers_stand_in_for_the_authorizers() {
    let app = app_with(&[(DEV_IDENTITY_ENV, "1")], None).await;
    let user = unique("dev");
    let body = json!({"user_id": user, "email": "dev@example.com"}).to_string();
    let event = without_authorizer(service_event("signup.json", &body), DEV_CALLER_HEADER, "local");
    assert_eq!(signup_event(&app, &event).await.status, 201);
    let event = without_authorizer(user_event("balance.json", Some("x"), ""), DEV_USER_HEADER, &user);
    let a = account_event(&app, &event).await;
    assert_eq!((a.status, a.json["user_id"].as_str()), (200, Some(user.as_str())));
    // Still nothing without the header.
    let bare = without_authorizer(user_event("balance.json", Some("x"), ""), "x-other", "1");
    assert_eq!(account_event(&app, &bare).await.status, 401);
}
