//! `POST /v1/plan-changes`: the new plan, its top-up, and the referrer's
//! upgrade bonus.

use super::{after_failed_commit, replay, request_hash, Retry};
use crate::account::{Account, AccountView, Change, Entries};
use crate::balance::Delta;
use crate::cycle::{format_time, now};
use crate::email::{deliver, referral_upgrade_bonus};
use crate::http::{record_user, to_json, ApiError, Reply};
use crate::ledger::EntryKind;
use crate::plans::PlanStanding;
use crate::store::{IdemRecord, ReceiptKey, Route};
use crate::types::{Key, UserId};
use crate::App;
use serde::{Deserialize, Serialize};

/// The request body.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlanChangeRequest {
    user_id: String,
    change_id: String,
    plan: String,
}

#[derive(Serialize)]
struct BonusView<'a> {
    referrer_bonus: i64,
    plans: Vec<&'a str>,
}

#[derive(Serialize)]
struct Changed<'a> {
    account: AccountView<'a>,
    upgrade_bonus: Option<BonusView<'a>>,
}

/// Where an account stands; a plan no longer in the catalogue counts as rank 0.
fn standing(app: &App, account: &Account) -> PlanStanding {
    PlanStanding {
        rank: app.config.catalogue.plan(&account.plan).map_or(0, |p| p.rank),
        cycle_max_allowance: account.cycle_max_allowance,
        max_rank: account.max_rank,
    }
}

/// Handles a plan change.
pub async fn change_plan(app: &App, request: PlanChangeRequest) -> Result<Reply, ApiError> {
    let user = UserId::parse(&request.user_id).map_err(|e| ApiError::field("user_id", e))?;
    record_user(&user);
    let change_id = Key::parse(&request.change_id).map_err(|e| ApiError::field("change_id", e))?;
    let catalogue = &app.config.catalogue;
    let plan = catalogue
        .plan(&request.plan)
        .ok_or_else(|| ApiError::field("plan", format!("unknown plan; expected one of {}", catalogue.plan_names())))?;
    let hash = request_hash(Route::PlanChange, &request)?;
    let key = ReceiptKey { route: Route::PlanChange, user_id: user.to_string(), key: change_id.as_str().to_owned() };
    let reference = format!("plan-change:{}:{}", user, change_id.as_str());

    let mut retry = Retry::new();
    loop {
        let (account, receipt) = app.store.account_and_receipt(user.as_str(), &key).await?;
        if let Some(receipt) = receipt {
            return replay(&receipt, &hash, "change_id");
        }
        let account = account.ok_or_else(ApiError::account_not_found)?;
        let outcome = catalogue.plan_change(standing(app, &account), plan);
        // The referrer is read only when a bonus is due: the first time the
        // user reaches a rank, so rarely.
        let referrer = match (&account.referrer_id, outcome.bonus > 0) {
            (Some(id), true) => app.store.account(id).await?,
            _ => None,
        };
        let at = now();
        let mut entries = Entries::on(&account, format_time(at));
        if outcome.top_up > 0 {
            entries
                .push(EntryKind::PlanChange, Delta::plan(outcome.top_up), change_id.as_str())
                .map_err(|_| ApiError::internal())?;
        }
        let balance = entries.balance();
        let change = Change {
            plan: Some(plan.name.clone()),
            cycle_max_allowance: Some(outcome.after.cycle_max_allowance),
            max_rank: Some(outcome.after.max_rank),
            ..entries.finish()
        };
        let after = Account {
            plan: plan.name.clone(),
            balance,
            cycle_max_allowance: outcome.after.cycle_max_allowance,
            max_rank: outcome.after.max_rank,
            ..account.clone()
        };
        let body = to_json(&Changed {
            account: after.view(),
            upgrade_bonus: referrer.as_ref().map(|_| BonusView {
                referrer_bonus: outcome.bonus,
                plans: outcome.bonus_plans.iter().map(|p| p.name.as_str()).collect(),
            }),
        })?;
        let record = IdemRecord { request_hash: hash.clone(), status: 200, body: body.clone(), at: format_time(at) };
        let mut tx = app.store.tx(&key, &record);
        // Even a change that moves no credits bumps the version, so racing
        // changes of one user are serialised and a bonus is paid once.
        tx.change_account(&account, &change);
        let mut emails = Vec::new();
        if let Some(referrer) = &referrer {
            let mut entries = Entries::on(referrer, format_time(at));
            entries
                .push(EntryKind::UpgradeBonus, Delta::bonus(outcome.bonus), &reference)
                .map_err(|_| ApiError::internal())?;
            let referrer_balance = entries.balance();
            tx.change_account(referrer, &Change { rewarded_credits: outcome.bonus, ..entries.finish() });
            let email = referral_upgrade_bonus(
                (user.as_str(), change_id.as_str()),
                &referrer.email,
                outcome.bonus,
                &plan.name,
                referrer_balance,
                at,
            );
            tx.queue_email(&email);
            emails.push(email);
        }
        match app.store.commit(tx).await {
            Ok(()) => {
                if let Some(mailer) = &app.mailer {
                    deliver(&app.store, mailer, &emails, at).await;
                }
                return Ok(Reply::Ok(body));
            }
            Err(err) => {
                if let Some(answer) = after_failed_commit(err, &app.store, &key, &hash, "change_id", &mut retry).await?
                {
                    return Ok(answer);
                }
            }
        }
    }
}
