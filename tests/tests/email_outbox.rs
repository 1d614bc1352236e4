//! The scheduled `email-outbox`, against the emulator, each test on its own
//! table and with its own sender domain (so removing an identity touches no
//! other test).

use aws_sdk_sesv2::operation::send_email::{SendEmailError, SendEmailOutput};
use aws_sdk_sesv2::types::error::{MessageRejected, TooManyRequestsException};
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use credits::email::{email_id, EmailKind, MAX_ATTEMPTS};
use credits::{App, Mail};
use integration_tests::*;
use serde_json::json;

async fn ses() -> aws_sdk_sesv2::Client {
    aws_sdk_sesv2::Client::new(&sdk_config())
}

async fn remove_identity(domain: &str) {
    let _ = ses().await.delete_email_identity().email_identity(domain).send().await;
}

async fn verify_identity(domain: &str) {
    ses().await.create_email_identity().email_identity(domain).send().await.expect("identity created");
}

/// An app on a fresh table (real DynamoDB, the emulator) sending through `ses`.
async fn with_ses(ses: aws_sdk_sesv2::Client) -> App {
    let base = app_on_fresh_table(&[]).await;
    App::new(base.config.clone(), aws_sdk_dynamodb::Client::new(&sdk_config()), ses, Mail::Required).expect("app")
}

/// A purchase whose receipt SES refused: returns (app, user, email id, now).
async fn refused_receipt(domain: &str) -> (App, String, String) {
    remove_identity(domain).await;
    let app = app_on_fresh_table(&[("SENDER_EMAIL", &format!("billing@{domain}"))]).await;
    let (user, _) = new_user(&app, "pro").await;
    let a = buy(&app, json!({"user_id": user, "payment_id": "p1", "amount_cents": 500, "currency": "USD"})).await;
    assert_eq!(a.status, 201, "{}", a.text);
    let id = email_id(EmailKind::PurchaseReceipt, &[&user, "p1"]);
    let item = outbox_item(&app, &id).await.expect("pending receipt");
    assert_eq!((attr(&item, "status"), attr_n(&item, "attempts")), ("pending", 1));
    (app, user, id)
}

fn at(minutes: i64) -> String {
    credits::cycle::format_time(credits::cycle::now() + chrono::Duration::minutes(minutes))
}

async fn messages_to(user: &str) -> usize {
    sent_emails().await.iter().filter(|m| m.to_string().contains(&format!("{user}@example.com"))).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_email_is_sent_by_a_later_run_once_the_identity_is_back_exactly_once() {
    let domain = format!("{}.outbox.example", unique("d").to_lowercase());
    let (app, user, id) = refused_receipt(&domain).await;

    let too_soon = outbox_at(&app, &at(0)).await;
    assert_eq!(
        (too_soon["sent"].as_u64(), too_soon["retried"].as_u64()),
        (Some(0), Some(0)),
        "not due before its backoff"
    );

    let still_refused = outbox_at(&app, &at(5)).await;
    assert_eq!(still_refused["retried"], 1, "{still_refused}");
    let item = outbox_item(&app, &id).await.expect("email");
    assert_eq!((attr(&item, "status"), attr_n(&item, "attempts")), ("pending", 2));
    assert!(attr(&item, "last_error").contains("not verified"), "{}", attr(&item, "last_error"));

    verify_identity(&domain).await;
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { outbox_at(&app, &at(60)).await })
        })
        .collect();
    let mut sent = 0;
    for run in runs {
        sent += run.await.expect("run")["sent"].as_u64().unwrap_or(0);
    }
    assert_eq!(sent, 1, "three concurrent runs send it once");
    assert_eq!(outbox_at(&app, &at(120)).await["sent"], 0);
    let item = outbox_item(&app, &id).await.expect("email");
    assert_eq!(attr(&item, "status"), "sent");
    assert!(!item.contains_key("sched_pk"));
    assert_eq!(messages_to(&user).await, 1, "SES received it exactly once");
}

