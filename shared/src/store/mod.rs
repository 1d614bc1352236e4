//! The DynamoDB encoding of the credit system: one table, the items the
//! README's table design describes, and the classification of SDK errors
//! into the few outcomes the operations care about.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | account | `USER#<user_id>` | `ACCOUNT` |
//! | ledger entry | `USER#<user_id>` | `LEDGER#<seq, 20 digits>` |
//! | idempotency record | `USER#<user_id>` | `IDEM#<route>#<key>` |
//! | hold | `USER#<user_id>` | `HOLD#<hold_id>` |
//! | open hold's entry | `USER#<user_id>` | `OPENHOLD#<hold_id>` |
//! | referral code claim | `CODE#<code>` | `CODE` |
//! | outbox email | `EMAIL#<email_id>` | `EMAIL` |
//! | Stripe payment, subscription, user | `STRIPE#PI#…`, `STRIPE#SUB#…`, `STRIPE#USER#…` | `STRIPE` |
//!
//! One index, `by-schedule` (hash `sched_pk`, range `sched_sk`, sparse, keys
//! only): due accounts (`DUE#<shard>`, cycle end), pending emails
//! (`OUTBOX#<shard>`, next attempt) and open holds (`HOLDS#<shard>`,
//! expiry), sharded so none becomes a hot partition. A referral code's
//! owner is read from its claim item, which is strongly consistent where an
//! index would not be.

mod attr;
mod items;
mod keys;
mod outbox;
mod schedule;
mod stripe;
mod tx;

pub use keys::{schedule_partition, Queue, SCHEDULE_SHARDS};
pub use schedule::Page;
pub use stripe::{PaymentOwner, SubscriptionFacts};
pub use tx::{CommitError, Role, Tx, Write};

use crate::account::Account;
use crate::hold::{Hold, HoldStatus};
use crate::idempotency::{IdemRecord, RecordKey, Route};
use crate::ledger::LedgerEntry;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_get_items::TransactGetItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Get, TransactGetItem};
use aws_sdk_dynamodb::Client;
use items::{
    decode_account, decode_code_claim, decode_entry, decode_hold, decode_open_hold, decode_purchase, decode_record,
};
use keys::{
    account_key, code_key, hold_key, record_key, s, stripe_user_key, subscription_key, user_pk, Item, HOLD_PREFIX,
    LEDGER_PREFIX, OPEN_HOLD_PREFIX,
};

/// Name of the sparse index of scheduled work (due accounts, pending emails, open holds).
pub const SCHEDULE_INDEX: &str = "by-schedule";

/// A store failure, classified once here.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Throttled, timed out or unreachable after the SDK's own retries: the
    /// caller may retry with the same key.
    #[error("DynamoDB unavailable: {0}")]
    Unavailable(String),
    /// A read was cancelled because a transaction on the same items was in
    /// flight: read again.
    #[error("DynamoDB read conflict: {0}")]
    Conflict(String),
    /// Anything else: a bug, a missing table, a permission.
    #[error("DynamoDB error: {0}")]
    Internal(String),
    /// A stored item does not decode: data written by something else.
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether trying the same thing again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Conflict(_))
    }
}

/// Classifies any DynamoDB SDK error, by its modelled type where it has one
/// and by its code where it has not (`ServiceUnavailable` is not modelled).
pub(crate) fn classify<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
    aws_sdk_dynamodb::Error: From<SdkError<E, R>>,
{
    use aws_sdk_dynamodb::Error as E;
    let text = DisplayErrorContext(&err).to_string();
    if matches!(err, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)) {
        return StoreError::Unavailable(text);
    }
    match E::from(err) {
        E::ProvisionedThroughputExceededException(_)
        | E::RequestLimitExceeded(_)
        | E::ThrottlingException(_)
        | E::InternalServerError(_)
        | E::TransactionInProgressException(_) => StoreError::Unavailable(text),
        other if matches!(other.code(), Some("ServiceUnavailable" | "Throttling" | "ThrottlingException")) => {
            StoreError::Unavailable(text)
        }
        _ => StoreError::Internal(text),
    }
}

/// A conditional write's outcome: its output, `None` where its condition
/// failed (an answer to the caller, not an error), or the error classified.
pub(crate) fn unless_condition_failed<T, E, R>(result: Result<T, SdkError<E, R>>) -> Result<Option<T>, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
    aws_sdk_dynamodb::Error: From<SdkError<E, R>>,
{
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e) if e.as_service_error().is_some_and(|e| e.code() == Some("ConditionalCheckFailedException")) => Ok(None),
        Err(e) => Err(classify(e)),
    }
}

/// Classifies a failed `TransactGetItems`: a cancellation because of a
/// transaction in flight on the same items is a [`StoreError::Conflict`].
fn classify_read(err: SdkError<TransactGetItemsError, aws_sdk_dynamodb::config::http::HttpResponse>) -> StoreError {
    if let Some(TransactGetItemsError::TransactionCanceledException(e)) = err.as_service_error() {
        let codes: Vec<&str> = e.cancellation_reasons().iter().filter_map(|r| r.code()).collect();
        if codes.contains(&"TransactionConflict") {
            return StoreError::Conflict(format!("TransactGetItems cancelled: {codes:?}"));
        }
        if codes.iter().any(|c| matches!(*c, "ThrottlingError" | "ProvisionedThroughputExceeded")) {
            return StoreError::Unavailable(format!("TransactGetItems cancelled: {codes:?}"));
        }
    }
    classify(err)
}

