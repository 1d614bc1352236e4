//! Failures that used to pass silently: each is now logged with its reason,
//! counted in the scheduled run's report, or answered with a clear error,
//! and never stops the rest of a run.

use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemError, BatchGetItemOutput};
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::transact_write_items::{TransactWriteItemsError, TransactWriteItemsOutput};
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemInput, UpdateItemOutput};
use aws_sdk_dynamodb::types::error::ResourceNotFoundException;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_sdk_sesv2::operation::send_email::SendEmailOutput;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use credits::App;
use integration_tests::*;
use serde_json::json;
use std::collections::HashMap;

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

async fn signed_up(app: &App, plan: &str, at: &str) -> String {
    let user = unique(plan);
    let body = json!({"user_id": user, "email": format!("{user}@example.com"), "plan": plan, "signed_up_at": at});
    let a = signup(app, body).await;
    assert_eq!(a.status, 201, "{}", a.text);
    user
}

#[tokio::test]
async fn an_account_whose_plan_left_the_catalogue_is_logged_counted_and_left_untouched() {
    let logs = capture_logs();
    let app = app_on_fresh_table(&[]).await;
    let lost = signed_up(&app, "pro", "2026-01-31T10:00:00Z").await;
    let fine = signed_up(&app, "pro", "2026-01-31T10:00:00Z").await;
    set_account_attributes(&app, &lost, &[("plan", s("legacy"))]).await;

    let report = rollover_at(&app, "2026-03-01T00:00:00Z", 0).await;
    assert_eq!(report, json!({"rolled_over": 1, "cycles": 1, "errors": 1, "remaining": true}));
    assert_eq!(ledger_kinds(&app, &lost).await.len(), 1, "no entry for the lost plan's account");
    assert_eq!(attr(&account_item(&app, &lost).await, "cycle_end"), "2026-02-28T10:00:00Z", "its cycle did not move");
    assert_eq!(attr(&account_item(&app, &fine).await, "cycle_end"), "2026-03-31T10:00:00Z", "the other rolled over");
    let errors = logs.at_level("ERROR");
    assert!(
        errors.iter().any(|l| l["plan"] == "legacy" && l["user"] == lost.as_str()),
        "an error line names the account and the plan: {errors:#?}"
    );
    // The next run reports it again; nothing was granted meanwhile.
    assert_eq!(rollover_at(&app, "2026-03-01T01:00:00Z", 0).await["errors"], 1);
    assert_ledger_explains_balance(&app, &lost).await;
}

#[tokio::test]
async fn requests_on_an_account_whose_plan_left_the_catalogue_get_a_clear_error() {
    let logs = capture_logs();
    let app = app().await;
    let (user, _) = new_user(&app, "pro").await;
    set_account_attributes(&app, &user, &[("plan", s("legacy"))]).await;
    let bought = buy(&app, json!({"user_id": user, "payment_id": "p", "amount_cents": 1000, "currency": "USD"})).await;
    let changed = change_plan(&app, json!({"user_id": user, "change_id": "c", "plan": "business"})).await;
    for a in [&bought, &changed] {
        assert_eq!((a.status, a.code()), (500, "internal"), "{}", a.text);
        assert!(a.json["error"]["message"].as_str().is_some_and(|m| m.contains("\"legacy\"")), "{}", a.text);
        assert!(!a.text.contains("CREDITS_CONFIG"), "the operator's remedy stays in the log: {}", a.text);
    }
    assert_eq!(balance(&app, &user).await["flexible"], 0, "nothing was guessed");
    let failed: Vec<_> = logs
        .lines()
        .into_iter()
        .filter(|l| l["message"] == "request failed" && l["span"]["user"] == user.as_str())
        .collect();
    assert_eq!(failed.len(), 2);
    assert!(
        failed
            .iter()
            .all(|l| l["detail"].as_str().is_some_and(|d| d.contains("legacy") && d.contains("CREDITS_CONFIG"))),
        "{failed:#?}"
    );
}

