//! Corrections: `POST /v1/reversals`, `/v1/adjustments` and
//! `/v1/referral-clawbacks`. Money flows backwards as new ledger entries,
//! never as edits; what the buckets cannot cover becomes debt, which every
//! later credit repays first.

use super::command::{Command, Ctx, Effect, Snapshot};
use super::execute::execute;
use crate::account::Entries;
use crate::balance::{credit, take, Balance, Bucket, Delta, Parts, CLAWBACK_ORDER, REVERSAL_ORDER};
use crate::http::{record_user, to_json, ApiError, Reply};
use crate::idempotency::{Canonical, Route};
use crate::ledger::{EntryContext, EntryKind};
use crate::store::{Lookups, Write};
use crate::types::{in_range, parse_label, Key, UserId};
use crate::App;
use serde::{Deserialize, Serialize};

/// Largest credits of one adjustment, either way.
pub const ADJUSTMENT_CREDITS: std::ops::RangeInclusive<i64> = -10_000_000..=10_000_000;

/// Longest support note, in characters.
pub const NOTE_MAX_CHARS: usize = 200;

fn one_of<'a>(field: &str, value: &'a str, allowed: &[&str]) -> Result<&'a str, ApiError> {
    if allowed.contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::field(field, format!("must be one of {}", allowed.join(", "))))
    }
}

// ---- reversals -------------------------------------------------------------

/// The body of `POST /v1/reversals`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReversalRequest {
    user_id: String,
    reversal_id: String,
    payment_id: String,
    reason: String,
    #[serde(default)]
    credits: Option<i64>,
}

/// A valid reversal: a refund or chargeback of a purchase.
#[derive(Debug)]
pub struct Reversal {
    user: UserId,
    reversal_id: Key,
    payment_id: Key,
    reason: String,
    credits: Option<i64>,
}

impl Reversal {
    /// A reversal from values already validated (the Stripe webhook's).
    pub fn new(user: UserId, reversal_id: Key, payment_id: Key, reason: &str, credits: Option<i64>) -> Reversal {
        Reversal { user, reversal_id, payment_id, reason: reason.to_owned(), credits }
    }

    /// Validates a request; 400 naming the field.
    pub fn parse(request: ReversalRequest) -> Result<Reversal, ApiError> {
        let user = UserId::parse(&request.user_id).map_err(|e| ApiError::field("user_id", e))?;
        record_user(&user);
        let reversal_id = Key::parse(&request.reversal_id).map_err(|e| ApiError::field("reversal_id", e))?;
        let payment_id = Key::parse(&request.payment_id).map_err(|e| ApiError::field("payment_id", e))?;
        one_of("reason", &request.reason, &["refund", "chargeback"])?;
        if let Some(credits) = request.credits {
            in_range(credits, 1..=i64::MAX).map_err(|_| ApiError::field("credits", "must be at least 1"))?;
        }
        Ok(Reversal { user, reversal_id, payment_id, reason: request.reason, credits: request.credits })
    }
}

#[derive(Serialize)]
struct ReversalView<'a> {
    reversal_id: &'a str,
    payment_id: &'a str,
    credits: i64,
    from: Parts,
    debt_added: i64,
}

#[derive(Serialize)]
struct Reversed<'a> {
    reversal: ReversalView<'a>,
    balance: Balance,
}

impl Command for Reversal {
    const ROUTE: Route = Route::Reversal;
    const LOWERS_BALANCE: bool = true;

    fn user(&self) -> &UserId {
        &self.user
    }

    fn key(&self) -> &str {
        self.reversal_id.as_str()
    }

    fn canonical(&self) -> Canonical {
        Canonical::new(Route::Reversal)
            .text("user_id", self.user.as_str())
            .text("reversal_id", self.reversal_id.as_str())
            .text("payment_id", self.payment_id.as_str())
            .text("reason", &self.reason)
            .optional_number("credits", self.credits)
    }

