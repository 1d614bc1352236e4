//! One `TransactWriteItems` per mutating request: the idempotency record
//! first, then the account writes under their conditions, the ledger
//! entries and the outbox emails.

use super::attr::*;
use super::items::{
    decode_record, encode_account, encode_code_claim, encode_email, encode_entry, encode_hold, encode_open_hold,
    encode_record, numbers,
};
use super::keys::{account_key, hold_key, n, open_hold_key, record_key, s, stripe_user_key, subscription_key, Item};
use super::{classify, Store, StoreError};
use crate::account::{Account, Change};
use crate::cycle::format_time;
use crate::email::OutboxEmail;
use crate::hold::{Hold, HoldStatus};
use crate::idempotency::{IdemRecord, RecordKey, Route};
use crate::ledger::LedgerEntry;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

/// One write of a transaction, as the rules decide it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// A new account, its referral code claim and its first ledger entries.
    Create {
        /// The account as it is to be stored.
        account: Account,
        /// Its first entries.
        entries: Vec<LedgerEntry>,
    },
    /// A change of an existing account, under its version.
    Change(Change),
    /// One more signup that recorded this user as referrer, without a
    /// reward: only a counter moves, so the version is left alone.
    CountReferralSignup(String),
    /// A new hold (it must not exist yet), and its entry among the user's
    /// open holds.
    OpenHold(Hold),
    /// A hold settled (captured, released, expired), on the condition that
    /// it is still open; its entry among the open holds is deleted.
    CloseHold(Hold),
    /// A Stripe subscription's event applied: recorded as the
    /// subscription's latest (and its end for good, if it is), on the
    /// condition that its record is still as read; and,
    /// where it changes them, the user's active subscriptions as they are
    /// now, on the condition that their record is still at the version read.
    Subscription {
        /// The subscription.
        subscription_id: String,
        /// Its user.
        user_id: String,
        /// The event's `created`.
        created: i64,
        /// The event.
        event_id: String,
        /// The `created` of the subscription's latest event, as read.
        last_created: Option<i64>,
        /// Whether the subscription ended for good.
        done: bool,
        /// The user's active subscriptions and their prices, after the event;
        /// `None` where the event leaves them as they are.
        active: Option<std::collections::BTreeMap<String, String>>,
        /// The version of the user's record, as read (`None`: none yet).
        version: Option<i64>,
    },
    /// Credits of a purchase reversed, counted on its record, on the
    /// condition that the count is still what was read.
    CountReversal {
        /// The buyer.
        user_id: String,
        /// The purchase.
        payment_id: String,
        /// The count as read.
        before: i64,
        /// The count afterwards.
        after: i64,
    },
}

/// What an item of a transaction is for, so a failed condition can be traced
/// to its cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// The request's idempotency record.
    Record,
    /// A new account.
    NewAccount,
    /// A new account's referral code claim.
    CodeClaim,
    /// An update of this user's account under its version.
    Account(String),
    /// A counter on this user's account.
    Counter(String),
    /// A purchase's count of reversed credits.
    Purchase,
    /// A hold.
    Hold,
    /// A Stripe subscription's latest event, or which one a user's plan came from.
    Subscription,
    /// A ledger entry.
    Ledger,
    /// An outbox email.
    Email,
}

impl std::fmt::Display for Role {
    /// The role for a log line: a user id that looks like an email address masked.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Role::Account(user) => write!(f, "Account({})", crate::types::redact(user)),
            Role::Counter(user) => write!(f, "Counter({})", crate::types::redact(user)),
            other => write!(f, "{other:?}"),
        }
    }
}

/// Why a transaction did not commit.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The key was used before; the record it left, when DynamoDB returned it.
    #[error("idempotency key already used")]
    Duplicate(Option<Box<IdemRecord>>),
    /// A condition failed on this item: what it was built on is stale.
    #[error("condition failed on {0}")]
    Stale(Role),
    /// Another transaction touched the same items at the same time.
    #[error("transaction conflict")]
    Conflict,
    /// A store failure.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A transaction being built. Where a request has an idempotency record, it
/// is the first item, so that a replay is told apart from a stale snapshot
/// even when both conditions fail.
#[derive(Debug)]
pub struct Tx {
    table: String,
    items: Vec<TransactWriteItem>,
    roles: Vec<Role>,
    /// An item that could not be built; the commit refuses to go ahead.
    broken: Option<String>,
}