#[tokio::test]
async fn an_overflowing_grant_is_logged_counted_and_does_not_stop_the_others() {
    let logs = capture_logs();
    let app = app_on_fresh_table(&[]).await;
    let full = signed_up(&app, "pro", "2026-01-31T10:00:00Z").await;
    let fine = signed_up(&app, "pro", "2026-01-31T10:00:00Z").await;
    set_account_attributes(&app, &full, &[("bal_bonus", n(i64::MAX - 100))]).await;
    let report = rollover_at(&app, "2026-03-01T00:00:00Z", 0).await;
    assert_eq!(report, json!({"rolled_over": 1, "cycles": 1, "errors": 1, "remaining": true}));
    assert_eq!(attr(&account_item(&app, &full).await, "cycle_end"), "2026-02-28T10:00:00Z");
    assert_eq!(attr(&account_item(&app, &fine).await, "cycle_end"), "2026-03-31T10:00:00Z");
    let errors = logs.at_level("ERROR");
    assert!(
        errors.iter().any(|l| l["user"] == full.as_str() && l["error"].as_str().is_some_and(|e| !e.is_empty())),
        "an error line names the account and why: {errors:#?}"
    );
}

#[tokio::test]
async fn an_account_item_that_does_not_decode_is_counted_and_the_accounts_read_with_it_still_roll_over() {
    let logs = capture_logs();
    let app = app_on_fresh_table(&[]).await;
    let broken = signed_up(&app, "pro", "2026-01-31T10:00:00Z").await;
    let shard = attr(&account_item(&app, &broken).await, "sched_pk").to_owned();
    // An account of the same shard, so that both come in one batch read.
    let (mut fine, mut others) = (None, 0);
    for _ in 0..200 {
        let user = signed_up(&app, "pro", "2026-01-31T10:00:00Z").await;
        others += 1;
        if attr(&account_item(&app, &user).await, "sched_pk") == shard {
            fine = Some(user);
            break;
        }
    }
    let fine = fine.expect("an account in the same shard");
    set_account_attributes(&app, &broken, &[("bal_plan", s("lots"))]).await;

    let report = rollover_at(&app, "2026-03-01T00:00:00Z", 0).await;
    assert_eq!(report, json!({"rolled_over": others, "cycles": others, "errors": 1, "remaining": true}));
    assert_eq!(
        attr(&account_item(&app, &fine).await, "cycle_end"),
        "2026-03-31T10:00:00Z",
        "read with it, rolled over"
    );
    assert_eq!(attr(&account_item(&app, &broken).await, "cycle_end"), "2026-02-28T10:00:00Z", "left untouched");
    let errors = logs.at_level("ERROR");
    assert!(
        errors.iter().any(|l| l["error"].as_str().is_some_and(|e| e.contains(&broken) && e.contains("bal_plan"))),
        "an error line names the item and what is wrong with it: {errors:#?}"
    );
}

#[tokio::test]
async fn a_ledger_entry_that_cannot_be_built_answers_500_with_a_log_line_naming_why() {
    let logs = capture_logs();
    let app = app().await;
    let (user, _) = new_user(&app, "free").await;
    set_account_attributes(&app, &user, &[("bal_plan", n(i64::MAX - 1))]).await;
    let a = change_plan(&app, json!({"user_id": user, "change_id": "up", "plan": "pro"})).await;
    assert_eq!((a.status, a.code()), (500, "internal"), "{}", a.text);
    assert!(!a.text.contains("plan_change"), "the reason stays out of the body: {}", a.text);
    let failed: Vec<_> = logs
        .lines()
        .into_iter()
        .filter(|l| l["message"] == "request failed" && l["span"]["user"] == user.as_str())
        .collect();
    assert_eq!(failed.len(), 1, "{:#?}", logs.lines());
    let detail = failed[0]["detail"].as_str().unwrap_or("");
    assert!(detail.contains("plan_change") && detail.contains("below zero or past the largest number"), "{detail}");
}

