//! Items: how accounts, ledger entries, idempotency records and emails are
//! written to and read from the table. Nothing read is trusted: a missing or
//! mistyped attribute is a [`StoreError::Corrupt`], never a panic.

use super::{ReceiptKey, StoreError, SCHEDULE_SHARDS};
use crate::account::Account;
use crate::balance::{Balance, Delta};
use crate::cycle::{format_time, parse_time, Cycle};
use crate::email::OutboxEmail;
use crate::ledger::{EntryKind, LedgerEntry};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) const ACCOUNT_SK: &str = "ACCOUNT";
pub(crate) const LEDGER_PREFIX: &str = "LEDGER#";
pub(crate) const CODE_SK: &str = "CODE";
pub(crate) const EMAIL_SK: &str = "EMAIL";

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

pub(crate) fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_owned(), AttributeValue::S(pk)), ("sk".to_owned(), s(sk))])
}

pub(crate) fn account_key(user_id: &str) -> Item {
    key(user_pk(user_id), ACCOUNT_SK)
}

pub(crate) fn idem_key(k: &ReceiptKey) -> Item {
    key(user_pk(&k.user_id), &format!("IDEM#{}#{}", k.route.as_str(), k.key))
}

pub(crate) fn code_key(code: &str) -> Item {
    key(format!("CODE#{code}"), CODE_SK)
}

pub(crate) fn email_key(id: &str) -> Item {
    key(format!("EMAIL#{id}"), EMAIL_SK)
}

/// FNV-1a: a stable hash (unlike std's) for picking a schedule shard.
fn shard(id: &str, prefix: &str) -> String {
    let hash =
        id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3));
    format!("{prefix}#{:02}", hash % u64::from(SCHEDULE_SHARDS))
}

/// The schedule-index partition of an account's rollover.
pub(crate) fn due_shard(user_id: &str) -> String {
    shard(user_id, "DUE")
}

/// The schedule-index partition of a pending email.
pub(crate) fn outbox_shard(email_id: &str) -> String {
    shard(email_id, "OUTBOX")
}

/// What a request answered, kept forever under its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdemRecord {
    /// SHA-256 (hex) of the route and the request as parsed.
    pub request_hash: String,
    /// The status of the original answer.
    pub status: u16,
    /// The original answer's body.
    pub body: String,
    /// When it was recorded.
    pub at: String,
}

fn corrupt(item: &Item, what: &str) -> StoreError {
    let pk = item.get("pk").and_then(|v| v.as_s().ok()).map_or("?", String::as_str);
    StoreError::Corrupt(format!("{pk}: {what}"))
}

pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str).ok_or_else(|| corrupt(item, name))
}

pub(crate) fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).ok_or_else(|| corrupt(item, name))
}

fn get_time(item: &Item, name: &str) -> Result<crate::cycle::Time, StoreError> {
    parse_time(get_s(item, name)?).ok_or_else(|| corrupt(item, name))
}

pub(crate) fn encode_account(a: &Account) -> Item {
    let mut item = account_key(&a.user_id);
    let mut put = |k: &str, v| {
        item.insert(k.to_owned(), v);
    };
    put("kind", s("account"));
    put("user_id", s(&a.user_id));
    put("email", s(&a.email));
    put("email_norm", s(&a.email_norm));
    put("plan", s(&a.plan));
    put("referral_code", s(&a.referral_code));
    if let Some(referrer) = &a.referrer_id {
        put("referrer_id", s(referrer));
    }
    put("cycle_start", s(&format_time(a.cycle.start)));
    put("cycle_end", s(&format_time(a.cycle.end)));
    put("anchor_day", n(a.cycle.anchor_day));
    put("bal_plan", n(a.balance.plan));
    put("bal_bonus", n(a.balance.bonus));
    put("bal_flexible", n(a.balance.flexible));
    put("version", n(a.version));
    put("ledger_seq", n(a.ledger_seq));
    put("cycle_max_allowance", n(a.cycle_max_allowance));
    put("max_rank", n(a.max_rank));
    put("cycle_referrals", n(a.cycle_referrals));
    put("referral_signups", n(a.referral_signups));
    put("rewarded_credits", n(a.rewarded_credits));
    put("sched_pk", s(&due_shard(&a.user_id)));
    put("sched_sk", s(&format_time(a.cycle.end)));
    item
}

pub(crate) fn decode_account(item: &Item) -> Result<Account, StoreError> {
    let cycle = Cycle {
        start: get_time(item, "cycle_start")?,
        end: get_time(item, "cycle_end")?,
        anchor_day: get_n(item, "anchor_day")?,
    };
    Ok(Account {
        user_id: get_s(item, "user_id")?.to_owned(),
        email: get_s(item, "email")?.to_owned(),
        email_norm: get_s(item, "email_norm")?.to_owned(),
        plan: get_s(item, "plan")?.to_owned(),
        referral_code: get_s(item, "referral_code")?.to_owned(),
        referrer_id: item.get("referrer_id").map(|_| get_s(item, "referrer_id").map(str::to_owned)).transpose()?,
        cycle,
        balance: Balance {
            plan: get_n(item, "bal_plan")?,
            bonus: get_n(item, "bal_bonus")?,
            flexible: get_n(item, "bal_flexible")?,
        },
        version: get_n(item, "version")?,
        ledger_seq: get_n(item, "ledger_seq")?,
        cycle_max_allowance: get_n(item, "cycle_max_allowance")?,
        max_rank: get_n(item, "max_rank")?,
        cycle_referrals: get_n(item, "cycle_referrals")?,
        referral_signups: get_n(item, "referral_signups")?,
        rewarded_credits: get_n(item, "rewarded_credits")?,
    })
}

