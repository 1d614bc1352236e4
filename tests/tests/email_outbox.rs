//! The scheduled `email-outbox`, against the emulator, each test on its own
//! table and with its own sender domain (so removing an identity touches no
//! other test).

use aws_sdk_dynamodb::types::AttributeValue::S;
use aws_sdk_sesv2::operation::send_email::{SendEmailError, SendEmailOutput};
use aws_sdk_sesv2::types::error::{MessageRejected, SendingPausedException, TooManyRequestsException};
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

async fn messages_to(user: &str) -> usize {
    sent_emails().await.iter().filter(|m| m.to_string().contains(&format!("{user}@example.com"))).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_email_is_sent_by_a_later_run_once_the_identity_is_back_exactly_once() {
    let domain = format!("{}.outbox.example", unique("d").to_lowercase());
    let (app, user, id) = refused_receipt(&domain).await;

    let too_soon = outbox_at(&app, &in_minutes(0)).await;
    assert_eq!(
        (too_soon["sent"].as_u64(), too_soon["retried"].as_u64()),
        (Some(0), Some(0)),
        "not due before its backoff"
    );

    let still_refused = outbox_at(&app, &in_minutes(5)).await;
    assert_eq!(still_refused["retried"], 1, "{still_refused}");
    let item = outbox_item(&app, &id).await.expect("email");
    assert_eq!((attr(&item, "status"), attr_n(&item, "attempts")), ("pending", 2));
    assert!(attr(&item, "last_error").contains("not verified"), "{}", attr(&item, "last_error"));

    verify_identity(&domain).await;
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { outbox_at(&app, &in_minutes(60)).await })
        })
        .collect();
    let mut sent = 0;
    for run in runs {
        sent += run.await.expect("run")["sent"].as_u64().unwrap_or(0);
    }
    assert_eq!(sent, 1, "three concurrent runs send it once");
    assert_eq!(outbox_at(&app, &in_minutes(120)).await["sent"], 0);
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
        let report = outbox_at(&app, &in_minutes(run * 7 * 60)).await; // beyond the longest backoff each time
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

    let report = outbox_at(&app, &in_minutes(5)).await;
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
    let report = outbox_at(&app, &in_minutes(5)).await;
    assert_eq!(report, json!({"sent": 1, "retried": 0, "failed": 0, "throttled": 2, "errors": 0, "remaining": false}));
    assert!(started.elapsed() >= std::time::Duration::from_millis(200), "the run paused after a throttle");
    let item = outbox_item(&app, &email_id(EmailKind::PurchaseReceipt, &[&user, "p1"])).await.expect("email");
    assert_eq!((attr(&item, "status"), attr_n(&item, "attempts")), ("sent", 1), "throttles cost no attempts");
    assert_eq!(send.num_calls(), 4);
}

#[tokio::test]
async fn ses_paused_for_the_account_fails_no_email_and_stops_the_run() {
    // SES's account-wide pause: inline for both receipts, then in one run
    // (which stops at its first email), then over; the receipts go out with
    // no attempt counted, however long the pause lasted.
    let paused = || SendEmailError::SendingPausedException(SendingPausedException::builder().message("paused").build());
    let send = mock!(aws_sdk_sesv2::Client::send_email)
        .sequence()
        .error(paused)
        .times(3)
        .output(|| SendEmailOutput::builder().message_id("m-1").build())
        .times(2)
        .build();
    let app = with_ses(mock_client!(aws_sdk_sesv2, RuleMode::Sequential, [&send])).await;
    let (user, _) = new_user(&app, "pro").await;
    let ids: Vec<String> = ["p1", "p2"].iter().map(|p| email_id(EmailKind::PurchaseReceipt, &[&user, p])).collect();
    for payment in ["p1", "p2"] {
        let body = json!({"user_id": user, "payment_id": payment, "amount_cents": 500, "currency": "USD"});
        assert_eq!(buy(&app, body).await.status, 201);
    }
    for id in &ids {
        let item = outbox_item(&app, id).await.expect("email");
        assert_eq!((attr(&item, "status"), attr_n(&item, "attempts")), ("pending", 0));
        assert!(attr(&item, "last_error").contains("unavailable"), "{}", attr(&item, "last_error"));
    }

    let stopped = outbox_at(&app, &in_minutes(5)).await;
    assert_eq!(stopped, json!({"sent": 0, "retried": 0, "failed": 0, "throttled": 0, "errors": 1, "remaining": true}));
    assert_eq!(send.num_calls(), 3, "the run stopped at its first email");
    for id in &ids {
        let item = outbox_item(&app, id).await.expect("email");
        assert_eq!((attr(&item, "status"), attr_n(&item, "attempts")), ("pending", 0), "handed back, no attempt");
    }

    let resumed = outbox_at(&app, &in_minutes(6)).await;
    assert_eq!((resumed["sent"].as_u64(), resumed["remaining"].as_bool()), (Some(2), Some(false)), "{resumed}");
    for id in &ids {
        let item = outbox_item(&app, id).await.expect("email");
        assert_eq!((attr(&item, "status"), attr_n(&item, "attempts")), ("sent", 0));
    }
}

