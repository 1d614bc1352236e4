//! How accounts, ledger entries, idempotency records and emails are written
//! to and read from the table. Nothing read is trusted: a missing or
//! mistyped attribute is a [`StoreError::Corrupt`], never a panic.

use super::attr::*;
use super::keys::{
    account_key, code_key, email_key, entry_key, hold_key, n, open_hold_key, partition_of, record_key, s, Item, Queue,
};
use super::StoreError;
use crate::account::Account;
use crate::balance::{Balance, Delta, Parts};
use crate::cycle::{format_time, parse_time, Cycle, Time};
use crate::email::{EmailKind, EmailStatus, OutboxEmail};
use crate::hold::{Hold, HoldStatus};
use crate::idempotency::{IdemRecord, RecordKey};
use crate::ledger::{EntryContext, EntryKind, LedgerEntry};
use aws_sdk_dynamodb::types::AttributeValue;

fn corrupt(item: &Item, what: &str) -> StoreError {
    let pk = item.get(PK).and_then(|v| v.as_s().ok()).map_or("?", String::as_str);
    // The key names the user (`USER#<user_id>`): masked, as in every log line.
    let pk = match pk.split_once('#') {
        Some((kind, id)) => format!("{kind}#{}", crate::types::redact(id)),
        None => crate::types::redact(pk),
    };
    StoreError::Corrupt(format!("{pk}: {what}"))
}

pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str).ok_or_else(|| corrupt(item, name))
}

pub(crate) fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).ok_or_else(|| corrupt(item, name))
}

/// A number that items written before it existed lack: `default` then.
pub(crate) fn get_n_or<T: std::str::FromStr>(item: &Item, name: &str, default: T) -> Result<T, StoreError> {
    if item.contains_key(name) {
        get_n(item, name)
    } else {
        Ok(default)
    }
}

fn get_s_opt(item: &Item, name: &str) -> Result<Option<String>, StoreError> {
    item.get(name).map(|_| get_s(item, name).map(str::to_owned)).transpose()
}

pub(crate) fn get_time(item: &Item, name: &str) -> Result<Time, StoreError> {
    parse_time(get_s(item, name)?).ok_or_else(|| corrupt(item, name))
}

fn with(mut item: Item, attributes: Vec<(&str, AttributeValue)>) -> Item {
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
        (BAL_HELD, n(a.balance.held)),
        (BAL_DEBT, n(a.balance.debt)),
        (VERSION, n(a.version)),
        (LEDGER_SEQ, n(a.ledger_seq)),
        (CYCLE_MAX_ALLOWANCE, n(a.cycle_max_allowance)),
        (MAX_RANK, n(a.max_rank)),
        (CYCLE_REFERRALS, n(a.cycle_referrals)),
        (REFERRAL_SIGNUPS, n(a.referral_signups)),
        (REWARDED_CREDITS, n(a.rewarded_credits)),
        (REFERRAL_PAID, n(a.referral_paid)),
        (SCHED_PK, s(&partition_of(Queue::Due, &a.user_id))),
        (SCHED_SK, s(&format_time(a.cycle.end))),
    ];
    if let Some(referrer) = &a.referrer_id {
        attributes.push((REFERRER_ID, s(referrer)));
    }
    if a.referral_revoked {
        attributes.push((REFERRAL_REVOKED, AttributeValue::Bool(true)));
    }
    attributes.push((LOW_ALERTS, numbers(&a.low_balance_alerted)));
    with(account_key(&a.user_id), attributes)
}

/// A list of numbers (a DynamoDB `L` of `N`s).
pub(crate) fn numbers(values: &[i64]) -> AttributeValue {
    AttributeValue::L(values.iter().map(n).collect())
}

