//! What the emulator cannot produce, at the SDK boundary (aws-smithy-mocks):
//! transaction conflicts, code collisions, throttling, unexpected errors.

use aws_sdk_dynamodb::operation::transact_get_items::{TransactGetItemsError, TransactGetItemsOutput};
use aws_sdk_dynamodb::operation::transact_write_items::{TransactWriteItemsError, TransactWriteItemsOutput};
use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
use aws_sdk_dynamodb::types::error::{
    ProvisionedThroughputExceededException, ResourceNotFoundException, TransactionCanceledException,
};
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason, ItemResponse};
use aws_sdk_sesv2::operation::send_email::{SendEmailError, SendEmailOutput};
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use integration_tests::*;
use serde_json::json;
use std::sync::{Arc, Mutex};

/// A real account item: signed up on the emulator, read back raw.
async fn stored_account(plan: &str) -> (String, Item) {
    let app = app().await;
    let (user, _) = new_user(&app, plan).await;
    let account = account_item(&app, &user).await;
    (user, account)
}

fn ses_ok() -> aws_sdk_sesv2::Client {
    let send =
        mock!(aws_sdk_sesv2::Client::send_email).then_output(|| SendEmailOutput::builder().message_id("m-1").build());
    mock_client!(aws_sdk_sesv2, RuleMode::MatchAny, [&send])
}

fn cancelled(codes: &[&str]) -> TransactWriteItemsError {
    let mut e = TransactionCanceledException::builder().message("Transaction cancelled");
    for code in codes {
        e = e.cancellation_reasons(CancellationReason::builder().code(*code).build());
    }
    TransactWriteItemsError::TransactionCanceledException(e.build())
}

/// A read that finds the account and no idempotency record.
fn reads_snapshot(account: Item) -> aws_smithy_mocks::Rule {
    mock!(aws_sdk_dynamodb::Client::transact_get_items).then_output(move || {
        TransactGetItemsOutput::builder()
            .responses(ItemResponse::builder().set_item(Some(account.clone())).build())
            .responses(ItemResponse::builder().build())
            .build()
    })
}

/// A purchase whose read fails with `error` on every try.
async fn purchase_when_reading_fails(error: fn() -> TransactGetItemsError) -> Answer {
    let read = mock!(aws_sdk_dynamodb::Client::transact_get_items).then_error(error);
    let db = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&read]);
    buy(&mocked_app(db, ses_ok()), purchase_of("someone")).await
}

fn purchase_of(user: &str) -> serde_json::Value {
    json!({"user_id": user, "payment_id": "pay-1", "amount_cents": 1000, "currency": "USD"})
}

#[tokio::test]
async fn transaction_conflicts_are_retried_until_the_purchase_commits() {
    let (user, account) = stored_account("pro").await;
    let read = reads_snapshot(account);
    let write = mock!(aws_sdk_dynamodb::Client::transact_write_items)
        .sequence()
        .error(|| cancelled(&["None", "TransactionConflict", "None", "None"]))
        .times(2)
        .output(|| TransactWriteItemsOutput::builder().build())
        .build();
    let mark = mock!(aws_sdk_dynamodb::Client::update_item).then_output(|| UpdateItemOutput::builder().build());
    let db = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&read, &write, &mark]);
    let app = mocked_app(db, ses_ok());

    let a = buy(&app, purchase_of(&user)).await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.json["balance"]["flexible"], 3000);
    assert_eq!(write.num_calls(), 3, "two conflicts, then the commit");
    assert_eq!(read.num_calls(), 3, "each attempt reads a fresh snapshot");
    assert_eq!(mark.num_calls(), 1, "the receipt is marked sent once");
}

#[tokio::test]
async fn a_referral_code_collision_draws_a_new_code() {
    let codes = Arc::new(Mutex::new(Vec::new()));
    let seen = codes.clone();
    let write = mock!(aws_sdk_dynamodb::Client::transact_write_items)
        .match_requests(move |req| {
            // Item 2 is the new account's code claim.
            let pk = req.transact_items().get(2).and_then(|i| i.put()).and_then(|p| p.item().get("pk")).cloned();
            if let (Ok(mut seen), Some(AttributeValue::S(pk))) = (seen.lock(), pk) {
                seen.push(pk);
            }
            true
        })
        .sequence()
        .error(|| cancelled(&["None", "None", "ConditionalCheckFailed", "None"]))
        .output(|| TransactWriteItemsOutput::builder().build())
        .build();
    // Signup reads first (no record, no account), like every mutating route.
    let read = mock!(aws_sdk_dynamodb::Client::transact_get_items).then_output(|| {
        TransactGetItemsOutput::builder()
            .responses(ItemResponse::builder().build())
            .responses(ItemResponse::builder().build())
            .build()
    });
    let db = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&read, &write]);
    let app = mocked_app(db, ses_ok());

    let a = signup(&app, json!({"user_id": "collider", "email": "c@example.com"})).await;
    assert_eq!(a.status, 201, "{}", a.text);
    let codes = codes.lock().expect("codes").clone();
    assert_eq!(codes.len(), 2);
    assert_ne!(codes[0], codes[1], "the retry claims another code");
    assert_eq!(format!("CODE#{}", a.json["account"]["referral_code"].as_str().unwrap_or("")), codes[1]);
}