/// Items a request reads besides its user's account and its own record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lookups {
    /// A referral code: its claim item names its owner.
    pub code: Option<String>,
    /// A payment id: the user's purchase with that key, if any.
    pub purchase: Option<String>,
    /// A hold id: the user's hold with that id, if any.
    pub hold: Option<String>,
    /// A Stripe subscription id: what the webhook knows of it and of the
    /// subscription the user's plan came from.
    pub subscription: Option<String>,
}

/// A purchase, as its idempotency record keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurchaseFacts {
    /// Its key.
    pub payment_id: String,
    /// The credits it bought.
    pub credits: i64,
    /// The credits reversed so far.
    pub reversed: i64,
}

/// What a mutating request reads before it decides, in one
/// `TransactGetItems`: its user's account, its idempotency record, and its
/// [`Lookups`].
#[derive(Debug, Default)]
pub struct RequestRead {
    /// The record its key left, if the key was used before.
    pub record: Option<IdemRecord>,
    /// The account of the request's user.
    pub account: Option<Account>,
    /// The user who owns the referral code the request names.
    pub code_owner: Option<String>,
    /// The purchase the request names.
    pub purchase: Option<PurchaseFacts>,
    /// The hold the request names.
    pub hold: Option<Hold>,
    /// The Stripe subscription the request names, and its user's.
    pub subscription: Option<SubscriptionFacts>,
}

/// The table, through the real DynamoDB client.
#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    table: String,
}

impl Store {
    /// A store on `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Store {
        Store { client, table: table.into() }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// A transaction on this table, opened by recording `record` under `key`.
    pub fn tx(&self, key: &RecordKey, record: &IdemRecord) -> Tx {
        Tx::new(&self.table, key, record)
    }

    /// A transaction on this table with no idempotency record (scheduled
    /// work, made exactly-once by its conditions alone).
    pub fn tx_unkeyed(&self) -> Tx {
        Tx::without_record(&self.table)
    }

    /// Reads one item (strongly consistent).
    async fn get(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let out = self.client.get_item().table_name(&self.table).set_key(Some(key)).consistent_read(true).send().await;
        Ok(out.map_err(classify)?.item)
    }

    /// One item of a `TransactGetItems`.
    fn transact_get(&self, key: Item) -> Result<TransactGetItem, StoreError> {
        Get::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .build()
            .map(|g| TransactGetItem::builder().get(g).build())
            .map_err(|e| StoreError::Internal(e.to_string()))
    }

    /// Reads an account (strongly consistent).
    pub async fn account(&self, user_id: &str) -> Result<Option<Account>, StoreError> {
        self.get(account_key(user_id)).await?.as_ref().map(decode_account).transpose()
    }

    /// Reads what a mutating request needs before it decides, in one
    /// request (see [`RequestRead`]).
    pub async fn request_read(&self, key: &RecordKey, lookups: &Lookups) -> Result<RequestRead, StoreError> {
        let get = |key| self.transact_get(key);
        let mut request = self
            .client
            .transact_get_items()
            .transact_items(get(account_key(&key.user_id))?)
            .transact_items(get(record_key(key))?);
        let mut next = 2;
        let mut position = |wanted: bool| {
            wanted.then(|| {
                next += 1;
                next - 1
            })
        };
        let code_at = position(lookups.code.is_some());
        let purchase_at = position(lookups.purchase.is_some());
        let hold_at = position(lookups.hold.is_some());
        let subscription_at = position(lookups.subscription.is_some());
        let users_subscription_at = position(lookups.subscription.is_some());
        if let Some(code) = &lookups.code {
            request = request.transact_items(get(code_key(code))?);
        }
        if let Some(payment_id) = &lookups.purchase {
            let purchase = RecordKey { route: Route::Purchase, user_id: key.user_id.clone(), key: payment_id.clone() };
            request = request.transact_items(get(record_key(&purchase))?);
        }
        if let Some(hold_id) = &lookups.hold {
            request = request.transact_items(get(hold_key(&key.user_id, hold_id))?);
        }
        if let Some(subscription_id) = &lookups.subscription {
            request = request
                .transact_items(get(subscription_key(subscription_id))?)
                .transact_items(get(stripe_user_key(&key.user_id))?);
        }
        let out = request.send().await.map_err(classify_read)?;
        let responses = out.responses.unwrap_or_default();
        let item = |i: Option<usize>| i.and_then(|i| responses.get(i)).and_then(|r| r.item.as_ref());
        Ok(RequestRead {
            account: item(Some(0)).map(decode_account).transpose()?,
            record: item(Some(1)).map(decode_record).transpose()?,
            code_owner: item(code_at).map(decode_code_claim).transpose()?,
            purchase: item(purchase_at).map(decode_purchase).transpose()?,
            hold: item(hold_at).map(decode_hold).transpose()?,
            subscription: match subscription_at {
                Some(_) => Some(stripe::decode_subscription(item(subscription_at), item(users_subscription_at))?),
                None => None,
            },
        })
    }

