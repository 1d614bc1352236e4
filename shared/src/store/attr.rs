//! The table's attribute names. Encoders, decoders and every expression
//! name attributes through these, so a name is spelled in one place.

/// Partition key of every item.
pub const PK: &str = "pk";
/// Sort key of every item.
pub const SK: &str = "sk";
/// What an item is (`account`, `ledger`, `receipt`, `code`, `email`), for people reading the table.
pub const KIND: &str = "kind";

// Accounts.
pub const USER_ID: &str = "user_id";
pub const EMAIL: &str = "email";
pub const EMAIL_NORM: &str = "email_norm";
pub const PLAN: &str = "plan";
pub const REFERRAL_CODE: &str = "referral_code";
pub const REFERRER_ID: &str = "referrer_id";
pub const CYCLE_START: &str = "cycle_start";
pub const CYCLE_END: &str = "cycle_end";
pub const ANCHOR_DAY: &str = "anchor_day";
pub const BAL_PLAN: &str = "bal_plan";
pub const BAL_BONUS: &str = "bal_bonus";
pub const BAL_FLEXIBLE: &str = "bal_flexible";
pub const BAL_HELD: &str = "bal_held";
pub const BAL_DEBT: &str = "bal_debt";
pub const VERSION: &str = "version";
pub const LEDGER_SEQ: &str = "ledger_seq";
pub const CYCLE_MAX_ALLOWANCE: &str = "cycle_max_allowance";
pub const MAX_RANK: &str = "max_rank";
pub const CYCLE_REFERRALS: &str = "cycle_referrals";
pub const REFERRAL_SIGNUPS: &str = "referral_signups";
pub const REWARDED_CREDITS: &str = "rewarded_credits";
pub const REFERRAL_PAID: &str = "referral_paid";
pub const REFERRAL_REVOKED: &str = "referral_revoked";
pub const LOW_ALERTS: &str = "low_balance_alerted";

// The sparse schedule index (accounts by cycle end, pending emails by next attempt).
pub const SCHED_PK: &str = "sched_pk";
pub const SCHED_SK: &str = "sched_sk";

// Ledger entries.
pub const SEQ: &str = "seq";
pub const AT: &str = "at";
pub const ENTRY_KIND: &str = "entry_kind";
pub const D_PLAN: &str = "d_plan";
pub const D_BONUS: &str = "d_bonus";
pub const D_FLEXIBLE: &str = "d_flexible";
pub const D_HELD: &str = "d_held";
pub const D_DEBT: &str = "d_debt";
pub const AFTER_PLAN: &str = "after_plan";
pub const AFTER_BONUS: &str = "after_bonus";
pub const AFTER_FLEXIBLE: &str = "after_flexible";
pub const AFTER_HELD: &str = "after_held";
pub const AFTER_DEBT: &str = "after_debt";
pub const REF: &str = "ref";
pub const PAYMENT_ID: &str = "payment_id";
pub const REFERRED_USER_ID: &str = "referred_user_id";
pub const REASON: &str = "reason";
pub const NOTE: &str = "note";

// Idempotency records (`at` as above).
pub const REQUEST_HASH: &str = "request_hash";
pub const STATUS: &str = "status";
pub const BODY: &str = "body";
/// The random id of the request that wrote the record.
pub const WRITER: &str = "writer";
/// On a purchase's record: the credits reversed so far.
pub const REVERSED: &str = "reversed";

// Holds (`status`, `created_at` as elsewhere; `hold_expires_at` is not the
// table's TTL attribute `expires_at`: a hold must not vanish).
pub const HOLD_ID: &str = "hold_id";
pub const CREDITS: &str = "credits";
pub const FROM_PLAN: &str = "from_plan";
pub const FROM_BONUS: &str = "from_bonus";
pub const FROM_FLEXIBLE: &str = "from_flexible";
pub const HOLD_EXPIRES_AT: &str = "hold_expires_at";
pub const CAPTURED: &str = "captured";
pub const HOLD_CYCLE_END: &str = "hold_cycle_end";
pub const FEATURE: &str = "feature";

// Stripe: a payment intent's owner and why its checkout was refused, a
// subscription's last applied event.
pub const REFUSED: &str = "refused";
pub const LAST_CREATED: &str = "last_created";
pub const LAST_EVENT: &str = "last_event";
pub const SUBSCRIPTIONS: &str = "subscriptions";
pub const ENDED_FOR_GOOD: &str = "ended";

// Outbox emails (`status` as above: pending, sent or failed).
pub const EMAIL_ID: &str = "email_id";
pub const EMAIL_KIND: &str = "email_kind";
pub const TO: &str = "to";
pub const SUBJECT: &str = "subject";
pub const TEXT: &str = "text";
pub const HTML: &str = "html";
pub const ATTEMPTS: &str = "attempts";
pub const CREATED_AT: &str = "created_at";
pub const NEXT_ATTEMPT_AT: &str = "next_attempt_at";
pub const SENT_AT: &str = "sent_at";
pub const MESSAGE_ID: &str = "message_id";
pub const LAST_ERROR: &str = "last_error";
/// The table's TTL attribute (seconds since the epoch); set on sent emails.
pub const EXPIRES_AT: &str = "expires_at";
