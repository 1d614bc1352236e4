//! `POST /v1/signups`: the account, its first cycle and allowance, its
//! referral code, and the referrer's reward.

use super::{replay_duplicate, request_hash, Retry};
use crate::account::{Account, AccountView, Change, Entries};
use crate::balance::{Balance, Delta};
use crate::cycle::{format_time, now, parse_time, Cycle};
use crate::email::{deliver, referral_signup_bonus};
use crate::http::{record_user, to_json, ApiError, Reply};
use crate::ledger::EntryKind;
use crate::referral::{canonical_code, new_code, ReferralStatus};
use crate::store::{CommitError, IdemRecord, ReceiptKey, Role, Route};
use crate::types::{Email, UserId};
use crate::App;
use serde::{Deserialize, Serialize};

/// The request body.
#[derive(Debug, Deserialize, Serialize)]
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

/// What a code turned out to be, given the referrer's snapshot.
fn referral_status(referrer: Option<&Account>, email: &Email, cap: i64) -> ReferralStatus {
    match referrer {
        None => ReferralStatus::InvalidCode,
        Some(r) if r.email_norm == email.normalized() => ReferralStatus::SelfReferral,
        Some(r) if r.cycle_referrals >= cap => ReferralStatus::CapReached,
        Some(_) => ReferralStatus::Rewarded,
    }
}

/// Handles a signup.
pub async fn signup(app: &App, request: SignupRequest) -> Result<Reply, ApiError> {
    let user = UserId::parse(&request.user_id).map_err(|e| ApiError::field("user_id", e))?;
    record_user(&user);
    let email = Email::parse(&request.email).map_err(|e| ApiError::field("email", e))?;
    let catalogue = &app.config.catalogue;
    let plan_name = request.plan.as_deref().unwrap_or(catalogue.default_plan());
    let plan = catalogue
        .plan(plan_name)
        .ok_or_else(|| ApiError::field("plan", format!("unknown plan; expected one of {}", catalogue.plan_names())))?;
    let code = match &request.referral_code {
        Some(code) if code.is_empty() || code.len() > 64 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            return Err(ApiError::field("referral_code", "must be 1 to 64 letters and digits, or null"))
        }
        Some(code) => Some(canonical_code(code)),
        None => None,
    };
    let signed_up_at = match &request.signed_up_at {
        Some(text) => parse_time(text).ok_or_else(|| ApiError::field("signed_up_at", "must be an RFC 3339 time"))?,
        None => now(),
    };
    let cycle = Cycle::first(signed_up_at).ok_or_else(|| ApiError::field("signed_up_at", "is out of range"))?;
    let hash = request_hash(Route::Signup, &request)?;
    let key = ReceiptKey { route: Route::Signup, user_id: user.to_string(), key: user.to_string() };

    // The one read: the referrer, through the code index.
    let mut referrer = match &code {
        Some(Some(code)) => app.store.account_by_code(code).await?,
        _ => None,
    };
    let bonus = catalogue.referral_signup_bonus;
    let cap = catalogue.referral_cap_per_cycle;
    let mut retry = Retry::new();
    loop {
        let status = code.as_ref().map(|_| referral_status(referrer.as_ref(), &email, cap));
        let at = now();
        let blank = Account {
            user_id: user.to_string(),
            email: email.as_str().to_owned(),
            email_norm: email.normalized(),
            plan: plan.name.clone(),
            referral_code: new_code(),
            referrer_id: match status {
                Some(ReferralStatus::Rewarded | ReferralStatus::CapReached) => {
                    referrer.as_ref().map(|r| r.user_id.clone())
                }
                _ => None,
            },
            cycle,
            balance: Balance::default(),
            version: 0,
            ledger_seq: 0,
            cycle_max_allowance: plan.monthly_allowance,
            max_rank: plan.rank,
            cycle_referrals: 0,
            referral_signups: 0,
            rewarded_credits: 0,
        };
        let mut entries = Entries::on(&blank, format_time(at));
        entries
            .push(EntryKind::SignupGrant, Delta::plan(plan.monthly_allowance), user.as_str())
            .map_err(|_| ApiError::internal())?;
        let new_balance = entries.balance();
        let first_entries = entries.finish().entries;
        let account = Account { balance: new_balance, ledger_seq: first_entries.len() as u64, ..blank };

        let body = to_json(&Created {
            account: account.view(),
            referral: status.map(|status| ReferralView {
                status,
                referrer_bonus: if status == ReferralStatus::Rewarded { bonus } else { 0 },
            }),
        })?;
        let record = IdemRecord { request_hash: hash.clone(), status: 201, body: body.clone(), at: format_time(at) };
        let mut tx = app.store.tx(&key, &record);
        tx.create_account(&account, &first_entries);
        let mut emails = Vec::new();
        match (status, &referrer) {
            (Some(ReferralStatus::Rewarded), Some(referrer)) => {
                let mut entries = Entries::on(referrer, format_time(at));
                entries
                    .push(EntryKind::ReferralBonus, Delta::bonus(bonus), &format!("signup:{user}"))
                    .map_err(|_| ApiError::internal())?;
                let balance = entries.balance();
                let change = Change {
                    cycle_referrals: 1,
                    rewarded_credits: bonus,
                    referral_signups: 1,
                    cycle_referrals_below: Some(cap),
                    ..entries.finish()
                };
                tx.change_account(referrer, &change);
                let email = referral_signup_bonus(user.as_str(), &referrer.email, bonus, balance, at);
                tx.queue_email(&email);
                emails.push(email);
            }
            (Some(ReferralStatus::CapReached), Some(referrer)) => tx.count_referral_signup(&referrer.user_id),
            _ => {}
        }
        match app.store.commit(tx).await {
            Ok(()) => {
                if let Some(mailer) = &app.mailer {
                    deliver(&app.store, mailer, &emails, at).await;
                }
                return Ok(Reply::Created(body));
            }
            Err(CommitError::Duplicate(old)) => return replay_duplicate(&app.store, old, &key, &hash, "user_id").await,
            // The account exists without its record: written by something else.
            Err(CommitError::Stale(Role::NewAccount)) => {
                return replay_duplicate(&app.store, None, &key, &hash, "user_id").await
            }
            Err(CommitError::Stale(Role::CodeClaim)) => retry.again("referral code collision").await?,
            Err(CommitError::Stale(Role::Account(id) | Role::Counter(id))) => {
                // The index's snapshot was stale, or the referrer changed: read it again, consistently.
                referrer = app.store.account(&id).await?;
                retry.again("referrer changed since it was read").await?;
            }
            Err(CommitError::Stale(role)) => {
                tracing::error!(?role, "unexpected condition failure");
                return Err(ApiError::internal());
            }
            Err(CommitError::Conflict) => retry.again("transaction conflict").await?,
            Err(CommitError::Store(e)) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn referrer(email: &str, cycle_referrals: i64) -> Account {
        let at = parse_time("2026-01-01T00:00:00Z").expect("time");
        Account {
            user_id: "r".into(),
            email: email.into(),
            email_norm: crate::referral::normalize_email(email),
            plan: "free".into(),
            referral_code: "ABCD2345".into(),
            referrer_id: None,
            cycle: Cycle::first(at).expect("cycle"),
            balance: Balance::default(),
            version: 1,
            ledger_seq: 1,
            cycle_max_allowance: 1_000,
            max_rank: 0,
            cycle_referrals,
            referral_signups: 0,
            rewarded_credits: 0,
        }
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
}
