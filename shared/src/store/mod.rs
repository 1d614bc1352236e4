//! The DynamoDB encoding of the credit system: one table, keys and items as
//! the README's table design describes, and the classification of SDK errors
//! into the few outcomes the operations care about.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | account | `USER#<user_id>` | `ACCOUNT` |
//! | ledger entry | `USER#<user_id>` | `LEDGER#<seq, 20 digits>` |
//! | idempotency record | `USER#<user_id>` | `IDEM#<route>#<key>` |
//! | referral code claim | `CODE#<code>` | `CODE` |
//! | outbox email | `EMAIL#<email_id>` | `EMAIL` |
//!
//! Indexes: `by-referral-code` (hash `referral_code`, on accounts) and
//! `by-schedule` (hash `sched_pk`, range `sched_sk`, sparse, keys only): due
//! accounts (`DUE#<shard>`, cycle end) and pending emails (`OUTBOX#<shard>`,
//! next attempt), sharded so neither becomes a hot partition.

mod items;
mod outbox;
mod schedule;
mod tx;

pub use items::IdemRecord;
pub use schedule::{ClaimedEmail, Page, Queue};
pub use tx::{CommitError, Role, Tx};

use crate::account::Account;
use crate::ledger::LedgerEntry;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, Get, TransactGetItem};
use aws_sdk_dynamodb::Client;
use items::{account_key, decode_account, decode_entry, decode_idem, idem_key, s, user_pk, LEDGER_PREFIX};

/// Name of the index from referral code to account.
pub const CODE_INDEX: &str = "by-referral-code";
/// Name of the sparse index of scheduled work (due accounts, pending emails).
pub const SCHEDULE_INDEX: &str = "by-schedule";
/// Partitions of the schedule index per kind of work.
pub const SCHEDULE_SHARDS: u32 = 16;

/// The routes whose keys are recorded, each scoping its own keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `POST /v1/signups`, keyed by `user_id`.
    Signup,
    /// `POST /v1/purchases`, keyed by `payment_id`.
    Purchase,
    /// `POST /v1/plan-changes`, keyed by `change_id`.
    PlanChange,
    /// `POST /v1/spends`, keyed by `spend_id`.
    Spend,
}

impl Route {
    fn as_str(self) -> &'static str {
        match self {
            Route::Signup => "signup",
            Route::Purchase => "purchase",
            Route::PlanChange => "plan-change",
            Route::Spend => "spend",
        }
    }
}

/// Where a request's idempotency record lives: route, user and key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptKey {
    /// The route.
    pub route: Route,
    /// The user the request is about.
    pub user_id: String,
    /// The caller's key.
    pub key: String,
}

/// A store failure, classified once here.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Throttled, timed out or unreachable after the SDK's own retries: the
    /// caller may retry with the same key.
    #[error("DynamoDB unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug, a missing table, a permission.
    #[error("DynamoDB error: {0}")]
    Internal(String),
    /// A stored item does not decode: data written by something else.
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
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
    if matches!(err, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_)) {
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

    /// A transaction on this table, opened by recording `receipt`.
    pub fn tx(&self, key: &ReceiptKey, receipt: &IdemRecord) -> Tx {
        Tx::new(&self.table, key, receipt)
    }

    /// A transaction on this table with no idempotency record (scheduled
    /// work, made exactly-once by its conditions alone).
    pub fn tx_unkeyed(&self) -> Tx {
        Tx::without_receipt(&self.table)
    }

    /// Reads one item (strongly consistent).
    async fn get(&self, key: items::Item) -> Result<Option<items::Item>, StoreError> {
        let out = self.client.get_item().table_name(&self.table).set_key(Some(key)).consistent_read(true).send().await;
        Ok(out.map_err(classify)?.item)
    }

    /// Reads an account (strongly consistent).
    pub async fn account(&self, user_id: &str) -> Result<Option<Account>, StoreError> {
        self.get(account_key(user_id)).await?.as_ref().map(decode_account).transpose()
    }

    /// Reads an account and a request's idempotency record in one request.
    pub async fn account_and_receipt(
        &self,
        user_id: &str,
        key: &ReceiptKey,
    ) -> Result<(Option<Account>, Option<IdemRecord>), StoreError> {
        let get = |k| {
            Get::builder()
                .table_name(&self.table)
                .set_key(Some(k))
                .build()
                .map(|g| TransactGetItem::builder().get(g).build())
                .map_err(|e| StoreError::Internal(e.to_string()))
        };
        let out = self
            .client
            .transact_get_items()
            .transact_items(get(account_key(user_id))?)
            .transact_items(get(idem_key(key))?)
            .send()
            .await
            .map_err(classify)?;
        let responses = out.responses.unwrap_or_default();
        let item = |i: usize| responses.get(i).and_then(|r| r.item.as_ref());
        let account = item(0).map(decode_account).transpose()?;
        let receipt = item(1).map(decode_idem).transpose()?;
        Ok((account, receipt))
    }

    /// Reads a request's idempotency record (strongly consistent).
    pub async fn receipt(&self, key: &ReceiptKey) -> Result<Option<IdemRecord>, StoreError> {
        self.get(idem_key(key)).await?.as_ref().map(decode_idem).transpose()
    }

    /// Finds the account that owns a referral code, through the code index.
    ///
    /// The index is eventually consistent: the snapshot may lag by
    /// milliseconds, which the version condition of the write catches.
    pub async fn account_by_code(&self, code: &str) -> Result<Option<Account>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(CODE_INDEX)
            .key_condition_expression("referral_code = :code")
            .expression_attribute_values(":code", s(code))
            .limit(1)
            .send()
            .await
            .map_err(classify)?;
        out.items.unwrap_or_default().first().map(decode_account).transpose()
    }

    /// Ledger entries of an account, newest first: up to `limit` entries
    /// numbered below `before` (all when `None`), and whether more follow.
    pub async fn ledger(
        &self,
        user_id: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<LedgerEntry>, bool), StoreError> {
        let upper = match before {
            Some(seq) => items::ledger_sk(seq.saturating_sub(1)),
            None => format!("{LEDGER_PREFIX}~"),
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
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(classify)?;
        let mut entries = out.items.unwrap_or_default().iter().map(decode_entry).collect::<Result<Vec<_>, _>>()?;
        let more = entries.len() > limit;
        entries.truncate(limit);
        Ok((entries, more))
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }
}