fn shard_of(req: &aws_sdk_dynamodb::operation::query::QueryInput) -> String {
    req.expression_attribute_values()
        .and_then(|v| v.get(":shard"))
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

fn not_found() -> ResourceNotFoundException {
    ResourceNotFoundException::builder().message("Requested resource not found").build()
}

#[tokio::test]
async fn a_partial_catch_up_whose_next_write_fails_reports_remaining_work() {
    // 72 cycles behind: two writes. The first commits, the second fails.
    let app = app().await;
    let user = signed_up(&app, "free", "2020-01-01T00:00:00Z").await;
    let item = account_item(&app, &user).await;
    let key = HashMap::from([("pk".to_owned(), s(&format!("USER#{user}"))), ("sk".to_owned(), s("ACCOUNT"))]);
    let own_shard = attr(&item, "sched_pk").to_owned();
    let due = mock!(aws_sdk_dynamodb::Client::query)
        .match_requests(move |req| shard_of(req) == own_shard)
        .then_output(move || QueryOutput::builder().items(key.clone()).build());
    let empty = mock!(aws_sdk_dynamodb::Client::query).then_output(|| QueryOutput::builder().build());
    let read_item = item.clone();
    let batch = mock!(aws_sdk_dynamodb::Client::batch_get_item).then_output(move || {
        BatchGetItemOutput::builder().responses("credits-mocked", vec![read_item.clone()]).build()
    });
    let reread = mock!(aws_sdk_dynamodb::Client::get_item)
        .then_output(move || GetItemOutput::builder().set_item(Some(item.clone())).build());
    let write = mock!(aws_sdk_dynamodb::Client::transact_write_items)
        .sequence()
        .output(|| TransactWriteItemsOutput::builder().build())
        .error(|| TransactWriteItemsError::ResourceNotFoundException(not_found()))
        .build();
    let db = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&due, &empty, &batch, &reread, &write]);
    let mocked = mocked_app(db, aws_sdk_sesv2::Client::new(&sdk_config()));

    let report = rollover_at(&mocked, "2026-01-01T00:00:00Z", 0).await;
    assert_eq!(report, json!({"rolled_over": 1, "cycles": 40, "errors": 1, "remaining": true}));
    assert_eq!(write.num_calls(), 2);
}

fn pending_email(id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), s(&format!("EMAIL#{id}"))),
        ("sk".to_owned(), s("EMAIL")),
        ("email_id".to_owned(), s(id)),
        ("email_kind".to_owned(), s("purchase_receipt")),
        ("to".to_owned(), s("buyer@example.com")),
        ("subject".to_owned(), s("Your receipt")),
        ("text".to_owned(), s("Thank you.")),
        ("html".to_owned(), s("<p>Thank you.</p>")),
        ("status".to_owned(), s("pending")),
        ("attempts".to_owned(), n(1)),
        ("created_at".to_owned(), s("2026-01-01T00:00:00Z")),
        ("next_attempt_at".to_owned(), s("2026-01-01T00:05:00Z")),
    ])
}

fn key_id(key: Option<&HashMap<String, AttributeValue>>) -> String {
    key.and_then(|k| k.get("pk"))
        .and_then(|v| v.as_s().ok())
        .map_or("", |pk| pk.trim_start_matches("EMAIL#"))
        .to_owned()
}

/// Whether an update is `step` of email `id`: `":lease"` claims it,
/// `"sent_at"` marks it sent.
fn email_update(req: &UpdateItemInput, step: &str, id: &str) -> bool {
    req.update_expression().is_some_and(|e| e.contains(step)) && key_id(req.key()) == id
}