pub(crate) fn decode_account(item: &Item) -> Result<Account, StoreError> {
    Ok(Account {
        user_id: get_s(item, USER_ID)?.to_owned(),
        email: get_s(item, EMAIL)?.to_owned(),
        email_norm: get_s(item, EMAIL_NORM)?.to_owned(),
        plan: get_s(item, PLAN)?.to_owned(),
        referral_code: get_s(item, REFERRAL_CODE)?.to_owned(),
        referrer_id: get_s_opt(item, REFERRER_ID)?,
        cycle: Cycle {
            start: get_time(item, CYCLE_START)?,
            end: get_time(item, CYCLE_END)?,
            anchor_day: get_n(item, ANCHOR_DAY)?,
        },
        balance: Balance {
            plan: get_n(item, BAL_PLAN)?,
            bonus: get_n(item, BAL_BONUS)?,
            flexible: get_n(item, BAL_FLEXIBLE)?,
            held: get_n_or(item, BAL_HELD, 0)?,
            debt: get_n_or(item, BAL_DEBT, 0)?,
        },
        version: get_n(item, VERSION)?,
        ledger_seq: get_n(item, LEDGER_SEQ)?,
        cycle_max_allowance: get_n(item, CYCLE_MAX_ALLOWANCE)?,
        max_rank: get_n(item, MAX_RANK)?,
        cycle_referrals: get_n(item, CYCLE_REFERRALS)?,
        referral_signups: get_n(item, REFERRAL_SIGNUPS)?,
        rewarded_credits: get_n(item, REWARDED_CREDITS)?,
        referral_paid: get_n_or(item, REFERRAL_PAID, 0)?,
        referral_revoked: match item.get(REFERRAL_REVOKED) {
            None => false,
            Some(v) => *v.as_bool().map_err(|_| corrupt(item, REFERRAL_REVOKED))?,
        },
        low_balance_alerted: match item.get(LOW_ALERTS) {
            None => Vec::new(),
            Some(v) => v
                .as_l()
                .map_err(|_| corrupt(item, LOW_ALERTS))?
                .iter()
                .map(|n| n.as_n().ok().and_then(|n| n.parse().ok()).ok_or_else(|| corrupt(item, LOW_ALERTS)))
                .collect::<Result<_, _>>()?,
        },
    })
}

pub(crate) fn encode_entry(user_id: &str, e: &LedgerEntry) -> Item {
    let mut attributes = vec![
        (KIND, s("ledger")),
        (SEQ, n(e.seq)),
        (AT, s(&format_time(e.at))),
        (ENTRY_KIND, s(e.kind.as_str())),
        (D_PLAN, n(e.delta.plan)),
        (D_BONUS, n(e.delta.bonus)),
        (D_FLEXIBLE, n(e.delta.flexible)),
        (D_HELD, n(e.delta.held)),
        (D_DEBT, n(e.delta.debt)),
        (AFTER_PLAN, n(e.balance_after.plan)),
        (AFTER_BONUS, n(e.balance_after.bonus)),
        (AFTER_FLEXIBLE, n(e.balance_after.flexible)),
        (AFTER_HELD, n(e.balance_after.held)),
        (AFTER_DEBT, n(e.balance_after.debt)),
        (REF, s(&e.reference)),
    ];
    let context = [
        (PAYMENT_ID, &e.context.payment_id),
        (REFERRED_USER_ID, &e.context.referred_user_id),
        (REASON, &e.context.reason),
        (NOTE, &e.context.note),
    ];
    attributes.extend(context.into_iter().filter_map(|(name, value)| value.as_deref().map(|v| (name, s(v)))));
    with(entry_key(user_id, e.seq), attributes)
}

