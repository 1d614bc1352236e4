//! `POST /v1/signups`: the account, its first cycle and allowance, its
//! referral code, and the referrer's reward.
//!
//! Signup fits the executor like every other route. The first read looks up
//! the code's owner through its claim item (strongly consistent), the
//! referrer's account is a related read, and both of signup's own races are
//! failed conditions the executor retries with a fresh read: another account
//! claimed the drawn referral code (the next attempt draws another), or the
//! referrer changed since it was read (its cap may now be used up).

use super::command::{Command, Ctx, Effect, Snapshot};
use super::execute::execute;
use crate::account::{Account, AccountView, Entries};
use crate::balance::{Balance, Bucket, Delta};
use crate::cycle::{now, parse_time, Cycle, Time};
use crate::email::{referral_signup_bonus, BonusPaid};
use crate::http::{record_user, to_json, ApiError, Reply};
use crate::idempotency::{Canonical, Route};
use crate::ledger::EntryKind;
use crate::referral::{canonical_code, ReferralStatus};
use crate::store::{Lookups, Write};
use crate::types::{Email, UserId};
use crate::App;
use serde::{Deserialize, Serialize};

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    user_id: String,
    email: String,
    #[serde(default)]
    plan: Option<String>,
    #[serde(default)]
    referral_code: Option<String>,
    #[serde(default)]
    signed_up_at: Option<String>,
}

/// A valid signup. The optional fields are kept as sent, for the hash.
#[derive(Debug)]
pub struct Signup {
    user: UserId,
    email: Email,
    /// The code as sent; `Some(None)` where it cannot be a code of ours.
    code: Option<Option<String>>,
    cycle: Cycle,
    sent: SignupRequest,
}

impl Signup {
    /// Validates a request; 400 naming the field.
    /// The plan, or the catalogue's default, is looked up when the signup
    /// is decided ([`Ctx::requested_plan`]).
    pub fn parse(request: SignupRequest) -> Result<Signup, ApiError> {
        let user = UserId::parse(&request.user_id).map_err(|e| ApiError::field("user_id", e))?;
        record_user(&user);
        let email = Email::parse(&request.email).map_err(|e| ApiError::field("email", e))?;
        // Anything up to 64 characters that is not a code this service issued
        // is `invalid_code` and the signup goes ahead; a blank one (an empty
        // form field) is no code at all.
        let code = match &request.referral_code {
            Some(code) if code.chars().count() > 64 => {
                return Err(ApiError::field("referral_code", "must be at most 64 characters, or null"))
            }
            Some(code) if code.trim().is_empty() => None,
            Some(code) => Some(canonical_code(code)),
            None => None,
        };
        let signed_up_at: Time = match &request.signed_up_at {
            Some(text) => parse_time(text).ok_or_else(|| {
                ApiError::field("signed_up_at", "must be an RFC 3339 time in the years 0000 to 9999 (UTC)")
            })?,
            None => now(),
        };
        let cycle = Cycle::first(signed_up_at)
            .ok_or_else(|| ApiError::field("signed_up_at", "is out of range: its first cycle would end after 9999"))?;
        Ok(Signup { user, email, code, cycle, sent: request })
    }
}

/// What a code turned out to be, given the referrer's snapshot.
fn referral_status(referrer: Option<&Account>, email: &Email, cap: i64) -> ReferralStatus {
    match referrer {
        None => ReferralStatus::InvalidCode,
        Some(r) if r.email_norm == email.normalized() => ReferralStatus::SelfReferral,
        Some(r) if r.cycle_referrals >= cap => ReferralStatus::CapReached,
        Some(_) => ReferralStatus::Rewarded,
    }
}

#[derive(Serialize)]
struct ReferralView {
    status: ReferralStatus,
    referrer_bonus: i64,
}

#[derive(Serialize)]
struct Created<'a> {
    account: AccountView<'a>,
    referral: Option<ReferralView>,
}

impl Command for Signup {
    const ROUTE: Route = Route::Signup;

    fn user(&self) -> &UserId {
        &self.user
    }

    fn key(&self) -> &str {
        self.user.as_str()
    }

    fn canonical(&self) -> Canonical {
        Canonical::new(Route::Signup)
            .text("user_id", &self.sent.user_id)
            .text("email", &self.sent.email)
            .optional_text("plan", self.sent.plan.as_deref())
            .optional_text("referral_code", self.sent.referral_code.as_deref())
            .optional_text("signed_up_at", self.sent.signed_up_at.as_deref())
    }

    fn lookups(&self) -> Lookups {
        Lookups { code: self.code.clone().flatten(), ..Lookups::default() }
    }

    fn related(&self, snapshot: &Snapshot, _ctx: &Ctx<'_>) -> Result<Vec<String>, ApiError> {
        Ok(snapshot.code_owner.iter().cloned().collect())
    }