    fn lookups(&self) -> Lookups {
        Lookups { purchase: Some(self.payment_id.as_str().to_owned()), ..Lookups::default() }
    }

    fn decide(&self, snapshot: &Snapshot, ctx: &Ctx<'_>) -> Result<Effect, ApiError> {
        let account = snapshot.account()?;
        let purchase = snapshot.purchase.as_ref().ok_or_else(ApiError::purchase_not_found)?;
        let remaining = purchase.credits - purchase.reversed;
        let credits = self.credits.unwrap_or(remaining);
        if remaining <= 0 || credits > remaining {
            return Err(ApiError::reversal_exceeds_purchase(format!(
                "this purchase bought {} credits and {} are already reversed: {} remain reversible",
                purchase.credits,
                purchase.reversed,
                remaining.max(0)
            )));
        }
        let (from, debt_added) = take(account.balance, credits, REVERSAL_ORDER);
        let mut entries = Entries::on(account, ctx.now);
        let context = EntryContext {
            payment_id: Some(purchase.payment_id.clone()),
            reason: Some(self.reason.clone()),
            ..EntryContext::default()
        };
        let delta = Delta { debt: debt_added, ..Delta::out_of(from) };
        entries.push_with(EntryKind::Reversal, delta, self.reversal_id.as_str(), context)?;
        let body = to_json(&Reversed {
            reversal: ReversalView {
                reversal_id: self.reversal_id.as_str(),
                payment_id: self.payment_id.as_str(),
                credits,
                from,
                debt_added,
            },
            balance: entries.balance(),
        })?;
        Ok(Effect {
            reply: Reply::Created(body),
            writes: vec![
                Write::Change(entries.finish()),
                Write::CountReversal {
                    user_id: account.user_id.clone(),
                    payment_id: purchase.payment_id.clone(),
                    before: purchase.reversed,
                    after: purchase.reversed + credits,
                },
            ],
            emails: Vec::new(),
        })
    }
}

/// Handles a reversal.
pub async fn reverse(app: &App, request: ReversalRequest) -> Result<Reply, ApiError> {
    execute(app, &Reversal::parse(request)?).await
}

// ---- adjustments -----------------------------------------------------------

/// The body of `POST /v1/adjustments`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentRequest {
    user_id: String,
    adjustment_id: String,
    credits: i64,
    bucket: String,
    reason: String,
    #[serde(default)]
    note: Option<String>,
}

/// A valid adjustment: a support correction or goodwill grant.
#[derive(Debug)]
pub struct Adjustment {
    user: UserId,
    adjustment_id: Key,
    credits: i64,
    bucket: Bucket,
    sent_bucket: String,
    reason: String,
    note: Option<String>,
}

impl Adjustment {
    /// Validates a request; 400 naming the field.
    pub fn parse(request: AdjustmentRequest) -> Result<Adjustment, ApiError> {
        let user = UserId::parse(&request.user_id).map_err(|e| ApiError::field("user_id", e))?;
        record_user(&user);
        let adjustment_id = Key::parse(&request.adjustment_id).map_err(|e| ApiError::field("adjustment_id", e))?;
        let credits = in_range(request.credits, ADJUSTMENT_CREDITS).map_err(|e| ApiError::field("credits", e))?;
        if credits == 0 {
            return Err(ApiError::field("credits", "must not be 0"));
        }
        let bucket = match one_of("bucket", &request.bucket, &["bonus", "flexible"])? {
            "bonus" => Bucket::Bonus,
            _ => Bucket::Flexible,
        };
        one_of("reason", &request.reason, &["goodwill", "correction", "promotion", "other"])?;
        let note = match request.note {
            Some(note) => Some(parse_label(&note, NOTE_MAX_CHARS).map_err(|e| ApiError::field("note", e))?),
            None => None,
        };
        Ok(Adjustment {
            user,
            adjustment_id,
            credits,
            bucket,
            sent_bucket: request.bucket,
            reason: request.reason,
            note,
        })
    }
}