impl Tx {
    pub(super) fn new(table: &str, key: &RecordKey, record: &IdemRecord) -> Tx {
        let mut tx = Tx::without_record(table);
        tx.put(encode_record(key, record), Role::Record, true);
        tx
    }

    pub(super) fn without_record(table: &str) -> Tx {
        Tx { table: table.to_owned(), items: Vec::new(), roles: Vec::new(), broken: None }
    }

    /// A put of an item that must not exist yet.
    fn put(&mut self, item: Item, role: Role, return_old: bool) {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(format!("attribute_not_exists({PK})"))
            .set_return_values_on_condition_check_failure(
                return_old.then_some(ReturnValuesOnConditionCheckFailure::AllOld),
            )
            .build();
        self.push(put.map(|p| TransactWriteItem::builder().put(p).build()), role);
    }

    fn update(&mut self, update: Result<Update, aws_sdk_dynamodb::error::BuildError>, role: Role) {
        self.push(update.map(|u| TransactWriteItem::builder().update(u).build()), role);
    }

    fn push(&mut self, item: Result<TransactWriteItem, aws_sdk_dynamodb::error::BuildError>, role: Role) {
        // Every builder here sets its required fields, so this cannot fail;
        // should it ever, commit() refuses the incomplete transaction.
        match item {
            Ok(item) => {
                self.items.push(item);
                self.roles.push(role);
            }
            Err(e) => self.broken = Some(format!("{role}: {e}")),
        }
    }

    /// Number of items so far (at most 100 per transaction).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing but the idempotency record (if any) is in it.
    pub fn is_empty(&self) -> bool {
        self.roles.iter().all(|r| *r == Role::Record)
    }

    /// Adds a write.
    pub fn write(&mut self, write: &Write) {
        match write {
            Write::Create { account, entries } => self.create_account(account, entries),
            Write::Change(change) => self.change_account(change),
            Write::CountReferralSignup(referrer) => self.count_referral_signup(referrer),
            Write::OpenHold(hold) => {
                self.put(encode_hold(hold), Role::Hold, false);
                self.put(encode_open_hold(hold), Role::Hold, false);
            }
            Write::CloseHold(hold) => self.close_hold(hold),
            Write::CountReversal { user_id, payment_id, before, after } => {
                self.count_reversal(user_id, payment_id, *before, *after)
            }
            Write::Subscription {
                subscription_id,
                user_id,
                created,
                event_id,
                last_created,
                done,
                active,
                version,
            } => {
                self.subscription(subscription_id, *created, event_id, *last_created, *done);
                if let Some(active) = active {
                    self.users_subscriptions(user_id, active, *version);
                }
            }
        }
    }

    fn create_account(&mut self, account: &Account, entries: &[LedgerEntry]) {
        self.put(encode_account(account), Role::NewAccount, false);
        self.put(encode_code_claim(&account.referral_code, &account.user_id), Role::CodeClaim, false);
        for entry in entries {
            self.put(encode_entry(&account.user_id, entry), Role::Ledger, false);
        }
    }