pub(crate) fn encode_entry(user_id: &str, e: &LedgerEntry) -> Item {
    let mut item = key(user_pk(user_id), &ledger_sk(e.seq));
    for (k, v) in [
        ("kind", s("ledger")),
        ("seq", n(e.seq)),
        ("at", s(&e.at)),
        ("entry_kind", s(e.kind.as_str())),
        ("d_plan", n(e.delta.plan)),
        ("d_bonus", n(e.delta.bonus)),
        ("d_flexible", n(e.delta.flexible)),
        ("after_plan", n(e.balance_after.plan)),
        ("after_bonus", n(e.balance_after.bonus)),
        ("after_flexible", n(e.balance_after.flexible)),
        ("ref", s(&e.reference)),
    ] {
        item.insert(k.to_owned(), v);
    }
    item
}

pub(crate) fn decode_entry(item: &Item) -> Result<LedgerEntry, StoreError> {
    Ok(LedgerEntry {
        seq: get_n(item, "seq")?,
        at: get_s(item, "at")?.to_owned(),
        kind: EntryKind::from_name(get_s(item, "entry_kind")?).ok_or_else(|| corrupt(item, "entry_kind"))?,
        delta: Delta {
            plan: get_n(item, "d_plan")?,
            bonus: get_n(item, "d_bonus")?,
            flexible: get_n(item, "d_flexible")?,
        },
        balance_after: Balance {
            plan: get_n(item, "after_plan")?,
            bonus: get_n(item, "after_bonus")?,
            flexible: get_n(item, "after_flexible")?,
        },
        reference: get_s(item, "ref")?.to_owned(),
    })
}

pub(crate) fn encode_idem(k: &ReceiptKey, r: &IdemRecord) -> Item {
    let mut item = idem_key(k);
    item.insert("kind".into(), s("receipt"));
    item.insert("request_hash".into(), s(&r.request_hash));
    item.insert("status".into(), n(r.status));
    item.insert("body".into(), s(&r.body));
    item.insert("at".into(), s(&r.at));
    item
}

pub(crate) fn decode_idem(item: &Item) -> Result<IdemRecord, StoreError> {
    Ok(IdemRecord {
        request_hash: get_s(item, "request_hash")?.to_owned(),
        status: get_n(item, "status")?,
        body: get_s(item, "body")?.to_owned(),
        at: get_s(item, "at")?.to_owned(),
    })
}

pub(crate) fn encode_code_claim(code: &str, user_id: &str) -> Item {
    let mut item = code_key(code);
    item.insert("kind".into(), s("code"));
    item.insert("user_id".into(), s(user_id));
    item
}

pub(crate) fn encode_email(e: &OutboxEmail) -> Item {
    let mut item = email_key(&e.id);
    for (k, v) in [
        ("kind", s("email")),
        ("email_id", s(&e.id)),
        ("email_kind", s(e.kind.as_str())),
        ("to", s(&e.to)),
        ("subject", s(&e.subject)),
        ("text", s(&e.text)),
        ("html", s(&e.html)),
        ("status", s("pending")),
        ("attempts", n(0)),
        ("created_at", s(&format_time(e.created_at))),
        ("next_attempt_at", s(&format_time(e.next_attempt_at))),
        ("sched_pk", s(&outbox_shard(&e.id))),
        ("sched_sk", s(&format_time(e.next_attempt_at))),
    ] {
        item.insert(k.to_owned(), v);
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cycle::parse_time;

    fn account() -> Account {
        let at = parse_time("2026-01-31T10:00:00Z").expect("time");
        Account {
            user_id: "u-1".into(),
            email: "a@b.c".into(),
            email_norm: "a@b.c".into(),
            plan: "pro".into(),
            referral_code: "ABCD2345".into(),
            referrer_id: Some("u-0".into()),
            cycle: Cycle::first(at).expect("cycle"),
            balance: Balance { plan: 1, bonus: 2, flexible: 3 },
            version: 4,
            ledger_seq: 5,
            cycle_max_allowance: 6,
            max_rank: 2,
            cycle_referrals: 7,
            referral_signups: 8,
            rewarded_credits: 9,
        }
    }

    #[test]
    fn accounts_round_trip() {
        let a = account();
        assert_eq!(decode_account(&encode_account(&a)).expect("decodes"), a);
        let no_referrer = Account { referrer_id: None, ..a };
        assert_eq!(decode_account(&encode_account(&no_referrer)).expect("decodes"), no_referrer);
    }

    #[test]
    fn damaged_items_are_errors_not_panics() {
        let mut item = encode_account(&account());
        item.insert("bal_plan".into(), s("lots"));
        assert!(matches!(decode_account(&item), Err(StoreError::Corrupt(m)) if m.contains("bal_plan")));
        item.remove("email");
        assert!(decode_account(&item).is_err());
    }

    #[test]
    fn ledger_keys_sort_in_entry_order() {
        assert!(ledger_sk(9) < ledger_sk(10));
        assert!(ledger_sk(u64::MAX) < format!("{LEDGER_PREFIX}~"));
    }

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(due_shard("u-1"), due_shard("u-1"));
        let shards: std::collections::HashSet<String> = (0..1000).map(|i| due_shard(&format!("u-{i}"))).collect();
        assert_eq!(shards.len(), SCHEDULE_SHARDS as usize);
    }
}
