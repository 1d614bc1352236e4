//! Where each item lives: its `pk`/`sk`, and its partition of the sparse
//! schedule index.

use super::attr;
use crate::idempotency::RecordKey;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// An item, or a key, as the SDK carries it.
pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) const ACCOUNT_SK: &str = "ACCOUNT";
pub(crate) const LEDGER_PREFIX: &str = "LEDGER#";
const CODE_SK: &str = "CODE";
const EMAIL_SK: &str = "EMAIL";

/// Partitions of the schedule index per kind of scheduled work.
pub const SCHEDULE_SHARDS: u32 = 16;

/// Which kind of scheduled work a schedule partition holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queue {
    /// Accounts, by cycle end.
    Due,
    /// Pending emails, by next attempt.
    Outbox,
    /// Open holds, by expiry.
    Holds,
}

/// The schedule-index partition `shard` of `queue`: `DUE#07`, `OUTBOX#15`.
/// Every partition name is built here.
pub fn schedule_partition(queue: Queue, shard: u32) -> String {
    let prefix = match queue {
        Queue::Due => "DUE",
        Queue::Outbox => "OUTBOX",
        Queue::Holds => "HOLDS",
    };
    format!("{prefix}#{:02}", shard % SCHEDULE_SHARDS)
}

/// The partition of the account or email `id`: a stable hash (FNV-1a,
/// unlike std's hasher stable across builds) spreads ids over the shards.
pub(crate) fn partition_of(queue: Queue, id: &str) -> String {
    let hash =
        id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3));
    let shard = u32::try_from(hash % u64::from(SCHEDULE_SHARDS)).unwrap_or(0);
    schedule_partition(queue, shard)
}

pub(crate) fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

pub(crate) fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn user_pk(user_id: &str) -> String {
    format!("USER#{user_id}")
}

pub(crate) fn ledger_sk(seq: u64) -> String {
    format!("{LEDGER_PREFIX}{seq:020}")
}

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([(attr::PK.to_owned(), AttributeValue::S(pk)), (attr::SK.to_owned(), s(sk))])
}

pub(crate) fn account_key(user_id: &str) -> Item {
    key(user_pk(user_id), ACCOUNT_SK)
}

pub(crate) fn entry_key(user_id: &str, seq: u64) -> Item {
    key(user_pk(user_id), &ledger_sk(seq))
}

pub(crate) fn record_key(k: &RecordKey) -> Item {
    key(user_pk(&k.user_id), &format!("IDEM#{}#{}", k.route.record_name(), k.key))
}

pub(crate) const HOLD_PREFIX: &str = "HOLD#";

pub(crate) fn hold_key(user_id: &str, hold_id: &str) -> Item {
    key(user_pk(user_id), &format!("{HOLD_PREFIX}{hold_id}"))
}

/// Each open hold has an entry naming it under this prefix too, deleted as
/// it closes, so that listing them reads only them.
pub(crate) const OPEN_HOLD_PREFIX: &str = "OPENHOLD#";

pub(crate) fn open_hold_key(user_id: &str, hold_id: &str) -> Item {
    key(user_pk(user_id), &format!("{OPEN_HOLD_PREFIX}{hold_id}"))
}

pub(crate) fn payment_key(payment_intent: &str) -> Item {
    key(format!("STRIPE#PI#{payment_intent}"), "STRIPE")
}

pub(crate) fn subscription_key(subscription_id: &str) -> Item {
    key(format!("STRIPE#SUB#{subscription_id}"), "STRIPE")
}

/// Which Stripe subscription a user's plan came from.
pub(crate) fn stripe_user_key(user_id: &str) -> Item {
    key(format!("STRIPE#USER#{user_id}"), "STRIPE")
}

pub(crate) fn code_key(code: &str) -> Item {
    key(format!("CODE#{code}"), CODE_SK)
}

pub(crate) fn email_key(id: &str) -> Item {
    key(format!("EMAIL#{id}"), EMAIL_SK)
}

/// The id in an item's partition key: what follows its first `#` (user ids
/// may hold `#`-free text only, email ids are hashes).
pub(crate) fn id_of(item: &Item) -> Option<String> {
    let pk = item.get(attr::PK)?.as_s().ok()?;
    pk.split_once('#').map(|(_, id)| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_keys_sort_in_entry_order() {
        assert!(ledger_sk(9) < ledger_sk(10));
        assert!(ledger_sk(u64::MAX) < format!("{LEDGER_PREFIX}~"));
    }

    #[test]
    fn partitions_are_stable_and_spread() {
        assert_eq!(partition_of(Queue::Due, "u-1"), partition_of(Queue::Due, "u-1"));
        let shards: std::collections::HashSet<String> =
            (0..1000).map(|i| partition_of(Queue::Due, &format!("u-{i}"))).collect();
        assert_eq!(shards.len(), SCHEDULE_SHARDS as usize);
        assert!(shards.contains(&schedule_partition(Queue::Due, 0)));
        assert_eq!(schedule_partition(Queue::Outbox, 15), "OUTBOX#15");
        assert!(partition_of(Queue::Outbox, "e").starts_with("OUTBOX#"));
    }
}