    /// Applies a change: bucket deltas as additions in DynamoDB, under the
    /// condition that the account is still at the version it was read at,
    /// with the change's ledger entries.
    pub fn change_account(&mut self, change: &Change) {
        let delta = change.delta();
        // held and debt may be missing on accounts written before they existed.
        let mut sets = vec![
            format!("{BAL_PLAN} = {BAL_PLAN} + :dp"),
            format!("{BAL_BONUS} = {BAL_BONUS} + :db"),
            format!("{BAL_FLEXIBLE} = {BAL_FLEXIBLE} + :df"),
            format!("{BAL_HELD} = if_not_exists({BAL_HELD}, :zero) + :dh"),
            format!("{BAL_DEBT} = if_not_exists({BAL_DEBT}, :zero) + :dd"),
            format!("{VERSION} = {VERSION} + :one"),
            format!("{LEDGER_SEQ} = {LEDGER_SEQ} + :entries"),
        ];
        let mut conditions = vec![format!("{VERSION} = :version")];
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(account_key(&change.user_id)))
            .expression_attribute_values(":dp", n(delta.plan))
            .expression_attribute_values(":db", n(delta.bonus))
            .expression_attribute_values(":df", n(delta.flexible))
            .expression_attribute_values(":dh", n(delta.held))
            .expression_attribute_values(":dd", n(delta.debt))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":entries", n(change.entries.len()))
            .expression_attribute_values(":version", n(change.version));
        // Decrements also carry their own floor, so no bucket can go negative
        // even if the version condition were ever dropped.
        for (bucket, d, floor) in [
            (BAL_PLAN, delta.plan, ":need_plan"),
            (BAL_BONUS, delta.bonus, ":need_bonus"),
            (BAL_FLEXIBLE, delta.flexible, ":need_flexible"),
            (BAL_HELD, delta.held, ":need_held"),
            (BAL_DEBT, delta.debt, ":need_debt"),
        ] {
            if d < 0 {
                conditions.push(format!("{bucket} >= {floor}"));
                update = update.expression_attribute_values(floor, n(d.unsigned_abs()));
            }
        }
        if let Some(plan) = &change.plan {
            sets.push("#plan = :plan".to_owned());
            update = update.expression_attribute_names("#plan", PLAN).expression_attribute_values(":plan", s(plan));
        }
        if let Some(allowance) = change.cycle_max_allowance {
            sets.push(format!("{CYCLE_MAX_ALLOWANCE} = :cma"));
            update = update.expression_attribute_values(":cma", n(allowance));
        }
        if let Some(rank) = change.max_rank {
            sets.push(format!("{MAX_RANK} = :max_rank"));
            update = update.expression_attribute_values(":max_rank", n(rank));
        }
        if change.reset_cycle_referrals {
            sets.push(format!("{CYCLE_REFERRALS} = :zero"));
        } else if change.cycle_referrals != 0 {
            sets.push(format!("{CYCLE_REFERRALS} = {CYCLE_REFERRALS} + :cr"));
            update = update.expression_attribute_values(":cr", n(change.cycle_referrals));
        }
        for (counter, by, name) in [
            (REWARDED_CREDITS, change.rewarded_credits, ":rc"),
            (REFERRAL_SIGNUPS, change.referral_signups, ":rs"),
            (REFERRAL_PAID, change.referral_paid, ":rp"),
        ] {
            if by != 0 {
                sets.push(format!("{counter} = if_not_exists({counter}, :zero) + {name}"));
                update = update.expression_attribute_values(name, n(by));
            }
        }
        if let Some(alerted) = &change.low_balance_alerted {
            sets.push(format!("{LOW_ALERTS} = :alerted"));
            update = update.expression_attribute_values(":alerted", numbers(alerted));
        }
        if change.revoke_referral {
            sets.push(format!("{REFERRAL_REVOKED} = :revoked"));
            update = update.expression_attribute_values(":revoked", AttributeValue::Bool(true));
        }
        if let Some(advance) = &change.cycle {
            sets.push(format!("{CYCLE_START} = :cycle_start"));
            sets.push(format!("{CYCLE_END} = :cycle_end"));
            sets.push(format!("{SCHED_SK} = :cycle_end"));
            conditions.push(format!("{CYCLE_END} = :old_cycle_end"));
            update = update
                .expression_attribute_values(":cycle_start", s(&format_time(advance.to.start)))
                .expression_attribute_values(":cycle_end", s(&format_time(advance.to.end)))
                .expression_attribute_values(":old_cycle_end", s(&format_time(advance.from_end)));
        }
        if let Some(cap) = change.cycle_referrals_below {
            conditions.push(format!("{CYCLE_REFERRALS} < :cap"));
            update = update.expression_attribute_values(":cap", n(cap));
        }
        let update = update
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression(conditions.join(" AND "))
            .build();
        self.update(update, Role::Account(change.user_id.clone()));
        for entry in &change.entries {
            self.put(encode_entry(&change.user_id, entry), Role::Ledger, false);
        }
    }

    fn count_referral_signup(&mut self, referrer_id: &str) {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(account_key(referrer_id)))
            .update_expression(format!("ADD {REFERRAL_SIGNUPS} :one"))
            .condition_expression(format!("attribute_exists({PK})"))
            .expression_attribute_values(":one", n(1))
            .build();
        self.update(update, Role::Counter(referrer_id.to_owned()));
    }

    fn close_hold(&mut self, hold: &Hold) {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(hold_key(&hold.user_id, &hold.hold_id)))
            .condition_expression("#status = :open")
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_values(":open", s(HoldStatus::Open.as_str()))
            .expression_attribute_values(":status", s(hold.status.as_str()));
        let mut sets = vec!["#status = :status".to_owned()];
        if let Some(captured) = hold.captured {
            sets.push(format!("{CAPTURED} = :captured"));
            update = update.expression_attribute_values(":captured", n(captured));
        }
        let update = update.update_expression(format!("SET {} REMOVE {SCHED_PK}, {SCHED_SK}", sets.join(", "))).build();
        self.update(update, Role::Hold);
        // (A hold opened by a release before the entries has none.)
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(open_hold_key(&hold.user_id, &hold.hold_id)))
            .build();
        self.push(delete.map(|d| TransactWriteItem::builder().delete(d).build()), Role::Hold);
    }

    fn count_reversal(&mut self, user_id: &str, payment_id: &str, before: i64, after: i64) {
        let key = RecordKey { route: Route::Purchase, user_id: user_id.to_owned(), key: payment_id.to_owned() };
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(record_key(&key)))
            .update_expression(format!("SET {REVERSED} = :after"))
            .condition_expression(format!(
                "attribute_exists({PK}) AND (attribute_not_exists({REVERSED}) OR {REVERSED} = :before)"
            ))
            .expression_attribute_values(":before", n(before))
            .expression_attribute_values(":after", n(after))
            .build();
        self.update(update, Role::Purchase);
    }

    fn subscription(&mut self, subscription_id: &str, created: i64, event_id: &str, read: Option<i64>, done: bool) {
        let mut sets = format!("SET {KIND} = :kind, {LAST_CREATED} = :created, {LAST_EVENT} = :event");
        if done {
            sets.push_str(&format!(", {ENDED_FOR_GOOD} = :done"));
        }
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(subscription_key(subscription_id)))
            .update_expression(sets)
            .expression_attribute_values(":kind", s("stripe_subscription"))
            .expression_attribute_values(":created", n(created))
            .expression_attribute_values(":event", s(event_id));
        let update =
            if done { update.expression_attribute_values(":done", AttributeValue::Bool(true)) } else { update };
        // Exactly what was decided on: an event of the same subscription
        // committed meanwhile sends this one back to be decided again.
        let update = match read {
            Some(last) => update
                .condition_expression(format!("{LAST_CREATED} = :read AND attribute_not_exists({ENDED_FOR_GOOD})"))
                .expression_attribute_values(":read", n(last)),
            None => update.condition_expression(format!("attribute_not_exists({PK})")),
        };
        self.update(update.build(), Role::Subscription);
    }

    fn users_subscriptions(
        &mut self,
        user_id: &str,
        active: &std::collections::BTreeMap<String, String>,
        read: Option<i64>,
    ) {
        let map = active.iter().map(|(subscription, price)| (subscription.clone(), s(price))).collect();
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(stripe_user_key(user_id)))
            .update_expression(format!("SET {KIND} = :kind, {SUBSCRIPTIONS} = :active, {VERSION} = :next"))
            .expression_attribute_values(":kind", s("stripe_user"))
            .expression_attribute_values(":active", AttributeValue::M(map))
            .expression_attribute_values(":next", n(read.unwrap_or(0) + 1));
        let update = match read {
            Some(version) => update
                .condition_expression(format!("{VERSION} = :read"))
                .expression_attribute_values(":read", n(version)),
            None => update.condition_expression(format!("attribute_not_exists({VERSION})")),
        };
        self.update(update.build(), Role::Subscription);
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
        if let Some(i) = (0..reasons.len()).find(|&i| code(i) == "ConditionalCheckFailed") {
            let role = tx.roles.get(i).cloned().unwrap_or(Role::Ledger);
            if role == Role::Record {
                let old = reasons[i].item().map(decode_record).transpose()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_names_its_user_masked() {
        assert_eq!(Role::Account("jane@example.com".into()).to_string(), "Account(j***@example.com)");
        assert_eq!(Role::Counter("user-7".into()).to_string(), "Counter(user-7)");
        assert_eq!(CommitError::Stale(Role::Record).to_string(), "condition failed on Record");
    }
}
