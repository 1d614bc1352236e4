//! Outbox bookkeeping: every change of a pending email's state, each a
//! conditional update that only touches an email still `pending` (an email
//! already sent or given up on is left alone, and that is no error).

use super::attr::{ATTEMPTS, EXPIRES_AT, LAST_ERROR, MESSAGE_ID, NEXT_ATTEMPT_AT, SCHED_PK, SCHED_SK, SENT_AT, STATUS};
use super::keys::{email_key, n, s};
use super::{unless_condition_failed, Store, StoreError};
use crate::cycle::{format_time, Time};
use crate::email::EmailStatus;
use aws_sdk_dynamodb::types::AttributeValue;

/// Sent emails are kept this long, then expire through the table's TTL.
const SENT_RETENTION_DAYS: i64 = 30;

impl Store {
    /// Applies `update` to a pending email; nothing when it is no longer pending.
    async fn update_pending_email(
        &self,
        id: &str,
        update: String,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<(), StoreError> {
        let mut request = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(email_key(id)))
            .update_expression(update)
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_values(":pending", s(EmailStatus::Pending.as_str()));
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        unless_condition_failed(request.send().await).map(|_| ())
    }

    /// Marks a pending email sent and takes it off the schedule index.
    pub async fn email_sent(&self, id: &str, message_id: &str, at: Time) -> Result<(), StoreError> {
        let expires = (at + chrono::Duration::days(SENT_RETENTION_DAYS)).timestamp();
        self.update_pending_email(
            id,
            format!(
                "SET #status = :sent, {SENT_AT} = :at, {MESSAGE_ID} = :mid, {EXPIRES_AT} = :exp REMOVE {SCHED_PK}, {SCHED_SK}"
            ),
            vec![(":sent", s(EmailStatus::Sent.as_str())), (":at", s(&format_time(at))), (":mid", s(message_id)), (":exp", n(expires))],
        )
        .await
    }

    /// Records a failed attempt of a pending email: its count and when to try
    /// again.
    pub async fn email_attempt_failed(
        &self,
        id: &str,
        attempts: u32,
        next: Time,
        error: &str,
    ) -> Result<(), StoreError> {
        let next = format_time(next);
        self.update_pending_email(
            id,
            format!("SET {ATTEMPTS} = :attempts, {NEXT_ATTEMPT_AT} = :next, {SCHED_SK} = :next, {LAST_ERROR} = :err"),
            vec![(":attempts", n(attempts)), (":next", s(&next)), (":err", s(&truncate(error)))],
        )
        .await
    }

    /// Gives up on an email after its last attempt: `failed`, off the schedule.
    pub async fn email_failed(&self, id: &str, attempts: u32, error: &str) -> Result<(), StoreError> {
        self.update_pending_email(
            id,
            format!("SET #status = :failed, {ATTEMPTS} = :attempts, {LAST_ERROR} = :err REMOVE {SCHED_PK}, {SCHED_SK}"),
            vec![
                (":failed", s(EmailStatus::Failed.as_str())),
                (":attempts", n(attempts)),
                (":err", s(&truncate(error))),
            ],
        )
        .await
    }

    /// Hands a claimed email back untried (throttled, or out of time): due
    /// again at `at`, its attempt count unchanged.
    pub async fn email_release(&self, id: &str, at: Time) -> Result<(), StoreError> {
        let at = format_time(at);
        self.update_pending_email(id, format!("SET {NEXT_ATTEMPT_AT} = :at, {SCHED_SK} = :at"), vec![(":at", s(&at))])
            .await
    }
}

/// Error texts are kept short: they are for people reading the item.
fn truncate(error: &str) -> String {
    error.chars().take(500).collect()
}