/// A page of the schedule index: the keys `<prefix>#<id>` / `sk` of `ids`.
fn index_page(prefix: &str, sk: &str, ids: &[&str]) -> QueryOutput {
    ids.iter()
        .fold(QueryOutput::builder(), |page, id| {
            page.items(HashMap::from([("pk".to_owned(), s(&format!("{prefix}#{id}"))), ("sk".to_owned(), s(sk))]))
        })
        .build()
}

#[tokio::test]
async fn a_store_error_marking_one_email_sent_does_not_stop_the_run() {
    let due = mock!(aws_sdk_dynamodb::Client::query)
        .match_requests(|req| shard_of(req) == "OUTBOX#00")
        .then_output(|| index_page("EMAIL", "EMAIL", &["first", "second"]));
    let empty = mock!(aws_sdk_dynamodb::Client::query).then_output(|| QueryOutput::builder().build());
    // The claim's answer depends on the key: a rule per email.
    let claim_first = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|req| email_update(req, ":lease", "first"))
        .then_output(|| UpdateItemOutput::builder().set_attributes(Some(pending_email("first"))).build());
    let claim_second = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|req| email_update(req, ":lease", "second"))
        .then_output(|| UpdateItemOutput::builder().set_attributes(Some(pending_email("second"))).build());
    let mark_first = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|req| email_update(req, "sent_at", "first"))
        .then_error(|| UpdateItemError::ResourceNotFoundException(not_found()));
    let mark_second = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|req| email_update(req, "sent_at", "second"))
        .then_output(|| UpdateItemOutput::builder().build());
    let db = mock_client!(
        aws_sdk_dynamodb,
        RuleMode::MatchAny,
        [&due, &empty, &claim_first, &claim_second, &mark_first, &mark_second]
    );
    let send =
        mock!(aws_sdk_sesv2::Client::send_email).then_output(|| SendEmailOutput::builder().message_id("m").build());
    let ses = mock_client!(aws_sdk_sesv2, RuleMode::MatchAny, [&send]);

    let report = outbox_at(&mocked_app(db, ses), "2026-01-01T01:00:00Z").await;
    assert_eq!(report, json!({"sent": 2, "retried": 0, "failed": 0, "throttled": 0, "errors": 1, "remaining": true}));
    assert_eq!((mark_first.num_calls(), mark_second.num_calls()), (1, 1), "the run went on to the second email");
}

fn throttled() -> aws_sdk_dynamodb::operation::query::QueryError {
    aws_sdk_dynamodb::operation::query::QueryError::ThrottlingException(
        aws_sdk_dynamodb::types::error::ThrottlingException::builder().message("slow down").build(),
    )
}

#[tokio::test]
async fn a_throttled_page_of_the_schedule_is_tried_again_and_the_run_completes() {
    let first = mock!(aws_sdk_dynamodb::Client::query)
        .match_requests(|req| shard_of(req) == "DUE#00")
        .sequence()
        .error(throttled)
        .times(2)
        .output(|| QueryOutput::builder().build())
        .build();
    let rest = mock!(aws_sdk_dynamodb::Client::query).then_output(|| QueryOutput::builder().build());
    let db = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&first, &rest]);
    let mocked = mocked_app(db, aws_sdk_sesv2::Client::new(&sdk_config()));
    let report = rollover_at(&mocked, "2026-01-01T00:00:00Z", 0).await;
    assert_eq!(report, json!({"rolled_over": 0, "cycles": 0, "errors": 0, "remaining": false}));
    assert!(first.num_calls() >= 3, "{} calls", first.num_calls());
    assert_eq!(rest.num_calls(), 15, "every other shard was read");
}