    /// Reads an account and one of its holds together (strongly consistent).
    pub async fn account_and_hold(
        &self,
        user_id: &str,
        hold_id: &str,
    ) -> Result<(Option<Account>, Option<Hold>), StoreError> {
        let get = |key| self.transact_get(key);
        let out = self
            .client
            .transact_get_items()
            .transact_items(get(account_key(user_id))?)
            .transact_items(get(hold_key(user_id, hold_id))?)
            .send()
            .await
            .map_err(classify_read)?;
        let responses = out.responses.unwrap_or_default();
        let item = |i: usize| responses.get(i).and_then(|r| r.item.as_ref());
        Ok((item(0).map(decode_account).transpose()?, item(1).map(decode_hold).transpose()?))
    }

    /// Reads a request's idempotency record (strongly consistent).
    pub async fn record(&self, key: &RecordKey) -> Result<Option<IdemRecord>, StoreError> {
        self.get(record_key(key)).await?.as_ref().map(decode_record).transpose()
    }

    /// Ledger entries of an account, newest first: up to `limit` entries
    /// numbered below `before` (all when `None`), and whether more follow.
    /// `None` when the account has no entry numbered `before`: a page ends on
    /// an entry, so that is no cursor a page gave. The entry is read with the
    /// page (one more item), not on its own.
    pub async fn ledger(
        &self,
        user_id: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Option<(Vec<LedgerEntry>, bool)>, StoreError> {
        let (upper, cursor_item) = match before {
            Some(seq) => (keys::ledger_sk(seq), 1),
            None => (format!("{LEDGER_PREFIX}~"), 0),
        };
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(&user_pk(user_id)))
            .expression_attribute_values(":lo", s(LEDGER_PREFIX))
            .expression_attribute_values(":hi", AttributeValue::S(upper))
            .scan_index_forward(false)
            .consistent_read(true)
            .limit(i32::try_from(limit + 1 + cursor_item).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(classify)?;
        let mut entries = out.items.unwrap_or_default().iter().map(decode_entry).collect::<Result<Vec<_>, _>>()?;
        if let Some(seq) = before {
            if entries.first().map(|e| e.seq) != Some(seq) {
                return Ok(None);
            }
            entries.remove(0);
        }
        let more = entries.len() > limit;
        entries.truncate(limit);
        Ok(Some((entries, more)))
    }

    /// A user's open holds, oldest first (by id within a second), given
    /// `held`, the credits the account holds. Each open hold has an entry
    /// naming it under `OPENHOLD#` (written and deleted with it), so this
    /// reads only the entries, and then their holds (only a hold says
    /// whether it is still open: a release before the entries, during a
    /// deploy or after a rollback, closes a hold and leaves its entry).
    /// Where the open ones do not add up to `held` (holds opened by such a
    /// release have no entry), every hold of the partition is read instead
    /// (closed holds stay there, so a repeated capture still answers
    /// `hold_closed`), filtered on `open`.
    pub async fn open_holds(&self, user_id: &str, held: i64) -> Result<Vec<Hold>, StoreError> {
        let entries: Vec<Item> = self.query_prefix(user_id, OPEN_HOLD_PREFIX, false).await?;
        let named = entries.iter().map(decode_open_hold).collect::<Result<Vec<_>, _>>()?;
        let mut holds = Vec::with_capacity(named.len());
        for chunk in named.chunks(100) {
            let keys = chunk.iter().map(|id| hold_key(user_id, id)).collect();
            for item in self.batch_get(keys, |_| true).await? {
                let hold = decode_hold(&item)?;
                if hold.status == HoldStatus::Open {
                    holds.push(hold);
                }
            }
        }
        let open = holds.iter().fold(0_i64, |sum, h| sum.saturating_add(h.credits));
        if open != held {
            let items = self.query_prefix(user_id, HOLD_PREFIX, true).await?;
            holds = items.iter().map(decode_hold).collect::<Result<_, _>>()?;
        }
        // Oldest first; holds opened in the same second by their ids.
        holds.sort_by(|a, b| (a.created_at, &a.hold_id).cmp(&(b.created_at, &b.hold_id)));
        Ok(holds)
    }

    /// The items of `user_id`'s partition whose sort keys start with
    /// `prefix`, every page; `open_only`: filtered on status `open` (after
    /// reading, as DynamoDB filters).
    async fn query_prefix(&self, user_id: &str, prefix: &str, open_only: bool) -> Result<Vec<Item>, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(&user_pk(user_id)))
            .expression_attribute_values(":prefix", s(prefix))
            .consistent_read(true);
        if open_only {
            query = query
                .filter_expression("#status = :open")
                .expression_attribute_names("#status", attr::STATUS)
                .expression_attribute_values(":open", s(HoldStatus::Open.as_str()));
        }
        query.into_paginator().items().send().collect::<Result<_, _>>().await.map_err(classify)
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }
}