#[tokio::test]
async fn an_email_whose_item_does_not_decode_counts_a_failed_attempt_and_is_sent_once_it_does() {
    let domain = format!("{}.corrupt.example", unique("d").to_lowercase());
    let (app, user, id) = refused_receipt(&domain).await;
    verify_identity(&domain).await;
    // A kind this release does not know (a newer release's, in the middle of a deploy).
    set_email_attributes(&app, &id, &[("email_kind", S("newer_kind".into()))]).await;
    let report = outbox_at(&app, &in_minutes(5)).await;
    assert_eq!((report["retried"].as_u64(), report["errors"].as_u64()), (Some(1), Some(0)), "{report}");
    let item = outbox_item(&app, &id).await.expect("email");
    assert_eq!((attr(&item, "status"), attr_n(&item, "attempts")), ("pending", 2), "an attempt, not the end");
    assert!(attr(&item, "last_error").contains("does not decode"), "{}", attr(&item, "last_error"));
    // The release that knows the kind sends it.
    set_email_attributes(&app, &id, &[("email_kind", S("purchase_receipt".into()))]).await;
    let later = outbox_at(&app, &in_minutes(60)).await;
    assert_eq!(later["sent"], 1, "{later}");
    assert_eq!(messages_to(&user).await, 1);
}

#[tokio::test]
async fn a_run_that_starts_late_counts_the_backoff_from_the_clock() {
    let domain = format!("{}.late.example", unique("d").to_lowercase());
    let (app, _user, id) = refused_receipt(&domain).await;
    // Due half an hour ago, and a run whose event is twenty minutes old (a retried invocation).
    set_email_attributes(&app, &id, &[("next_attempt_at", S(in_minutes(-30))), ("sched_sk", S(in_minutes(-30)))]).await;
    let report = outbox_at(&app, &in_minutes(-20)).await;
    assert_eq!(report["retried"], 1, "{report}");
    let item = outbox_item(&app, &id).await.expect("email");
    let next = credits::cycle::parse_time(attr(&item, "next_attempt_at")).expect("next attempt");
    assert!(
        next >= credits::cycle::now() + chrono::Duration::minutes(1),
        "the next attempt after the backoff from now, not from the event: {next}"
    );
}

#[tokio::test]
async fn a_pause_left_by_throttling_is_not_slept_past_the_runs_budget() {
    use credits::ops::schedule::{Budget, Deadline};
    // Both receipts refused inline; in the run, SES throttles five times (pauses
    // of 200, 400, 800, 1,600 and 3,200 ms), accepts the first email, and would accept the second.
    let send = mock!(aws_sdk_sesv2::Client::send_email)
        .sequence()
        .error(|| SendEmailError::MessageRejected(MessageRejected::builder().message("refused").build()))
        .times(2)
        .error(|| {
            SendEmailError::TooManyRequestsException(TooManyRequestsException::builder().message("slow down").build())
        })
        .times(5)
        .output(|| SendEmailOutput::builder().message_id("m-1").build())
        .times(2)
        .build();
    let app = with_ses(mock_client!(aws_sdk_sesv2, RuleMode::Sequential, [&send])).await;
    let (user, _) = new_user(&app, "pro").await;
    for payment in ["p1", "p2"] {
        let body = json!({"user_id": user, "payment_id": payment, "amount_cents": 500, "currency": "USD"});
        assert_eq!(buy(&app, body).await.status, 201);
    }
    // Time for the five pauses and 1.5 s more (the emulator's calls, on a busy
    // machine): the first email's send leaves a 1.6 s pause that the second's
    // would sleep first, with less than that left.
    let budget = Budget::new(Deadline::After(Budget::MARGIN + std::time::Duration::from_millis(7_700)));
    let mailer = app.mailer.as_ref().expect("mailer");
    let when = credits::cycle::parse_time(&in_minutes(5)).expect("time");
    let report = credits::ops::outbox::run(&app.store, mailer, when, &budget).await;
    assert_eq!((report.sent, report.throttled, report.remaining), (1, 5, true), "{report:?}");
    let mut states = Vec::new();
    for payment in ["p1", "p2"] {
        let item = outbox_item(&app, &email_id(EmailKind::PurchaseReceipt, &[&user, payment])).await.expect("email");
        states.push((attr(&item, "status").to_owned(), attr_n(&item, "attempts")));
    }
    states.sort();
    assert_eq!(states, [("pending".to_owned(), 1), ("sent".to_owned(), 1)], "the other handed back untried");
    assert_eq!(send.num_calls(), 8, "two refused inline, five throttles, one accepted");
}