pub(crate) fn decode_entry(item: &Item) -> Result<LedgerEntry, StoreError> {
    Ok(LedgerEntry {
        seq: get_n(item, SEQ)?,
        at: get_time(item, AT)?,
        kind: EntryKind::from_name(get_s(item, ENTRY_KIND)?).ok_or_else(|| corrupt(item, ENTRY_KIND))?,
        delta: Delta {
            plan: get_n(item, D_PLAN)?,
            bonus: get_n(item, D_BONUS)?,
            flexible: get_n(item, D_FLEXIBLE)?,
            held: get_n_or(item, D_HELD, 0)?,
            debt: get_n_or(item, D_DEBT, 0)?,
        },
        balance_after: Balance {
            plan: get_n(item, AFTER_PLAN)?,
            bonus: get_n(item, AFTER_BONUS)?,
            flexible: get_n(item, AFTER_FLEXIBLE)?,
            held: get_n_or(item, AFTER_HELD, 0)?,
            debt: get_n_or(item, AFTER_DEBT, 0)?,
        },
        reference: get_s(item, REF)?.to_owned(),
        context: EntryContext {
            payment_id: get_s_opt(item, PAYMENT_ID)?,
            referred_user_id: get_s_opt(item, REFERRED_USER_ID)?,
            reason: get_s_opt(item, REASON)?,
            note: get_s_opt(item, NOTE)?,
        },
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
            (WRITER, s(&r.writer)),
        ],
    )
}

pub(crate) fn decode_record(item: &Item) -> Result<IdemRecord, StoreError> {
    Ok(IdemRecord {
        request_hash: get_s(item, REQUEST_HASH)?.to_owned(),
        status: get_n(item, STATUS)?,
        body: get_s(item, BODY)?.to_owned(),
        at: get_time(item, AT)?,
        writer: get_s_opt(item, WRITER)?.unwrap_or_default(),
    })
}

/// A purchase from its idempotency record: the credits its answer reported,
/// and those reversed since.
pub(crate) fn decode_purchase(item: &Item) -> Result<crate::store::PurchaseFacts, StoreError> {
    let record = decode_record(item)?;
    let body: serde_json::Value = serde_json::from_str(&record.body).map_err(|_| corrupt(item, BODY))?;
    let credits = body["purchase"]["credits"].as_i64().ok_or_else(|| corrupt(item, "body.purchase.credits"))?;
    let payment_id =
        body["purchase"]["payment_id"].as_str().ok_or_else(|| corrupt(item, "body.purchase.payment_id"))?;
    Ok(crate::store::PurchaseFacts {
        payment_id: payment_id.to_owned(),
        credits,
        reversed: get_n_or(item, REVERSED, 0)?,
    })
}

pub(crate) fn encode_hold(h: &Hold) -> Item {
    let mut attributes = vec![
        (KIND, s("hold")),
        (USER_ID, s(&h.user_id)),
        (HOLD_ID, s(&h.hold_id)),
        (CREDITS, n(h.credits)),
        (FROM_PLAN, n(h.from.plan)),
        (FROM_BONUS, n(h.from.bonus)),
        (FROM_FLEXIBLE, n(h.from.flexible)),
        (STATUS, s(h.status.as_str())),
        (HOLD_EXPIRES_AT, s(&format_time(h.expires_at))),
        (HOLD_CYCLE_END, s(&format_time(h.cycle_end))),
        (CREATED_AT, s(&format_time(h.created_at))),
    ];
    if let Some(feature) = &h.feature {
        attributes.push((FEATURE, s(feature)));
    }
    if let Some(captured) = h.captured {
        attributes.push((CAPTURED, n(captured)));
    }
    if h.status == HoldStatus::Open {
        attributes.push((SCHED_PK, s(&partition_of(Queue::Holds, &format!("{}/{}", h.user_id, h.hold_id)))));
        attributes.push((SCHED_SK, s(&format_time(h.expires_at))));
    }
    with(hold_key(&h.user_id, &h.hold_id), attributes)
}

/// An open hold's entry in the user's list of open holds, which only names
/// it: written with the hold, and deleted as it closes.
pub(crate) fn encode_open_hold(h: &Hold) -> Item {
    with(open_hold_key(&h.user_id, &h.hold_id), vec![(KIND, s("open_hold")), (HOLD_ID, s(&h.hold_id))])
}

/// The hold an open hold's entry names.
pub(crate) fn decode_open_hold(item: &Item) -> Result<String, StoreError> {
    Ok(get_s(item, HOLD_ID)?.to_owned())
}