#[tokio::test]
async fn an_email_that_keeps_failing_ends_failed_after_its_last_attempt() {
    let domain = format!("{}.never.example", unique("d").to_lowercase());
    let (app, _user, id) = refused_receipt(&domain).await;
    let mut failed = 0;
    for run in 1..=i64::from(MAX_ATTEMPTS) + 2 {
        let report = outbox_at(&app, &at(run * 7 * 60)).await; // beyond the longest backoff each time
        failed += report["failed"].as_u64().unwrap_or(0);
    }
    assert_eq!(failed, 1);
    let item = outbox_item(&app, &id).await.expect("email");
    assert_eq!(attr(&item, "status"), "failed");
    assert_eq!(attr_n(&item, "attempts"), i64::from(MAX_ATTEMPTS));
    assert!(!item.contains_key("sched_pk"), "a failed email leaves the schedule");
}

#[tokio::test]
async fn a_throttle_right_after_the_commit_costs_the_email_no_attempt() {
    let send = mock!(aws_sdk_sesv2::Client::send_email)
        .sequence()
        .error(|| {
            SendEmailError::TooManyRequestsException(TooManyRequestsException::builder().message("slow down").build())
        })
        .output(|| SendEmailOutput::builder().message_id("m-1").build())
        .build();
    let app = with_ses(mock_client!(aws_sdk_sesv2, RuleMode::Sequential, [&send])).await;
    let (user, _) = new_user(&app, "pro").await;
    let a = buy(&app, json!({"user_id": user, "payment_id": "p1", "amount_cents": 500, "currency": "USD"})).await;
    assert_eq!(a.status, 201, "{}", a.text);
    let id = email_id(EmailKind::PurchaseReceipt, &[&user, "p1"]);
    let item = outbox_item(&app, &id).await.expect("email");
    assert_eq!((attr(&item, "status"), attr_n(&item, "attempts")), ("pending", 0));
    assert!(attr(&item, "last_error").contains("throttled"), "{}", attr(&item, "last_error"));

    let report = outbox_at(&app, &at(5)).await;
    assert_eq!(report["sent"], 1, "{report}");
    let item = outbox_item(&app, &id).await.expect("email");
    assert_eq!((attr(&item, "status"), attr_n(&item, "attempts")), ("sent", 0));
    assert_eq!(send.num_calls(), 2);
}

#[tokio::test]
async fn ses_throttling_slows_the_run_down_without_burning_attempts() {
    // Real DynamoDB (the emulator), SES mocked: refused once inline, then
    // throttled twice by the outbox run, then accepted.
    let send = mock!(aws_sdk_sesv2::Client::send_email)
        .sequence()
        .error(|| SendEmailError::MessageRejected(MessageRejected::builder().message("refused").build()))
        .error(|| {
            SendEmailError::TooManyRequestsException(TooManyRequestsException::builder().message("slow down").build())
        })
        .times(2)
        .output(|| SendEmailOutput::builder().message_id("m-1").build())
        .build();
    let app = with_ses(mock_client!(aws_sdk_sesv2, RuleMode::Sequential, [&send])).await;
    let (user, _) = new_user(&app, "pro").await;
    assert_eq!(
        buy(&app, json!({"user_id": user, "payment_id": "p1", "amount_cents": 500, "currency": "USD"})).await.status,
        201
    );

    let started = std::time::Instant::now();
    let report = outbox_at(&app, &at(5)).await;
    assert_eq!(report, json!({"sent": 1, "retried": 0, "failed": 0, "throttled": 2, "errors": 0, "remaining": false}));
    assert!(started.elapsed() >= std::time::Duration::from_millis(200), "the run paused after a throttle");
    let item = outbox_item(&app, &email_id(EmailKind::PurchaseReceipt, &[&user, "p1"])).await.expect("email");
    assert_eq!((attr(&item, "status"), attr_n(&item, "attempts")), ("sent", 1), "throttles cost no attempts");
    assert_eq!(send.num_calls(), 4);
}