#[derive(Serialize)]
struct AdjustmentView<'a> {
    adjustment_id: &'a str,
    credits: i64,
    bucket: Bucket,
    reason: &'a str,
    note: Option<&'a str>,
    debt_repaid: i64,
}

#[derive(Serialize)]
struct Adjusted<'a> {
    adjustment: AdjustmentView<'a>,
    balance: Balance,
}

impl Command for Adjustment {
    const ROUTE: Route = Route::Adjustment;
    const LOWERS_BALANCE: bool = true;

    fn user(&self) -> &UserId {
        &self.user
    }

    fn key(&self) -> &str {
        self.adjustment_id.as_str()
    }

    fn canonical(&self) -> Canonical {
        Canonical::new(Route::Adjustment)
            .text("user_id", self.user.as_str())
            .text("adjustment_id", self.adjustment_id.as_str())
            .number("credits", self.credits)
            .text("bucket", &self.sent_bucket)
            .text("reason", &self.reason)
            .optional_text("note", self.note.as_deref())
    }

    fn decide(&self, snapshot: &Snapshot, ctx: &Ctx<'_>) -> Result<Effect, ApiError> {
        let account = snapshot.account()?;
        let delta = if self.credits > 0 {
            credit(account.balance, self.bucket, self.credits)
        } else {
            let has = account.balance.bucket(self.bucket);
            if has < -self.credits {
                return Err(ApiError::insufficient_credits(format!(
                    "this adjustment takes {} credits from {}, which holds {has}; an adjustment never creates debt",
                    -self.credits, self.sent_bucket
                )));
            }
            Delta::to(self.bucket, self.credits)
        };
        let mut entries = Entries::on(account, ctx.now);
        let context =
            EntryContext { reason: Some(self.reason.clone()), note: self.note.clone(), ..EntryContext::default() };
        entries.push_with(EntryKind::Adjustment, delta, self.adjustment_id.as_str(), context)?;
        let body = to_json(&Adjusted {
            adjustment: AdjustmentView {
                adjustment_id: self.adjustment_id.as_str(),
                credits: self.credits,
                bucket: self.bucket,
                reason: &self.reason,
                note: self.note.as_deref(),
                debt_repaid: -delta.debt,
            },
            balance: entries.balance(),
        })?;
        Ok(Effect { reply: Reply::Created(body), writes: vec![Write::Change(entries.finish())], emails: Vec::new() })
    }
}

/// Handles an adjustment.
pub async fn adjust(app: &App, request: AdjustmentRequest) -> Result<Reply, ApiError> {
    execute(app, &Adjustment::parse(request)?).await
}

// ---- referral clawbacks ----------------------------------------------------

/// The body of `POST /v1/referral-clawbacks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClawbackRequest {
    referred_user_id: String,
    clawback_id: String,
    reason: String,
}

/// A valid clawback of a referral found fraudulent (or refunded). Its key
/// is scoped to the referred user, whose account holds the referral.
#[derive(Debug)]
pub struct Clawback {
    referred: UserId,
    clawback_id: Key,
    reason: String,
}

impl Clawback {
    /// Validates a request; 400 naming the field.
    pub fn parse(request: ClawbackRequest) -> Result<Clawback, ApiError> {
        let referred = UserId::parse(&request.referred_user_id).map_err(|e| ApiError::field("referred_user_id", e))?;
        record_user(&referred);
        let clawback_id = Key::parse(&request.clawback_id).map_err(|e| ApiError::field("clawback_id", e))?;
        one_of("reason", &request.reason, &["fraud", "refund"])?;
        Ok(Clawback { referred, clawback_id, reason: request.reason })
    }
}

#[derive(Serialize)]
struct ClawbackView<'a> {
    referrer_id: &'a str,
    referred_user_id: &'a str,
    credits: i64,
    debt_added: i64,
}

#[derive(Serialize)]
struct ClawedBack<'a> {
    clawback: ClawbackView<'a>,
    balance: Balance,
}

