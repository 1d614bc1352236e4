//! The schedule index: accounts due for rollover and emails due for sending,
//! each spread over [`SCHEDULE_SHARDS`] partitions, found by `Query` (never a
//! scan), read and claimed.

use super::items::{account_key, decode_account, email_key, get_n, get_s, s, Item};
use super::{classify, Store, StoreError, SCHEDULE_INDEX, SCHEDULE_SHARDS};
use crate::account::Account;
use crate::cycle::{format_time, Time};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnValue};
use std::collections::HashMap;

/// Which kind of scheduled work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queue {
    /// Accounts, by cycle end.
    Due,
    /// Pending emails, by next attempt.
    Outbox,
}

/// A page of the schedule: the ids due, and where the next page starts.
#[derive(Debug, Default)]
pub struct Page {
    /// User ids (`Due`) or email ids (`Outbox`).
    pub ids: Vec<String>,
    /// The key to continue from; `None` at the end of the shard.
    pub next: Option<HashMap<String, AttributeValue>>,
}

/// A pending email, as claimed for sending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedEmail {
    /// Its id.
    pub id: String,
    /// Its kind's stored name.
    pub kind: String,
    /// Recipient.
    pub to: String,
    /// Subject.
    pub subject: String,
    /// Plain text.
    pub text: String,
    /// HTML.
    pub html: String,
    /// Failed attempts so far.
    pub attempts: u32,
}

/// Email ids are hashes, user ids may hold `#`-free text only: the id is what
/// follows the first `#` of the partition key.
fn id_of(item: &Item) -> Option<String> {
    let pk = item.get("pk")?.as_s().ok()?;
    pk.split_once('#').map(|(_, id)| id.to_owned())
}

impl Store {
    /// Ids due at `now` in one shard of a queue, up to `limit`, oldest first.
    pub async fn due(
        &self,
        queue: Queue,
        shard: u32,
        now: Time,
        limit: i32,
        start: Option<HashMap<String, AttributeValue>>,
    ) -> Result<Page, StoreError> {
        let prefix = match queue {
            Queue::Due => "DUE",
            Queue::Outbox => "OUTBOX",
        };
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(SCHEDULE_INDEX)
            .key_condition_expression("sched_pk = :shard AND sched_sk <= :now")
            .expression_attribute_values(":shard", s(&format!("{prefix}#{:02}", shard % SCHEDULE_SHARDS)))
            .expression_attribute_values(":now", s(&format_time(now)))
            .set_exclusive_start_key(start)
            .limit(limit)
            .send()
            .await
            .map_err(classify)?;
        let ids = out.items.unwrap_or_default().iter().filter_map(id_of).collect();
        Ok(Page { ids, next: out.last_evaluated_key })
    }

    /// Reads up to 100 accounts in one request (strongly consistent),
    /// retrying what DynamoDB leaves unprocessed.
    pub async fn accounts(&self, user_ids: &[String]) -> Result<Vec<Account>, StoreError> {
        let mut accounts = Vec::with_capacity(user_ids.len());
        let keys: Vec<Item> = user_ids.iter().map(|id| account_key(id)).collect();
        let mut request = KeysAndAttributes::builder().set_keys(Some(keys)).consistent_read(true).build().ok();
        let mut rounds = 0;
        while let Some(keys) = request.take().filter(|k| !k.keys().is_empty()) {
            rounds += 1;
            if rounds > 1 {
                tokio::time::sleep(std::time::Duration::from_millis(fastrand::u64(0..=(20 << rounds.min(6))))).await;
            }
            if rounds > 10 {
                return Err(StoreError::Unavailable("BatchGetItem kept leaving keys unprocessed".into()));
            }
            let out =
                self.client().batch_get_item().request_items(self.table(), keys).send().await.map_err(classify)?;
            if let Some(items) = out.responses.as_ref().and_then(|r| r.get(self.table())) {
                for item in items {
                    accounts.push(decode_account(item)?);
                }
            }
            request = out.unprocessed_keys.and_then(|mut u| u.remove(self.table()));
        }
        Ok(accounts)
    }

    /// Claims a pending email due at `now` for one attempt: moves its next
    /// attempt to `lease_until`, so no other run takes it meanwhile, and
    /// returns it. `None` when another run claimed it first, or it is no
    /// longer pending.
    pub async fn claim_email(
        &self,
        id: &str,
        now: Time,
        lease_until: Time,
    ) -> Result<Option<ClaimedEmail>, StoreError> {
        let lease = format_time(lease_until);
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(email_key(id)))
            .update_expression("SET next_attempt_at = :lease, sched_sk = :lease")
            .condition_expression("#status = :pending AND next_attempt_at <= :now")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":now", s(&format_time(now)))
            .expression_attribute_values(":lease", s(&lease))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let item = match result {
            Ok(out) => out.attributes.unwrap_or_default(),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                return Ok(None)
            }
            Err(e) => return Err(classify(e)),
        };
        Ok(Some(ClaimedEmail {
            id: get_s(&item, "email_id")?.to_owned(),
            kind: get_s(&item, "email_kind")?.to_owned(),
            to: get_s(&item, "to")?.to_owned(),
            subject: get_s(&item, "subject")?.to_owned(),
            text: get_s(&item, "text")?.to_owned(),
            html: get_s(&item, "html")?.to_owned(),
            attempts: get_n(&item, "attempts")?,
        }))
    }
}