#[tokio::test]
async fn a_page_that_keeps_failing_is_counted_and_the_other_shards_still_run() {
    let broken = mock!(aws_sdk_dynamodb::Client::query)
        .match_requests(|req| shard_of(req) == "OUTBOX#03")
        .then_error(|| aws_sdk_dynamodb::operation::query::QueryError::ResourceNotFoundException(not_found()));
    let rest = mock!(aws_sdk_dynamodb::Client::query).then_output(|| QueryOutput::builder().build());
    let db = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&broken, &rest]);
    let send =
        mock!(aws_sdk_sesv2::Client::send_email).then_output(|| SendEmailOutput::builder().message_id("m").build());
    let ses = mock_client!(aws_sdk_sesv2, RuleMode::MatchAny, [&send]);
    let report = outbox_at(&mocked_app(db, ses), "2026-01-01T00:00:00Z").await;
    assert_eq!(report, json!({"sent": 0, "retried": 0, "failed": 0, "throttled": 0, "errors": 1, "remaining": true}));
    assert_eq!(rest.num_calls(), 15);
}

#[tokio::test]
async fn a_failed_batch_read_of_due_accounts_is_counted_and_the_other_shards_still_run() {
    let due = mock!(aws_sdk_dynamodb::Client::query)
        .match_requests(|req| shard_of(req) == "DUE#00")
        .then_output(|| index_page("USER", "ACCOUNT", &["a", "b"]));
    let rest = mock!(aws_sdk_dynamodb::Client::query).then_output(|| QueryOutput::builder().build());
    let read = mock!(aws_sdk_dynamodb::Client::batch_get_item)
        .then_error(|| BatchGetItemError::ResourceNotFoundException(not_found()));
    let db = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&due, &rest, &read]);
    let mocked = mocked_app(db, aws_sdk_sesv2::Client::new(&sdk_config()));
    let report = rollover_at(&mocked, "2026-01-01T00:00:00Z", 0).await;
    assert_eq!(report, json!({"rolled_over": 0, "cycles": 0, "errors": 1, "remaining": true}));
    assert!(read.num_calls() >= 1);
    assert_eq!(rest.num_calls(), 15, "every other shard was read");
}

/// The key of a user's account, as BatchGetItem leaves it unprocessed.
fn unprocessed(users: &[&str]) -> HashMap<String, KeysAndAttributes> {
    let keys = users
        .iter()
        .map(|user| HashMap::from([("pk".to_owned(), s(&format!("USER#{user}"))), ("sk".to_owned(), s("ACCOUNT"))]))
        .collect();
    let keys = KeysAndAttributes::builder().set_keys(Some(keys)).consistent_read(true).build().expect("keys");
    HashMap::from([("credits-mocked".to_owned(), keys)])
}

#[tokio::test]
async fn keys_a_batch_read_leaves_unprocessed_are_read_again_and_rolled_over() {
    let app = app().await;
    let (a, b) =
        (signed_up(&app, "free", "2025-12-10T00:00:00Z").await, signed_up(&app, "free", "2025-12-10T00:00:00Z").await);
    let (item_a, item_b) = (account_item(&app, &a).await, account_item(&app, &b).await);
    let (ids, b_id) = ([a.clone(), b.clone()], b.clone());
    let due = mock!(aws_sdk_dynamodb::Client::query)
        .match_requests(|req| shard_of(req) == "DUE#00")
        .then_output(move || index_page("USER", "ACCOUNT", &[ids[0].as_str(), ids[1].as_str()]));
    let empty = mock!(aws_sdk_dynamodb::Client::query).then_output(|| QueryOutput::builder().build());
    let batch = mock!(aws_sdk_dynamodb::Client::batch_get_item)
        .sequence()
        .output(move || {
            BatchGetItemOutput::builder()
                .responses("credits-mocked", vec![item_a.clone()])
                .set_unprocessed_keys(Some(unprocessed(&[&b_id])))
                .build()
        })
        .output(move || BatchGetItemOutput::builder().responses("credits-mocked", vec![item_b.clone()]).build())
        .build();
    let write = mock!(aws_sdk_dynamodb::Client::transact_write_items)
        .then_output(|| TransactWriteItemsOutput::builder().build());
    let db = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&due, &empty, &batch, &write]);
    let mocked = mocked_app(db, aws_sdk_sesv2::Client::new(&sdk_config()));

    let report = rollover_at(&mocked, "2026-01-15T00:00:00Z", 0).await;
    assert_eq!(report, json!({"rolled_over": 2, "cycles": 2, "errors": 0, "remaining": false}));
    assert_eq!((batch.num_calls(), write.num_calls()), (2, 2), "the unprocessed key read in a second round");
}