impl Command for Clawback {
    const ROUTE: Route = Route::Clawback;

    fn user(&self) -> &UserId {
        &self.referred
    }

    fn key(&self) -> &str {
        self.clawback_id.as_str()
    }

    fn canonical(&self) -> Canonical {
        Canonical::new(Route::Clawback)
            .text("referred_user_id", self.referred.as_str())
            .text("clawback_id", self.clawback_id.as_str())
            .text("reason", &self.reason)
    }

    fn related(&self, snapshot: &Snapshot, _ctx: &Ctx<'_>) -> Result<Vec<String>, ApiError> {
        Ok(snapshot.account()?.referrer_id.iter().cloned().collect())
    }

    fn decide(&self, snapshot: &Snapshot, ctx: &Ctx<'_>) -> Result<Effect, ApiError> {
        let referred = snapshot.account()?;
        let referrer_id = referred
            .referrer_id
            .as_deref()
            .ok_or_else(|| ApiError::referral_not_found("this user signed up without a referrer"))?;
        let referrer = snapshot
            .related(referrer_id)
            .ok_or_else(|| ApiError::referral_not_found("the referrer's account no longer exists"))?;
        let view = |credits, debt_added, balance| {
            to_json(&ClawedBack {
                clawback: ClawbackView { referrer_id, referred_user_id: self.referred.as_str(), credits, debt_added },
                balance,
            })
        };
        if referred.referral_revoked {
            // Clawed back before, under another key: nothing is taken twice.
            return Ok(Effect {
                reply: Reply::Ok(view(0, 0, referrer.balance)?),
                writes: Vec::new(),
                emails: Vec::new(),
            });
        }
        let credits = referred.referral_paid;
        let (from, debt_added) = take(referrer.balance, credits, CLAWBACK_ORDER);
        let mut entries = Entries::on(referrer, ctx.now);
        if credits > 0 {
            let context = EntryContext {
                referred_user_id: Some(referred.user_id.clone()),
                reason: Some(self.reason.clone()),
                ..EntryContext::default()
            };
            let delta = Delta { debt: debt_added, ..Delta::out_of(from) };
            entries.push_with(EntryKind::Clawback, delta, self.clawback_id.as_str(), context)?;
        }
        let body = view(credits, debt_added, entries.balance())?;
        let mut taken = entries.finish();
        taken.rewarded_credits = -credits;
        taken.referral_signups = -1;
        // The referred account's version moves too, so a racing upgrade of
        // that user either commits first (and its bonus is taken back here)
        // or reads the revoked referral and pays nothing.
        let mut revoked = crate::account::Change::of(referred);
        revoked.revoke_referral = true;
        Ok(Effect {
            reply: Reply::Created(body),
            writes: vec![Write::Change(revoked), Write::Change(taken)],
            emails: Vec::new(),
        })
    }
}

