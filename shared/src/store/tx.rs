//! One `TransactWriteItems` per mutating request: the idempotency record
//! first, then the balance updates under their conditions, the ledger
//! entries and the outbox emails.

use super::items::{
    account_key, encode_account, encode_code_claim, encode_email, encode_entry, encode_idem, n, s, Item,
};
use super::{classify, IdemRecord, ReceiptKey, Store, StoreError};
use crate::account::{Account, Change};
use crate::cycle::format_time;
use crate::email::OutboxEmail;
use crate::ledger::LedgerEntry;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};

/// What an item of a transaction is for, so a failed condition can be traced
/// to its cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// The request's idempotency record.
    Receipt,
    /// A new account.
    NewAccount,
    /// A new account's referral code claim.
    CodeClaim,
    /// An update of this user's account under its version.
    Account(String),
    /// A counter on this user's account.
    Counter(String),
    /// A ledger entry.
    Ledger,
    /// An outbox email.
    Email,
}

/// Why a transaction did not commit.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The key was used before; the record it left, when DynamoDB returned it.
    #[error("idempotency key already used")]
    Duplicate(Option<Box<IdemRecord>>),
    /// A condition failed on this item: the snapshot it was built on is stale.
    #[error("condition failed on {0:?}")]
    Stale(Role),
    /// Another transaction touched the same items at the same time.
    #[error("transaction conflict")]
    Conflict,
    /// A store failure.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A transaction being built. Where a request has an idempotency record, it
/// is the first item.
#[derive(Debug)]
pub struct Tx {
    table: String,
    items: Vec<TransactWriteItem>,
    roles: Vec<Role>,
    /// An item that could not be built; the commit refuses to go ahead.
    broken: Option<String>,
}

const NOT_EXISTS: &str = "attribute_not_exists(pk)";

impl Tx {
    pub(super) fn new(table: &str, key: &ReceiptKey, receipt: &IdemRecord) -> Tx {
        let mut tx = Tx::without_receipt(table);
        tx.put(encode_idem(key, receipt), Role::Receipt, true);
        tx
    }

    pub(super) fn without_receipt(table: &str) -> Tx {
        Tx { table: table.to_owned(), items: Vec::new(), roles: Vec::new(), broken: None }
    }

    fn put(&mut self, item: Item, role: Role, return_old: bool) {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(NOT_EXISTS)
            .set_return_values_on_condition_check_failure(
                return_old.then_some(ReturnValuesOnConditionCheckFailure::AllOld),
            )
            .build();
        self.push(put.map(|p| TransactWriteItem::builder().put(p).build()), role);
    }

    fn push(&mut self, item: Result<TransactWriteItem, aws_sdk_dynamodb::error::BuildError>, role: Role) {
        // Every builder here sets its required fields, so this cannot fail;
        // should it ever, commit() refuses the incomplete transaction.
        match item {
            Ok(item) => {
                self.items.push(item);
                self.roles.push(role);
            }
            Err(e) => self.broken = Some(format!("{role:?}: {e}")),
        }
    }

    /// Number of items so far (at most 100 per transaction).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the transaction holds only its idempotency record.
    pub fn is_empty(&self) -> bool {
        self.items.len() <= 1
    }

    /// Creates an account, claims its referral code and writes its first
    /// ledger entries.
    pub fn create_account(&mut self, account: &Account, entries: &[LedgerEntry]) {
        self.put(encode_account(account), Role::NewAccount, false);
        self.put(encode_code_claim(&account.referral_code, &account.user_id), Role::CodeClaim, false);
        for entry in entries {
            self.put(encode_entry(&account.user_id, entry), Role::Ledger, false);
        }
    }