pub(crate) fn decode_hold(item: &Item) -> Result<Hold, StoreError> {
    Ok(Hold {
        user_id: get_s(item, USER_ID)?.to_owned(),
        hold_id: get_s(item, HOLD_ID)?.to_owned(),
        credits: get_n(item, CREDITS)?,
        from: Parts {
            plan: get_n(item, FROM_PLAN)?,
            bonus: get_n(item, FROM_BONUS)?,
            flexible: get_n(item, FROM_FLEXIBLE)?,
        },
        status: HoldStatus::from_name(get_s(item, STATUS)?).ok_or_else(|| corrupt(item, STATUS))?,
        expires_at: get_time(item, HOLD_EXPIRES_AT)?,
        captured: item.get(CAPTURED).map(|_| get_n(item, CAPTURED)).transpose()?,
        cycle_end: get_time(item, HOLD_CYCLE_END)?,
        feature: get_s_opt(item, FEATURE)?,
        created_at: get_time(item, CREATED_AT)?,
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

    #[test]
    fn an_item_that_does_not_decode_is_named_with_its_user_masked() {
        let item = Item::from([(PK.to_owned(), s("USER#jane@example.com"))]);
        let err = get_s(&item, "email").expect_err("missing");
        assert_eq!(err.to_string(), "stored item is malformed: USER#j***@example.com: email");
    }

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
            balance: Balance { plan: 1, bonus: 2, flexible: 3, ..Balance::default() },
            version: 4,
            ledger_seq: 5,
            cycle_max_allowance: 6,
            max_rank: 2,
            cycle_referrals: 7,
            referral_signups: 8,
            rewarded_credits: 9,
            referral_paid: 10,
            referral_revoked: true,
            low_balance_alerted: vec![500, 0],
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
            delta: Delta { plan: -1, bonus: -2, flexible: 0, held: 3, debt: -4 },
            balance_after: Balance { plan: 3, bonus: 4, flexible: 5, held: 6, debt: 7 },
            reference: "s-1".into(),
            context: EntryContext {
                payment_id: Some("p-1".into()),
                reason: Some("refund".into()),
                ..EntryContext::default()
            },
        };
        assert_eq!(decode_entry(&encode_entry("u", &entry)).expect("decodes"), entry);
        let key = RecordKey { route: crate::idempotency::Route::Spend, user_id: "u".into(), key: "s-1".into() };
        let record =
            IdemRecord { request_hash: "v1:ab".into(), status: 201, body: "{}".into(), at, writer: "w".into() };
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
    fn holds_round_trip_and_only_open_ones_are_scheduled() {
        let at = parse_time("2026-01-31T10:00:00Z").expect("time");
        let mut hold = Hold {
            user_id: "u".into(),
            hold_id: "h-1".into(),
            credits: 60,
            from: Parts { plan: 10, bonus: 20, flexible: 30 },
            status: HoldStatus::Open,
            expires_at: at,
            captured: None,
            cycle_end: at,
            feature: Some("render".into()),
            created_at: at,
        };
        let item = encode_hold(&hold);
        assert_eq!(decode_hold(&item).expect("decodes"), hold);
        assert!(item.contains_key(SCHED_PK));
        hold.status = HoldStatus::Captured;
        hold.captured = Some(40);
        let item = encode_hold(&hold);
        assert_eq!(decode_hold(&item).expect("decodes"), hold);
        assert!(!item.contains_key(SCHED_PK));
    }

    #[test]
    fn items_written_before_version_2_read_with_zeros() {
        let mut item = encode_account(&account());
        for name in [BAL_HELD, BAL_DEBT, REFERRAL_PAID, REFERRAL_REVOKED, LOW_ALERTS] {
            item.remove(name);
        }
        let a = decode_account(&item).expect("decodes");
        assert_eq!((a.balance.held, a.balance.debt, a.referral_paid, a.referral_revoked), (0, 0, 0, false));
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