/// A purchase of `user`'s through `purchase`, in an invocation whose deadline is `ahead`.
async fn buy_before(app: &App, user: &str, payment: &str, ahead: std::time::Duration) -> Answer {
    use lambda_http::RequestExt;
    let body = json!({"user_id": user, "payment_id": payment, "amount_cents": 500, "currency": "USD"}).to_string();
    let mut context = lambda_runtime::Context::default();
    context.deadline = epoch_ms_in(ahead);
    let req = request(&service_event("purchase.json", &body)).with_lambda_context(context);
    answer(purchase::handle(app, req).await.expect("handlers never fail"))
}

#[tokio::test]
async fn a_request_sends_its_email_only_while_its_invocation_can_wait_for_ses() {
    let send =
        mock!(aws_sdk_sesv2::Client::send_email).then_output(|| SendEmailOutput::builder().message_id("m-1").build());
    let app = with_ses(mock_client!(aws_sdk_sesv2, RuleMode::MatchAny, [&send])).await;
    let (user, _) = new_user(&app, "pro").await;
    let plenty = credits::ops::outbox::SEND_TIME + std::time::Duration::from_secs(5);
    let a = buy_before(&app, &user, "p1", plenty).await;
    assert_eq!(a.status, 201, "{}", a.text);
    let sent = outbox_item(&app, &email_id(EmailKind::PurchaseReceipt, &[&user, "p1"])).await.expect("email");
    assert_eq!((attr(&sent, "status"), send.num_calls()), ("sent", 1));

    // Less than an SES call's worst case left: the purchase answers, its receipt waits for email-outbox.
    let short = credits::ops::outbox::SEND_TIME - std::time::Duration::from_secs(2);
    let b = buy_before(&app, &user, "p2", short).await;
    assert_eq!(b.status, 201, "{}", b.text);
    let left = outbox_item(&app, &email_id(EmailKind::PurchaseReceipt, &[&user, "p2"])).await.expect("email");
    assert_eq!((attr(&left, "status"), attr_n(&left, "attempts"), send.num_calls()), ("pending", 0, 1));
    let report = outbox_at(&app, &in_minutes(5)).await;
    assert_eq!(report["sent"], 1, "{report}");
    assert_eq!(send.num_calls(), 2);
}

/// The outbox's conditional writes answer, not fail, when their condition
/// does not hold: a claimed email is not claimed again while leased, and a
/// sent one is not marked again (its first message id stays).
#[tokio::test]
async fn a_leased_email_is_not_claimed_again_and_a_sent_one_not_marked_again() {
    let domain = format!("{}.outbox.example", unique("d").to_lowercase());
    let (app, _, id) = refused_receipt(&domain).await;
    let when = credits::cycle::parse_time(&in_minutes(5)).expect("time");
    let lease = when + credits::ops::outbox::LEASE;
    assert!(app.store.claim_email(&id, when, lease).await.expect("a claim").is_some());
    assert!(app.store.claim_email(&id, when, lease).await.expect("no error: leased").is_none());
    app.store.email_sent(&id, "m-1", when).await.expect("marked sent");
    app.store.email_sent(&id, "m-2", when).await.expect("no error: already sent");
    assert!(app.store.claim_email(&id, lease, lease).await.expect("no error: sent").is_none());
    let item = outbox_item(&app, &id).await.expect("email");
    assert_eq!((attr(&item, "status"), attr(&item, "message_id")), ("sent", "m-1"));
}