    /// Applies `change` to the account read as `snapshot`: bucket deltas as
    /// additions in DynamoDB, under the condition that the account is still
    /// at the snapshot's version, with the change's ledger entries.
    pub fn change_account(&mut self, snapshot: &Account, change: &Change) {
        let delta = change.delta();
        let mut sets = vec![
            "bal_plan = bal_plan + :dp",
            "bal_bonus = bal_bonus + :db",
            "bal_flexible = bal_flexible + :df",
            "version = version + :one",
            "ledger_seq = ledger_seq + :entries",
        ];
        let mut conditions = vec!["version = :version"];
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(account_key(&snapshot.user_id)))
            .expression_attribute_values(":dp", n(delta.plan))
            .expression_attribute_values(":db", n(delta.bonus))
            .expression_attribute_values(":df", n(delta.flexible))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":entries", n(change.entries.len()))
            .expression_attribute_values(":version", n(snapshot.version));
        // Decrements also carry their own floor, so no bucket can go negative
        // even if the version condition were ever dropped.
        for (bucket, d, floor) in [
            ("bal_plan >= :need_plan", delta.plan, ":need_plan"),
            ("bal_bonus >= :need_bonus", delta.bonus, ":need_bonus"),
            ("bal_flexible >= :need_flexible", delta.flexible, ":need_flexible"),
        ] {
            if d < 0 {
                conditions.push(bucket);
                update = update.expression_attribute_values(floor, n(d.unsigned_abs()));
            }
        }
        if let Some(plan) = &change.plan {
            sets.push("#plan = :plan");
            update = update.expression_attribute_names("#plan", "plan").expression_attribute_values(":plan", s(plan));
        }
        if let Some(allowance) = change.cycle_max_allowance {
            sets.push("cycle_max_allowance = :cma");
            update = update.expression_attribute_values(":cma", n(allowance));
        }
        if let Some(rank) = change.max_rank {
            sets.push("max_rank = :max_rank");
            update = update.expression_attribute_values(":max_rank", n(rank));
        }
        for (set, by, name) in [
            // (a reset and an increment never come together)
            (
                "cycle_referrals = cycle_referrals + :cr",
                if change.reset_cycle_referrals { 0 } else { change.cycle_referrals },
                ":cr",
            ),
            ("rewarded_credits = rewarded_credits + :rc", change.rewarded_credits, ":rc"),
            ("referral_signups = referral_signups + :rs", change.referral_signups, ":rs"),
        ] {
            if by != 0 {
                sets.push(set);
                update = update.expression_attribute_values(name, n(by));
            }
        }
        if let Some(cycle) = &change.cycle {
            sets.push("cycle_start = :cycle_start");
            sets.push("cycle_end = :cycle_end");
            sets.push("sched_sk = :cycle_end");
            conditions.push("cycle_end = :old_cycle_end");
            update = update
                .expression_attribute_values(":cycle_start", s(&format_time(cycle.start)))
                .expression_attribute_values(":cycle_end", s(&format_time(cycle.end)))
                .expression_attribute_values(":old_cycle_end", s(&format_time(snapshot.cycle.end)));
        }
        if change.reset_cycle_referrals {
            sets.push("cycle_referrals = :zero");
            update = update.expression_attribute_values(":zero", n(0));
        }
        if let Some(cap) = change.cycle_referrals_below {
            conditions.push("cycle_referrals < :cap");
            update = update.expression_attribute_values(":cap", n(cap));
        }
        let update = update
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression(conditions.join(" AND "))
            .build();
        self.push(
            update.map(|u| TransactWriteItem::builder().update(u).build()),
            Role::Account(snapshot.user_id.clone()),
        );
        for entry in &change.entries {
            self.put(encode_entry(&snapshot.user_id, entry), Role::Ledger, false);
        }
    }

    /// Counts a signup that recorded `referrer_id` without rewarding it; no
    /// balance changes, so the account's version is left alone.
    pub fn count_referral_signup(&mut self, referrer_id: &str) {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(account_key(referrer_id)))
            .update_expression("ADD referral_signups :one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":one", n(1))
            .build();
        self.push(
            update.map(|u| TransactWriteItem::builder().update(u).build()),
            Role::Counter(referrer_id.to_owned()),
        );
    }

    /// Queues an email in the outbox, pending.
    pub fn queue_email(&mut self, email: &OutboxEmail) {
        self.put(encode_email(email), Role::Email, false);
    }
}

impl Store {
    /// Commits a transaction, all or nothing.
    pub async fn commit(&self, tx: Tx) -> Result<(), CommitError> {
        if let Some(broken) = tx.broken {
            return Err(StoreError::Internal(format!("transaction item could not be built: {broken}")).into());
        }
        if tx.items.len() > 100 {
            return Err(StoreError::Internal(format!("transaction of {} items exceeds 100", tx.items.len())).into());
        }
        let result = self.client().transact_write_items().set_transact_items(Some(tx.items)).send().await;
        let err = match result {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        let reasons = match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(e)) => e.cancellation_reasons().to_vec(),
            _ => return Err(classify(err).into()),
        };
        let code = |i: usize| reasons.get(i).and_then(|r| r.code()).unwrap_or("None");
        // The record comes first, so a replay is told apart from a stale snapshot
        // even when both conditions fail.
        if let Some(i) = (0..reasons.len()).find(|&i| code(i) == "ConditionalCheckFailed") {
            let role = tx.roles.get(i).cloned().unwrap_or(Role::Ledger);
            if role == Role::Receipt {
                let old = reasons[i].item().map(super::items::decode_idem).transpose()?;
                return Err(CommitError::Duplicate(old.map(Box::new)));
            }
            return Err(CommitError::Stale(role));
        }
        let codes: Vec<&str> = (0..reasons.len()).map(code).collect();
        if codes.contains(&"TransactionConflict") {
            return Err(CommitError::Conflict);
        }
        let text = format!("transaction cancelled: {codes:?}");
        if codes.iter().any(|c| matches!(*c, "ThrottlingError" | "ProvisionedThroughputExceeded")) {
            return Err(StoreError::Unavailable(text).into());
        }
        Err(StoreError::Internal(text).into())
    }
}
