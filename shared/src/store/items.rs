//! How accounts, ledger entries, idempotency records and emails are written
//! to and read from the table. Nothing read is trusted: a missing or
//! mistyped attribute is a [`StoreError::Corrupt`], never a panic.

use super::attr::*;
use super::keys::{account_key, code_key, email_key, entry_key, n, partition_of, record_key, s, Item, Queue};
use super::StoreError;
use crate::account::Account;
use crate::balance::{Balance, Delta};
use crate::cycle::{format_time, parse_time, Cycle, Time};
use crate::email::{EmailKind, EmailStatus, OutboxEmail};
use crate::idempotency::{IdemRecord, RecordKey};
use crate::ledger::{EntryKind, LedgerEntry};

fn corrupt(item: &Item, what: &str) -> StoreError {
    let pk = item.get(PK).and_then(|v| v.as_s().ok()).map_or("?", String::as_str);
    StoreError::Corrupt(format!("{pk}: {what}"))
}

pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str).ok_or_else(|| corrupt(item, name))
}

pub(crate) fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).ok_or_else(|| corrupt(item, name))
}

pub(crate) fn get_time(item: &Item, name: &str) -> Result<Time, StoreError> {
    parse_time(get_s(item, name)?).ok_or_else(|| corrupt(item, name))
}

fn with(mut item: Item, attributes: Vec<(&str, aws_sdk_dynamodb::types::AttributeValue)>) -> Item {
    for (name, value) in attributes {
        item.insert(name.to_owned(), value);
    }
    item
}

pub(crate) fn encode_account(a: &Account) -> Item {
    let mut attributes = vec![
        (KIND, s("account")),
        (USER_ID, s(&a.user_id)),
        (EMAIL, s(&a.email)),
        (EMAIL_NORM, s(&a.email_norm)),
        (PLAN, s(&a.plan)),
        (REFERRAL_CODE, s(&a.referral_code)),
        (CYCLE_START, s(&format_time(a.cycle.start))),
        (CYCLE_END, s(&format_time(a.cycle.end))),
        (ANCHOR_DAY, n(a.cycle.anchor_day)),
        (BAL_PLAN, n(a.balance.plan)),
        (BAL_BONUS, n(a.balance.bonus)),
        (BAL_FLEXIBLE, n(a.balance.flexible)),
        (VERSION, n(a.version)),
        (LEDGER_SEQ, n(a.ledger_seq)),
        (CYCLE_MAX_ALLOWANCE, n(a.cycle_max_allowance)),
        (MAX_RANK, n(a.max_rank)),
        (CYCLE_REFERRALS, n(a.cycle_referrals)),
        (REFERRAL_SIGNUPS, n(a.referral_signups)),
        (REWARDED_CREDITS, n(a.rewarded_credits)),
        (SCHED_PK, s(&partition_of(Queue::Due, &a.user_id))),
        (SCHED_SK, s(&format_time(a.cycle.end))),
    ];
    if let Some(referrer) = &a.referrer_id {
        attributes.push((REFERRER_ID, s(referrer)));
    }
    with(account_key(&a.user_id), attributes)
}

pub(crate) fn decode_account(item: &Item) -> Result<Account, StoreError> {
    Ok(Account {
        user_id: get_s(item, USER_ID)?.to_owned(),
        email: get_s(item, EMAIL)?.to_owned(),
        email_norm: get_s(item, EMAIL_NORM)?.to_owned(),
        plan: get_s(item, PLAN)?.to_owned(),
        referral_code: get_s(item, REFERRAL_CODE)?.to_owned(),
        referrer_id: item.get(REFERRER_ID).map(|_| get_s(item, REFERRER_ID).map(str::to_owned)).transpose()?,
        cycle: Cycle {
            start: get_time(item, CYCLE_START)?,
            end: get_time(item, CYCLE_END)?,
            anchor_day: get_n(item, ANCHOR_DAY)?,
        },
        balance: Balance {
            plan: get_n(item, BAL_PLAN)?,
            bonus: get_n(item, BAL_BONUS)?,
            flexible: get_n(item, BAL_FLEXIBLE)?,
        },
        version: get_n(item, VERSION)?,
        ledger_seq: get_n(item, LEDGER_SEQ)?,
        cycle_max_allowance: get_n(item, CYCLE_MAX_ALLOWANCE)?,
        max_rank: get_n(item, MAX_RANK)?,
        cycle_referrals: get_n(item, CYCLE_REFERRALS)?,
        referral_signups: get_n(item, REFERRAL_SIGNUPS)?,
        rewarded_credits: get_n(item, REWARDED_CREDITS)?,
    })
}

pub(crate) fn encode_entry(user_id: &str, e: &LedgerEntry) -> Item {
    with(
        entry_key(user_id, e.seq),
        vec![
            (KIND, s("ledger")),
            (SEQ, n(e.seq)),
            (AT, s(&format_time(e.at))),
            (ENTRY_KIND, s(e.kind.as_str())),
            (D_PLAN, n(e.delta.plan)),
            (D_BONUS, n(e.delta.bonus)),
            (D_FLEXIBLE, n(e.delta.flexible)),
            (AFTER_PLAN, n(e.balance_after.plan)),
            (AFTER_BONUS, n(e.balance_after.bonus)),
            (AFTER_FLEXIBLE, n(e.balance_after.flexible)),
            (REF, s(&e.reference)),
        ],
    )
}