    fn decide(&self, snapshot: &Snapshot, ctx: &Ctx<'_>) -> Result<Effect, ApiError> {
        if snapshot.account.is_some() {
            // An account without its signup record: made by something else.
            return Err(ApiError::idempotency_conflict("user_id"));
        }
        let plan = ctx.requested_plan(self.sent.plan.as_deref().unwrap_or(ctx.catalogue().default_plan()))?;
        let referrer = snapshot.code_owner.as_deref().and_then(|id| snapshot.related(id));
        let cap = ctx.catalogue().referral_cap_per_cycle;
        let status = self.code.as_ref().map(|_| referral_status(referrer, &self.email, cap));
        let recorded_referrer = match status {
            Some(ReferralStatus::Rewarded | ReferralStatus::CapReached) => referrer,
            _ => None,
        };
        let blank = Account {
            user_id: self.user.to_string(),
            email: self.email.as_str().to_owned(),
            email_norm: self.email.normalized(),
            plan: plan.name.clone(),
            referral_code: ctx.fresh_code.to_owned(),
            referrer_id: recorded_referrer.map(|r| r.user_id.clone()),
            cycle: self.cycle,
            balance: Balance::default(),
            version: 0,
            ledger_seq: 0,
            cycle_max_allowance: plan.monthly_allowance,
            max_rank: plan.rank,
            cycle_referrals: 0,
            referral_signups: 0,
            rewarded_credits: 0,
            referral_paid: if status == Some(ReferralStatus::Rewarded) {
                ctx.catalogue().referral_signup_bonus
            } else {
                0
            },
            referral_revoked: false,
            low_balance_alerted: Vec::new(),
        };
        let mut entries = Entries::on(&blank, ctx.now);
        entries.push(EntryKind::SignupGrant, Delta::plan(plan.monthly_allowance), self.user.as_str())?;
        let balance = entries.balance();
        let first_entries = entries.finish().entries;
        let account = Account { balance, ledger_seq: first_entries.len() as u64, ..blank };

        let bonus = ctx.catalogue().referral_signup_bonus;
        let body = to_json(&Created {
            account: account.view(),
            referral: status.map(|status| ReferralView {
                status,
                referrer_bonus: if status == ReferralStatus::Rewarded { bonus } else { 0 },
            }),
        })?;
        let mut writes = vec![Write::Create { account, entries: first_entries }];
        let mut emails = Vec::new();
        match (status, recorded_referrer) {
            (Some(ReferralStatus::Rewarded), Some(referrer)) => {
                let mut entries = Entries::on(referrer, ctx.now);
                let credited =
                    entries.credit(EntryKind::ReferralBonus, Bucket::Bonus, bonus, &format!("signup:{}", self.user))?;
                let referrer_balance = entries.balance();
                let mut change = entries.finish();
                change.cycle_referrals = 1;
                change.rewarded_credits = bonus;
                change.referral_signups = 1;
                change.cycle_referrals_below = Some(cap);
                writes.push(Write::Change(change));
                let paid = BonusPaid {
                    referrer: &referrer.user_id,
                    referred: self.user.as_str(),
                    bonus,
                    debt_repaid: -credited.debt,
                    balance: referrer_balance,
                };
                emails.push(referral_signup_bonus(ctx.letters(), &paid, &referrer.email, ctx.now));
            }
            (Some(ReferralStatus::CapReached), Some(referrer)) => {
                writes.push(Write::CountReferralSignup(referrer.user_id.clone()));
            }
            _ => {}
        }
        Ok(Effect { reply: Reply::Created(body), writes, emails })
    }
}