#[tokio::test]
async fn throttling_that_outlasts_the_sdk_retries_is_503() {
    let a = purchase_when_reading_fails(|| {
        TransactGetItemsError::ProvisionedThroughputExceededException(
            ProvisionedThroughputExceededException::builder().message("slow down").build(),
        )
    })
    .await;
    assert_eq!((a.status, a.code()), (503, "unavailable"), "{}", a.text);
}

#[tokio::test]
async fn unexpected_dynamodb_errors_are_500_without_internal_detail() {
    let a = purchase_when_reading_fails(|| {
        TransactGetItemsError::ResourceNotFoundException(
            ResourceNotFoundException::builder().message("Requested resource not found: secret-table").build(),
        )
    })
    .await;
    assert_eq!((a.status, a.code()), (500, "internal"), "{}", a.text);
    assert!(!a.text.contains("secret-table") && !a.text.contains("ResourceNotFound"), "{}", a.text);
}

#[tokio::test]
async fn ses_throttling_keeps_the_purchase_and_records_the_attempt() {
    let (user, account) = stored_account("pro").await;
    let read = reads_snapshot(account);
    let write = mock!(aws_sdk_dynamodb::Client::transact_write_items)
        .then_output(|| TransactWriteItemsOutput::builder().build());
    let failed_attempt = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|req| req.update_expression().is_some_and(|e| e.contains("attempts = :attempts")))
        .then_output(|| UpdateItemOutput::builder().build());
    let db = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&read, &write, &failed_attempt]);
    let send = mock!(aws_sdk_sesv2::Client::send_email).then_error(|| {
        SendEmailError::TooManyRequestsException(
            aws_sdk_sesv2::types::error::TooManyRequestsException::builder()
                .message("Maximum sending rate exceeded")
                .build(),
        )
    });
    let ses = mock_client!(aws_sdk_sesv2, RuleMode::MatchAny, [&send]);
    let app = mocked_app(db, ses);

    let a = buy(&app, purchase_of(&user)).await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert!(send.num_calls() >= 1);
    assert_eq!(failed_attempt.num_calls(), 1, "the email stays pending with its attempt recorded");
}

fn read_conflict() -> TransactGetItemsError {
    TransactGetItemsError::TransactionCanceledException(
        TransactionCanceledException::builder()
            .message("Transaction cancelled")
            .cancellation_reasons(CancellationReason::builder().code("None").build())
            .cancellation_reasons(CancellationReason::builder().code("TransactionConflict").build())
            .build(),
    )
}

#[tokio::test]
async fn a_read_cancelled_by_a_transaction_in_flight_is_retried() {
    let (user, account) = stored_account("pro").await;
    let read = mock!(aws_sdk_dynamodb::Client::transact_get_items)
        .sequence()
        .error(read_conflict)
        .times(2)
        .output(move || {
            TransactGetItemsOutput::builder()
                .responses(ItemResponse::builder().set_item(Some(account.clone())).build())
                .responses(ItemResponse::builder().build())
                .build()
        })
        .build();
    let write = mock!(aws_sdk_dynamodb::Client::transact_write_items)
        .then_output(|| TransactWriteItemsOutput::builder().build());
    let mark = mock!(aws_sdk_dynamodb::Client::update_item).then_output(|| UpdateItemOutput::builder().build());
    let db = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&read, &write, &mark]);

    let a = buy(&mocked_app(db, ses_ok()), purchase_of(&user)).await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(read.num_calls(), 3, "two cancelled reads, then the one the purchase used");
    assert_eq!(write.num_calls(), 1);
}

#[tokio::test]
async fn reads_that_keep_conflicting_end_in_503_not_500() {
    let a = purchase_when_reading_fails(read_conflict).await;
    assert_eq!((a.status, a.code()), (503, "unavailable"), "{}", a.text);
}

#[tokio::test]
async fn a_spend_whose_catch_up_rollover_the_store_fails_is_503_not_a_spend_of_expired_credits() {
    // An account whose cycle ended long ago, as the spend reads it: 5,000 plan
    // credits of an ended cycle.
    let app = app().await;
    let (user, _) = new_user_since(&app, "pro", "2026-01-15T10:00:00Z").await;
    let read = reads_snapshot(account_item(&app, &user).await);
    // The rollover's write fails in the store (throttling past the SDK's
    // retries would, or any other store error); a spend's write after it
    // would succeed.
    let write = mock!(aws_sdk_dynamodb::Client::transact_write_items)
        .sequence()
        .error(|| {
            TransactWriteItemsError::ResourceNotFoundException(
                ResourceNotFoundException::builder().message("the store failed").build(),
            )
        })
        .output(|| TransactWriteItemsOutput::builder().build())
        .build();
    let db = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&read, &write]);
    let a = spend(&mocked_app(db, ses_ok()), json!({"user_id": user, "spend_id": "s1", "credits": 5000})).await;
    assert_eq!((a.status, a.code()), (503, "unavailable"), "{}", a.text);
    assert_eq!(write.num_calls(), 1, "the rollover's write, and no spend on the ended cycle");
}