pub(crate) fn decode_entry(item: &Item) -> Result<LedgerEntry, StoreError> {
    Ok(LedgerEntry {
        seq: get_n(item, SEQ)?,
        at: get_time(item, AT)?,
        kind: EntryKind::from_name(get_s(item, ENTRY_KIND)?).ok_or_else(|| corrupt(item, ENTRY_KIND))?,
        delta: Delta { plan: get_n(item, D_PLAN)?, bonus: get_n(item, D_BONUS)?, flexible: get_n(item, D_FLEXIBLE)? },
        balance_after: Balance {
            plan: get_n(item, AFTER_PLAN)?,
            bonus: get_n(item, AFTER_BONUS)?,
            flexible: get_n(item, AFTER_FLEXIBLE)?,
        },
        reference: get_s(item, REF)?.to_owned(),
    })
}

pub(crate) fn encode_record(k: &RecordKey, r: &IdemRecord) -> Item {
    with(
        record_key(k),
        vec![
            (KIND, s("receipt")),
            (REQUEST_HASH, s(&r.request_hash)),
            (STATUS, n(r.status)),
            (BODY, s(&r.body)),
            (AT, s(&format_time(r.at))),
        ],
    )
}

pub(crate) fn decode_record(item: &Item) -> Result<IdemRecord, StoreError> {
    Ok(IdemRecord {
        request_hash: get_s(item, REQUEST_HASH)?.to_owned(),
        status: get_n(item, STATUS)?,
        body: get_s(item, BODY)?.to_owned(),
        at: get_time(item, AT)?,
    })
}

pub(crate) fn encode_code_claim(code: &str, user_id: &str) -> Item {
    with(code_key(code), vec![(KIND, s("code")), (USER_ID, s(user_id))])
}

/// The owner of a referral code claim.
pub(crate) fn decode_code_claim(item: &Item) -> Result<String, StoreError> {
    Ok(get_s(item, USER_ID)?.to_owned())
}

pub(crate) fn encode_email(e: &OutboxEmail) -> Item {
    with(
        email_key(&e.id),
        vec![
            (KIND, s("email")),
            (EMAIL_ID, s(&e.id)),
            (EMAIL_KIND, s(e.kind.as_str())),
            (TO, s(&e.to)),
            (SUBJECT, s(&e.subject)),
            (TEXT, s(&e.text)),
            (HTML, s(&e.html)),
            (STATUS, s(EmailStatus::Pending.as_str())),
            (ATTEMPTS, n(0)),
            (CREATED_AT, s(&format_time(e.created_at))),
            (NEXT_ATTEMPT_AT, s(&format_time(e.next_attempt_at))),
            (SCHED_PK, s(&partition_of(Queue::Outbox, &e.id))),
            (SCHED_SK, s(&format_time(e.next_attempt_at))),
        ],
    )
}

/// A pending email as claimed for sending, and its failed attempts so far.
pub(crate) fn decode_email(item: &Item) -> Result<(OutboxEmail, u32), StoreError> {
    let email = OutboxEmail {
        id: get_s(item, EMAIL_ID)?.to_owned(),
        kind: EmailKind::from_name(get_s(item, EMAIL_KIND)?).ok_or_else(|| corrupt(item, EMAIL_KIND))?,
        to: get_s(item, TO)?.to_owned(),
        subject: get_s(item, SUBJECT)?.to_owned(),
        text: get_s(item, TEXT)?.to_owned(),
        html: get_s(item, HTML)?.to_owned(),
        created_at: get_time(item, CREATED_AT)?,
        next_attempt_at: get_time(item, NEXT_ATTEMPT_AT)?,
    };
    Ok((email, get_n(item, ATTEMPTS)?))
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
    fn entries_records_and_emails_round_trip() {
        let at = parse_time("2026-01-31T10:00:00Z").expect("time");
        let entry = LedgerEntry {
            seq: 7,
            at,
            kind: EntryKind::Spend,
            delta: Delta { plan: -1, bonus: -2, flexible: 0 },
            balance_after: Balance { plan: 3, bonus: 4, flexible: 5 },
            reference: "s-1".into(),
        };
        assert_eq!(decode_entry(&encode_entry("u", &entry)).expect("decodes"), entry);
        let key = RecordKey { route: crate::idempotency::Route::Spend, user_id: "u".into(), key: "s-1".into() };
        let record = IdemRecord { request_hash: "v1:ab".into(), status: 201, body: "{}".into(), at };
        assert_eq!(decode_record(&encode_record(&key, &record)).expect("decodes"), record);
        let email = OutboxEmail {
            id: "purchase_receipt-0a".into(),
            kind: EmailKind::PurchaseReceipt,
            to: "a@b.c".into(),
            subject: "s".into(),
            text: "t".into(),
            html: "h".into(),
            created_at: at,
            next_attempt_at: at,
        };
        assert_eq!(decode_email(&encode_email(&email)).expect("decodes"), (email, 0));
    }

    #[test]
    fn damaged_items_are_errors_not_panics() {
        let mut item = encode_account(&account());
        item.insert(BAL_PLAN.into(), s("lots"));
        assert!(matches!(decode_account(&item), Err(StoreError::Corrupt(m)) if m.contains(BAL_PLAN)));
        item.remove(EMAIL);
        assert!(decode_account(&item).is_err());
    }
}