/// Keys left unprocessed round after round: the run gives the batch up
/// while its budget still holds a call's time (the retry rounds' pauses
/// alone add up to 4-8 s, which it used to sleep whatever the deadline).
#[tokio::test]
async fn a_batch_read_that_keeps_leaving_keys_unprocessed_is_given_up_within_the_budget() {
    let due = mock!(aws_sdk_dynamodb::Client::query)
        .match_requests(|req| shard_of(req) == "DUE#00")
        .then_output(|| index_page("USER", "ACCOUNT", &["a", "b"]));
    let rest = mock!(aws_sdk_dynamodb::Client::query).then_output(|| QueryOutput::builder().build());
    let batch = mock!(aws_sdk_dynamodb::Client::batch_get_item)
        .then_output(|| BatchGetItemOutput::builder().set_unprocessed_keys(Some(unprocessed(&["a", "b"]))).build());
    let db = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&due, &rest, &batch]);
    let mocked = mocked_app(db, aws_sdk_sesv2::Client::new(&sdk_config()));
    // The budget keeps Budget::MARGIN in hand: 0.8 s to spend.
    let spend = std::time::Duration::from_millis(800);
    let deadline = std::time::SystemTime::now() + credits::ops::schedule::Budget::MARGIN + spend;
    let deadline_ms = deadline.duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_millis() as u64;

    let started = std::time::Instant::now();
    let report = rollover_at(&mocked, "2026-01-01T00:00:00Z", deadline_ms).await;
    let took = started.elapsed();
    assert_eq!(report, json!({"rolled_over": 0, "cycles": 0, "errors": 1, "remaining": true}));
    assert!(batch.num_calls() >= 2, "unprocessed keys are asked for again: {}", batch.num_calls());
    assert!(took < spend + std::time::Duration::from_millis(500), "{took:?}, the margin kept");
}

#[tokio::test]
async fn a_store_error_claiming_one_email_does_not_stop_the_run() {
    let due = mock!(aws_sdk_dynamodb::Client::query)
        .match_requests(|req| shard_of(req) == "OUTBOX#00")
        .then_output(|| index_page("EMAIL", "EMAIL", &["first", "second"]));
    let empty = mock!(aws_sdk_dynamodb::Client::query).then_output(|| QueryOutput::builder().build());
    let claim_first = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|req| email_update(req, ":lease", "first"))
        .then_error(|| UpdateItemError::ResourceNotFoundException(not_found()));
    let claim_second = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|req| email_update(req, ":lease", "second"))
        .then_output(|| UpdateItemOutput::builder().set_attributes(Some(pending_email("second"))).build());
    let mark = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|req| email_update(req, "sent_at", "second"))
        .then_output(|| UpdateItemOutput::builder().build());
    let db = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&due, &empty, &claim_first, &claim_second, &mark]);
    let send =
        mock!(aws_sdk_sesv2::Client::send_email).then_output(|| SendEmailOutput::builder().message_id("m").build());
    let ses = mock_client!(aws_sdk_sesv2, RuleMode::MatchAny, [&send]);

    let report = outbox_at(&mocked_app(db, ses), "2026-01-01T01:00:00Z").await;
    assert_eq!(report, json!({"sent": 1, "retried": 0, "failed": 0, "throttled": 0, "errors": 1, "remaining": true}));
    assert_eq!((send.num_calls(), mark.num_calls()), (1, 1), "the second email was sent and marked");
}