/// Handles a signup.
pub async fn signup(app: &App, request: SignupRequest) -> Result<Reply, ApiError> {
    execute(app, &Signup::parse(request)?).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::fixtures::account;

    fn referrer(email: &str, cycle_referrals: i64) -> Account {
        let mut r = account("r", "free", "2026-01-01T00:00:00Z", Balance::default());
        r.email = email.into();
        r.email_norm = crate::referral::normalize_email(email);
        r.cycle_referrals = cycle_referrals;
        r
    }

    fn signup(body: serde_json::Value) -> Signup {
        Signup::parse(serde_json::from_value(body).expect("body")).expect("valid")
    }

    fn decide(signup: &Signup, referrer: Option<Account>) -> Result<Effect, ApiError> {
        let config = crate::config::Config::for_tests();
        let ctx = Ctx { config: &config, now: crate::cycle::now(), fresh_code: "ZZZZ2222" };
        let snapshot = Snapshot {
            code_owner: referrer.as_ref().map(|r| r.user_id.clone()),
            related: referrer.into_iter().collect(),
            ..Snapshot::default()
        };
        signup.decide(&snapshot, &ctx)
    }

    fn json(effect: &Effect) -> serde_json::Value {
        serde_json::from_str(effect.reply.body()).expect("json")
    }

    #[test]
    fn referral_status_follows_the_contract_order() {
        let friend = Email::parse("friend@example.com").expect("email");
        assert_eq!(referral_status(None, &friend, 25), ReferralStatus::InvalidCode);
        assert_eq!(referral_status(Some(&referrer("me@example.com", 0)), &friend, 25), ReferralStatus::Rewarded);
        assert_eq!(referral_status(Some(&referrer("me@example.com", 25)), &friend, 25), ReferralStatus::CapReached);
        let me_again = Email::parse("Me+second@Example.com").expect("email");
        assert_eq!(referral_status(Some(&referrer("me@example.com", 25)), &me_again, 25), ReferralStatus::SelfReferral);
    }

    #[test]
    fn a_plain_signup_grants_the_allowance_on_the_drawn_code() {
        let s = signup(
            serde_json::json!({"user_id": "alice", "email": "a@example.com", "plan": "pro", "signed_up_at": "2026-01-31T10:00:00Z"}),
        );
        let effect = decide(&s, None).expect("effect");
        let body = json(&effect);
        assert_eq!(body["account"]["referral_code"], "ZZZZ2222");
        assert_eq!(body["account"]["cycle_end"], "2026-02-28T10:00:00Z");
        assert_eq!(body["account"]["balance"]["plan"], 5_000);
        assert!(body["referral"].is_null());
        let [Write::Create { account, entries }] = effect.writes.as_slice() else { panic!("{:?}", effect.writes) };
        assert_eq!((account.ledger_seq, entries.len(), entries[0].kind), (1, 1, EntryKind::SignupGrant));
        assert!(effect.emails.is_empty());
    }

    #[test]
    fn a_rewarded_referral_pays_under_the_cap_and_emails_the_referrer() {
        let s = signup(serde_json::json!({"user_id": "bob", "email": "bob@example.org", "referral_code": "abcd2345"}));
        assert_eq!(s.lookups().code.as_deref(), Some("ABCD2345"));
        let effect = decide(&s, Some(referrer("r@example.com", 3))).expect("effect");
        assert_eq!(json(&effect)["referral"], serde_json::json!({"status": "rewarded", "referrer_bonus": 250}));
        let [Write::Create { account, .. }, Write::Change(paid)] = effect.writes.as_slice() else {
            panic!("{:?}", effect.writes)
        };
        assert_eq!((account.referrer_id.as_deref(), account.referral_paid), (Some("r"), 250));
        assert_eq!(
            (paid.delta(), paid.cycle_referrals_below, paid.referral_signups),
            (Delta::to(Bucket::Bonus, 250), Some(25), 1)
        );
        assert_eq!(effect.emails.len(), 1);
    }

    #[test]
    fn a_referrer_at_its_cap_is_recorded_and_counted_but_not_paid() {
        let s = signup(serde_json::json!({"user_id": "bob", "email": "bob@example.org", "referral_code": "ABCD2345"}));
        let effect = decide(&s, Some(referrer("r@example.com", 25))).expect("effect");
        assert_eq!(json(&effect)["referral"]["status"], "cap_reached");
        assert!(matches!(effect.writes.as_slice(), [Write::Create { .. }, Write::CountReferralSignup(r)] if r == "r"));
        assert!(effect.emails.is_empty());
    }

    #[test]
    fn self_referrals_and_unknown_codes_record_no_referrer() {
        let s = signup(serde_json::json!({"user_id": "me2", "email": "R+2@example.com", "referral_code": "ABCD2345"}));
        let effect = decide(&s, Some(referrer("r@example.com", 0))).expect("effect");
        assert_eq!(json(&effect)["referral"]["status"], "self_referral");
        assert!(matches!(effect.writes.as_slice(), [Write::Create { account, .. }] if account.referrer_id.is_none()));
        let s = signup(serde_json::json!({"user_id": "x", "email": "x@example.com", "referral_code": "hello"}));
        assert_eq!(s.lookups().code, None, "not a code of ours: nothing to look up");
        assert_eq!(json(&decide(&s, None).expect("effect"))["referral"]["status"], "invalid_code");
    }

    #[test]
    fn an_existing_account_without_a_record_is_a_conflict() {
        let s = signup(serde_json::json!({"user_id": "u", "email": "u@example.com"}));
        let config = crate::config::Config::for_tests();
        let ctx = Ctx { config: &config, now: crate::cycle::now(), fresh_code: "ZZZZ2222" };
        let snapshot = Snapshot { account: Some(referrer("u@example.com", 0)), ..Snapshot::default() };
        assert_eq!(s.decide(&snapshot, &ctx).expect_err("exists").code, "idempotency_conflict");
    }
}
