//! Outbox bookkeeping: marking emails sent, or recording a failed attempt.

use super::items::{email_key, n, s};
use super::{classify, Store, StoreError};
use crate::cycle::{format_time, Time};

/// Sent emails are kept this long, then expire through the table's TTL.
const SENT_RETENTION_DAYS: i64 = 30;

impl Store {
    /// Marks a pending email sent and takes it off the schedule index.
    pub async fn email_sent(&self, id: &str, message_id: &str, at: Time) -> Result<(), StoreError> {
        let expires = (at + chrono::Duration::days(SENT_RETENTION_DAYS)).timestamp();
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(email_key(id)))
            .update_expression(
                "SET #status = :sent, sent_at = :at, message_id = :mid, expires_at = :exp REMOVE sched_pk, sched_sk",
            )
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":sent", s("sent"))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":at", s(&format_time(at)))
            .expression_attribute_values(":mid", s(message_id))
            .expression_attribute_values(":exp", n(expires))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Already marked by someone else: nothing to do.
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(classify(e)),
        }
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
        let error: String = error.chars().take(500).collect();
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(email_key(id)))
            .update_expression("SET attempts = :attempts, next_attempt_at = :next, sched_sk = :next, last_error = :err")
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":attempts", n(attempts))
            .expression_attribute_values(":next", s(&next))
            .expression_attribute_values(":err", s(&error))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(classify(e)),
        }
    }
}