/// Handles a clawback.
pub async fn claw_back(app: &App, request: ClawbackRequest) -> Result<Reply, ApiError> {
    execute(app, &Clawback::parse(request)?).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::fixtures::account;
    use crate::account::Account;
    use crate::store::PurchaseFacts;
    use serde_json::{json, Value};

    fn run(command: &impl Command, snapshot: &Snapshot) -> Result<Effect, ApiError> {
        let config = crate::config::Config::for_tests();
        let ctx = Ctx { config: &config, now: crate::cycle::now(), fresh_code: "ZZZZ2222" };
        command.decide(snapshot, &ctx)
    }

    fn body(effect: &Effect) -> Value {
        serde_json::from_str(effect.reply.body()).expect("json")
    }

    fn user(balance: Balance) -> Account {
        account("u", "pro", "2026-01-31T10:00:00Z", balance)
    }

    fn reversal(credits: Option<i64>) -> Reversal {
        let mut request = json!({"user_id": "u", "reversal_id": "r-1", "payment_id": "p-1", "reason": "chargeback"});
        if let Some(c) = credits {
            request["credits"] = json!(c);
        }
        Reversal::parse(serde_json::from_value(request).expect("body")).expect("valid")
    }

    fn with_purchase(balance: Balance, credits: i64, reversed: i64) -> Snapshot {
        Snapshot {
            account: Some(user(balance)),
            purchase: Some(PurchaseFacts { payment_id: "p-1".into(), credits, reversed }),
            ..Snapshot::default()
        }
    }

    #[test]
    fn a_reversal_takes_flexible_then_bonus_then_plan_and_the_rest_becomes_debt() {
        let balance = Balance { plan: 100, bonus: 200, flexible: 1_000, ..Balance::default() };
        let effect = run(&reversal(None), &with_purchase(balance, 3_000, 0)).expect("effect");
        let b = body(&effect);
        assert_eq!(b["reversal"]["from"], json!({"plan": 100, "bonus": 200, "flexible": 1000}));
        assert_eq!(b["reversal"]["debt_added"], 1_700);
        assert_eq!(b["balance"], json!({"plan": 0, "bonus": 0, "flexible": 0, "held": 0, "debt": 1700, "total": 0}));
        let [Write::Change(change), Write::CountReversal { before: 0, after: 3_000, .. }] = effect.writes.as_slice()
        else {
            panic!("{:?}", effect.writes)
        };
        let entry = &change.entries[0];
        assert_eq!((entry.kind, entry.reference.as_str()), (EntryKind::Reversal, "r-1"));
        assert_eq!(
            (entry.context.payment_id.as_deref(), entry.context.reason.as_deref()),
            (Some("p-1"), Some("chargeback"))
        );
    }

    #[test]
    fn partial_reversals_never_exceed_the_purchase() {
        let balance = Balance { flexible: 5_000, ..Balance::default() };
        assert!(run(&reversal(Some(1_000)), &with_purchase(balance, 3_000, 1_500)).is_ok());
        let err = run(&reversal(Some(1_501)), &with_purchase(balance, 3_000, 1_500)).expect_err("too much");
        assert_eq!((err.status, err.code), (409, "reversal_exceeds_purchase"));
        assert!(err.message.contains("1500 remain reversible"), "{}", err.message);
        let err = run(&reversal(None), &with_purchase(balance, 3_000, 3_000)).expect_err("all reversed");
        assert!(err.message.contains("0 remain"), "{}", err.message);
        let all = run(&reversal(None), &with_purchase(balance, 3_000, 1_000)).expect("the rest");
        assert_eq!(body(&all)["reversal"]["credits"], 2_000);
    }

    #[test]
    fn a_reversal_of_something_not_bought_is_404() {
        let snapshot = Snapshot { account: Some(user(Balance::default())), ..Snapshot::default() };
        assert_eq!(run(&reversal(None), &snapshot).expect_err("no purchase").code, "purchase_not_found");
    }

    fn adjustment(credits: i64, bucket: &str) -> Adjustment {
        let request = json!({"user_id": "u", "adjustment_id": "a-1", "credits": credits, "bucket": bucket, "reason": "goodwill", "note": "sorry"});
        Adjustment::parse(serde_json::from_value(request).expect("body")).expect("valid")
    }

    #[test]
    fn a_positive_adjustment_repays_debt_first() {
        let snapshot =
            Snapshot { account: Some(user(Balance { debt: 300, ..Balance::default() })), ..Snapshot::default() };
        let effect = run(&adjustment(500, "bonus"), &snapshot).expect("effect");
        let b = body(&effect);
        assert_eq!((b["adjustment"]["debt_repaid"].as_i64(), b["balance"]["bonus"].as_i64()), (Some(300), Some(200)));
        assert_eq!(b["balance"]["debt"], 0);
    }

    #[test]
    fn a_negative_adjustment_never_creates_debt() {
        let snapshot = Snapshot {
            account: Some(user(Balance { flexible: 50, bonus: 1_000, ..Balance::default() })),
            ..Snapshot::default()
        };
        let err = run(&adjustment(-51, "flexible"), &snapshot).expect_err("too much");
        assert_eq!((err.status, err.code), (402, "insufficient_credits"));
        let effect = run(&adjustment(-50, "flexible"), &snapshot).expect("exactly what it holds");
        assert_eq!(body(&effect)["balance"]["flexible"], 0);
    }

    #[test]
    fn adjustments_refuse_what_the_contract_does_not_allow() {
        let parse = |v: Value| Adjustment::parse(serde_json::from_value(v).expect("shape"));
        let ok = json!({"user_id": "u", "adjustment_id": "a", "credits": 5, "bucket": "bonus", "reason": "other"});
        for (field, value) in [
            ("credits", json!(0)),
            ("credits", json!(10_000_001)),
            ("bucket", json!("plan")),
            ("reason", json!("because")),
            ("note", json!("n".repeat(201))),
        ] {
            let mut body = ok.clone();
            body[field] = value;
            assert!(parse(body).expect_err("invalid").message.starts_with(field), "{field}");
        }
    }

    fn clawback() -> Clawback {
        let request = json!({"referred_user_id": "friend", "clawback_id": "k-1", "reason": "fraud"});
        Clawback::parse(serde_json::from_value(request).expect("body")).expect("valid")
    }

    fn referral(paid: i64, revoked: bool, referrer_balance: Balance) -> Snapshot {
        let mut friend = account("friend", "pro", "2026-01-31T10:00:00Z", Balance::default());
        friend.referrer_id = Some("referrer".into());
        friend.referral_paid = paid;
        friend.referral_revoked = revoked;
        let referrer = account("referrer", "free", "2026-01-01T00:00:00Z", referrer_balance);
        Snapshot { account: Some(friend), related: vec![referrer], ..Snapshot::default() }
    }

    #[test]
    fn a_clawback_takes_back_everything_the_referral_paid_bonus_first() {
        let snapshot = referral(1_650, false, Balance { plan: 1_000, bonus: 500, flexible: 200, ..Balance::default() });
        let effect = run(&clawback(), &snapshot).expect("effect");
        let b = body(&effect);
        assert_eq!(
            b["clawback"],
            json!({"referrer_id": "referrer", "referred_user_id": "friend", "credits": 1650, "debt_added": 0})
        );
        assert_eq!(b["balance"]["plan"], 50, "bonus 500, then flexible 200, then plan 950");
        let [Write::Change(revoked), Write::Change(taken)] = effect.writes.as_slice() else {
            panic!("{:?}", effect.writes)
        };
        assert!(revoked.revoke_referral && revoked.entries.is_empty());
        assert_eq!((taken.rewarded_credits, taken.referral_signups), (-1_650, -1));
        assert_eq!(taken.entries[0].kind, EntryKind::Clawback);
        assert_eq!(taken.entries[0].context.referred_user_id.as_deref(), Some("friend"));
    }

    #[test]
    fn what_the_referrer_no_longer_has_becomes_debt() {
        let effect =
            run(&clawback(), &referral(4_250, false, Balance { bonus: 250, ..Balance::default() })).expect("effect");
        assert_eq!(body(&effect)["clawback"]["debt_added"], 4_000);
        assert_eq!(body(&effect)["balance"]["debt"], 4_000);
    }

    #[test]
    fn a_second_clawback_takes_nothing() {
        let effect =
            run(&clawback(), &referral(250, true, Balance { bonus: 250, ..Balance::default() })).expect("effect");
        assert_eq!(effect.reply.status(), 200);
        assert_eq!(body(&effect)["clawback"]["credits"], 0);
        assert!(effect.writes.is_empty());
    }

    #[test]
    fn a_user_without_a_referrer_has_no_referral_to_claw_back() {
        let mut snapshot = referral(0, false, Balance::default());
        if let Some(a) = snapshot.account.as_mut() {
            a.referrer_id = None;
        }
        assert_eq!(run(&clawback(), &snapshot).expect_err("no referrer").code, "referral_not_found");
    }
}
