//! The schedule index: accounts due for rollover and emails due for sending,
//! each spread over [`SCHEDULE_SHARDS`] partitions, found by `Query` (never a
//! scan), read and claimed.

use super::attr::{ATTEMPTS, NEXT_ATTEMPT_AT, SCHED_PK, SCHED_SK, SK, STATUS};
use super::items::{decode_account, decode_email, get_n};
use super::keys::{account_key, email_key, id_of, s, schedule_partition, Item, Queue, HOLD_PREFIX};
use super::{classify, unless_condition_failed, Store, StoreError, SCHEDULE_INDEX};
use crate::account::Account;
use crate::cycle::{format_time, Time};
use crate::email::{EmailStatus, OutboxEmail};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnValue};
use std::collections::HashMap;
use std::time::Duration;

/// A page of the schedule: the ids due, and where the next page starts.
#[derive(Debug, Default)]
pub struct Page {
    /// User ids (`Due`, `Holds`) or email ids (`Outbox`).
    pub ids: Vec<String>,
    /// With `Holds`: each item's (user id, hold id).
    pub holds: Vec<(String, String)>,
    /// The key to continue from; `None` at the end of the shard.
    pub next: Option<HashMap<String, AttributeValue>>,
}

/// A pending email, claimed for one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// The email, or why its item does not decode (a kind of a newer
    /// release, in the middle of a deploy, say).
    pub email: Result<OutboxEmail, String>,
    /// Failed attempts before this one (0 where the item does not say).
    pub attempts: u32,
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
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(SCHEDULE_INDEX)
            .key_condition_expression(format!("{SCHED_PK} = :shard AND {SCHED_SK} <= :now"))
            .expression_attribute_values(":shard", s(&schedule_partition(queue, shard)))
            .expression_attribute_values(":now", s(&format_time(now)))
            .set_exclusive_start_key(start)
            .limit(limit)
            .send()
            .await
            .map_err(classify)?;
        let items = out.items.unwrap_or_default();
        let ids = items.iter().filter_map(id_of).collect();
        let holds = items
            .iter()
            .filter_map(|i| {
                let hold = i.get(SK)?.as_s().ok()?.strip_prefix(HOLD_PREFIX)?;
                Some((id_of(i)?, hold.to_owned()))
            })
            .collect();
        Ok(Page { ids, holds, next: out.last_evaluated_key })
    }

    /// Reads up to 100 accounts in one request (strongly consistent),
    /// retrying what DynamoDB leaves unprocessed, up to 10 rounds, while
    /// `may_wait(pause)` says the caller has time to pause before the next
    /// (a scheduled run's budget: the pauses add up to seconds). An item
    /// that does not decode is an error of its own, in the list: it does not
    /// hide the accounts read with it.
    pub async fn accounts(
        &self,
        user_ids: &[String],
        may_wait: impl Fn(Duration) -> bool,
    ) -> Result<Vec<Result<Account, StoreError>>, StoreError> {
        let keys: Vec<Item> = user_ids.iter().map(|id| account_key(id)).collect();
        Ok(self.batch_get(keys, may_wait).await?.iter().map(decode_account).collect())
    }

    /// The items of up to 100 `keys` that exist, read in one request
    /// (strongly consistent), with the retries of [`Store::accounts`].
    pub(crate) async fn batch_get(
        &self,
        keys: Vec<Item>,
        may_wait: impl Fn(Duration) -> bool,
    ) -> Result<Vec<Item>, StoreError> {
        let asked = keys.len();
        let mut found = Vec::with_capacity(asked);
        let mut request = KeysAndAttributes::builder().set_keys(Some(keys)).consistent_read(true).build().ok();
        let mut rounds = 0;
        while let Some(keys) = request.take().filter(|k| !k.keys().is_empty()) {
            rounds += 1;
            if rounds > 1 {
                let pause = Duration::from_millis(fastrand::u64(0..=(20 << rounds.min(6))));
                if rounds > 10 || !may_wait(pause) {
                    return Err(StoreError::Unavailable(format!(
                        "BatchGetItem left {} of {} keys unprocessed after {} rounds",
                        keys.keys().len(),
                        asked,
                        rounds - 1
                    )));
                }
                tokio::time::sleep(pause).await;
            }
            let mut out =
                self.client().batch_get_item().request_items(self.table(), keys).send().await.map_err(classify)?;
            if let Some(items) = out.responses.as_mut().and_then(|r| r.remove(self.table())) {
                found.extend(items);
            }
            request = out.unprocessed_keys.and_then(|mut u| u.remove(self.table()));
        }
        Ok(found)
    }

    /// Claims a pending email due at `now` for one attempt: moves its next
    /// attempt to `lease_until`, so no other run takes it meanwhile, and
    /// returns it. `None` when another run claimed it first, or it is no
    /// longer pending.
    pub async fn claim_email(&self, id: &str, now: Time, lease_until: Time) -> Result<Option<Claimed>, StoreError> {
        let lease = format_time(lease_until);
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(email_key(id)))
            .update_expression(format!("SET {NEXT_ATTEMPT_AT} = :lease, {SCHED_SK} = :lease"))
            .condition_expression(format!("#status = :pending AND {NEXT_ATTEMPT_AT} <= :now"))
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_values(":pending", s(EmailStatus::Pending.as_str()))
            .expression_attribute_values(":now", s(&format_time(now)))
            .expression_attribute_values(":lease", s(&lease))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        // Claimed by another run first, or no longer pending.
        let Some(out) = unless_condition_failed(result)? else { return Ok(None) };
        let item = out.attributes.unwrap_or_default();
        Ok(Some(match decode_email(&item) {
            Ok((email, attempts)) => Claimed { email: Ok(email), attempts },
            Err(e) => Claimed { email: Err(e.to_string()), attempts: get_n(&item, ATTEMPTS).unwrap_or(0) },
        }))
    }
}
