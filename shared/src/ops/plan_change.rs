//! `POST /v1/plan-changes`: the new plan, its top-up, and the referrer's
//! upgrade bonus.

use super::command::{Command, Ctx, Effect, Snapshot};
use super::execute::execute;
use crate::account::{Account, AccountView, Entries};
use crate::balance::Bucket;
use crate::email::{referral_upgrade_bonus, BonusPaid};
use crate::http::{record_user, to_json, ApiError, Reply};
use crate::idempotency::{Canonical, Route};
use crate::ledger::EntryKind;
use crate::plans::{Plan, PlanChange, PlanStanding};
use crate::store::Write;
use crate::types::{Key, UserId};
use crate::App;
use serde::{Deserialize, Serialize};

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanChangeRequest {
    user_id: String,
    change_id: String,
    plan: String,
}

/// A valid plan change (the plan is looked up in the catalogue when the
/// change is decided).
#[derive(Debug)]
pub struct ChangePlan {
    user: UserId,
    change_id: Key,
    plan: String,
}

impl ChangePlan {
    /// Validates a request; 400 naming the field. The plan is looked up in
    /// the catalogue when the change is decided ([`Ctx::requested_plan`]).
    pub fn parse(request: PlanChangeRequest) -> Result<ChangePlan, ApiError> {
        let user = UserId::parse(&request.user_id).map_err(|e| ApiError::field("user_id", e))?;
        record_user(&user);
        let change_id = Key::parse(&request.change_id).map_err(|e| ApiError::field("change_id", e))?;
        Ok(ChangePlan { user, change_id, plan: request.plan })
    }

    /// The same change (user, key) to another plan.
    pub(crate) fn to_plan(&self, plan: &str) -> ChangePlan {
        ChangePlan { user: self.user.clone(), change_id: self.change_id.clone(), plan: plan.to_owned() }
    }

    /// The rule applied to this account: where it stands, where it goes.
    fn outcome<'c>(&self, account: &Account, ctx: &Ctx<'c>) -> Result<(&'c Plan, PlanChange<'c>), ApiError> {
        let plan = ctx.requested_plan(&self.plan)?;
        let current = account.current_plan(ctx.catalogue())?;
        let standing = PlanStanding {
            rank: current.rank,
            cycle_max_allowance: account.cycle_max_allowance,
            max_rank: account.max_rank,
        };
        Ok((plan, ctx.catalogue().plan_change(standing, plan)))
    }
}

/// The referrer to pay, when a bonus is due and the referral stands.
fn referrer_due<'a>(account: &'a Account, outcome: &PlanChange<'_>) -> Option<&'a str> {
    account.referrer_id.as_deref().filter(|_| outcome.bonus > 0 && !account.referral_revoked)
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

impl Command for ChangePlan {
    const ROUTE: Route = Route::PlanChange;

    fn user(&self) -> &UserId {
        &self.user
    }

    fn key(&self) -> &str {
        self.change_id.as_str()
    }

    fn canonical(&self) -> Canonical {
        Canonical::new(Route::PlanChange)
            .text("user_id", self.user.as_str())
            .text("change_id", self.change_id.as_str())
            .text("plan", &self.plan)
    }

    /// The referrer, only when a bonus is due: the first time the user
    /// reaches a rank, so rarely.
    fn related(&self, snapshot: &Snapshot, ctx: &Ctx<'_>) -> Result<Vec<String>, ApiError> {
        let account = snapshot.account()?;
        let (_, outcome) = self.outcome(account, ctx)?;
        Ok(referrer_due(account, &outcome).map(str::to_owned).into_iter().collect())
    }

    fn decide(&self, snapshot: &Snapshot, ctx: &Ctx<'_>) -> Result<Effect, ApiError> {
        let account = snapshot.account()?;
        let (plan, outcome) = self.outcome(account, ctx)?;
        let referrer = referrer_due(account, &outcome).and_then(|id| snapshot.related(id));

        let mut entries = Entries::on(account, ctx.now);
        if outcome.top_up > 0 {
            entries.credit(EntryKind::PlanChange, Bucket::Plan, outcome.top_up, self.change_id.as_str())?;
        }
        let after = Account {
            plan: plan.name.clone(),
            balance: entries.balance(),
            cycle_max_allowance: outcome.after.cycle_max_allowance,
            max_rank: outcome.after.max_rank,
            ..account.clone()
        };
        // Even a change that moves no credits bumps the version, so racing
        // changes of one user are serialised and a bonus is paid once.
        let mut change = entries.finish();
        change.plan = Some(plan.name.clone());
        change.cycle_max_allowance = Some(outcome.after.cycle_max_allowance);
        change.max_rank = Some(outcome.after.max_rank);
        if referrer.is_some() {
            change.referral_paid = outcome.bonus;
        }
        let mut writes = vec![Write::Change(change)];
        let mut emails = Vec::new();
        if let Some(referrer) = referrer {
            let reference = format!("plan-change:{}:{}", self.user, self.change_id.as_str());
            let mut entries = Entries::on(referrer, ctx.now);
            let credited = entries.credit(EntryKind::UpgradeBonus, Bucket::Bonus, outcome.bonus, &reference)?;
            let balance = entries.balance();
            let mut change = entries.finish();
            change.rewarded_credits = outcome.bonus;
            writes.push(Write::Change(change));
            let paid = BonusPaid {
                referrer: &referrer.user_id,
                referred: self.user.as_str(),
                bonus: outcome.bonus,
                debt_repaid: -credited.debt,
                balance,
            };
            let change_id = self.change_id.as_str();
            emails.push(referral_upgrade_bonus(ctx.letters(), &paid, change_id, &plan.name, &referrer.email, ctx.now));
        }
        let body = to_json(&Changed {
            account: after.view(),
            upgrade_bonus: referrer.map(|_| BonusView {
                referrer_bonus: outcome.bonus,
                plans: outcome.bonus_plans.iter().map(|p| p.name.as_str()).collect(),
            }),
        })?;
        Ok(Effect { reply: Reply::Ok(body), writes, emails })
    }
}

/// Handles a plan change.
pub async fn change_plan(app: &App, request: PlanChangeRequest) -> Result<Reply, ApiError> {
    execute(app, &ChangePlan::parse(request)?).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::fixtures::account;
    use crate::balance::{Balance, Delta};

    fn command(plan: &str) -> ChangePlan {
        let body = serde_json::json!({"user_id": "friend", "change_id": "c-1", "plan": plan});
        ChangePlan::parse(serde_json::from_value(body).expect("body")).expect("valid")
    }

    fn snapshot(plan: &str, referred: bool) -> Snapshot {
        let mut friend = account("friend", plan, "2026-01-31T10:00:00Z", Balance { plan: 1_000, ..Balance::default() });
        let referrer =
            account("referrer", "free", "2026-01-01T00:00:00Z", Balance { plan: 1_000, ..Balance::default() });
        if referred {
            friend.referrer_id = Some("referrer".into());
        }
        Snapshot { account: Some(friend), related: vec![referrer], ..Snapshot::default() }
    }

    fn run(plan: &str, snap: &Snapshot) -> (Vec<String>, Effect) {
        let config = crate::config::Config::for_tests();
        let ctx = Ctx { config: &config, now: crate::cycle::now(), fresh_code: "ZZZZ2222" };
        let cmd = command(plan);
        (cmd.related(snap, &ctx).expect("related"), cmd.decide(snap, &ctx).expect("effect"))
    }

    #[test]
    fn a_referred_upgrade_tops_up_and_pays_every_plan_above_the_highest_held() {
        let (related, effect) = run("pro", &snapshot("free", true));
        assert_eq!(related, ["referrer"]);
        let body: serde_json::Value = serde_json::from_str(effect.reply.body()).expect("json");
        assert_eq!(body["account"]["balance"]["plan"], 5_000);
        assert_eq!(body["upgrade_bonus"], serde_json::json!({"referrer_bonus": 1500, "plans": ["basic", "pro"]}));
        let [Write::Change(own), Write::Change(referrer)] = effect.writes.as_slice() else {
            panic!("{:?}", effect.writes)
        };
        assert_eq!((own.plan.as_deref(), own.delta(), own.referral_paid), (Some("pro"), Delta::plan(4_000), 1_500));
        assert_eq!(
            (referrer.user_id.as_str(), referrer.delta(), referrer.rewarded_credits),
            ("referrer", Delta::to(Bucket::Bonus, 1_500), 1_500)
        );
        assert_eq!(referrer.entries[0].reference, "plan-change:friend:c-1");
        assert_eq!(effect.emails.len(), 1);
        assert_eq!(effect.emails[0].to, "referrer@example.com");
    }

    #[test]
    fn a_revoked_referral_pays_nothing_more() {
        let mut snap = snapshot("free", true);
        if let Some(a) = snap.account.as_mut() {
            a.referral_revoked = true;
        }
        let (related, effect) = run("business", &snap);
        assert!(related.is_empty(), "no referrer read");
        let body: serde_json::Value = serde_json::from_str(effect.reply.body()).expect("json");
        assert!(body["upgrade_bonus"].is_null());
        assert_eq!(effect.writes.len(), 1);
        assert!(effect.emails.is_empty());
    }

    #[test]
    fn a_downgrade_moves_no_credits_but_still_writes_the_account() {
        let (related, effect) = run("free", &snapshot("pro", true));
        assert!(related.is_empty(), "no bonus due, no referrer read");
        let [Write::Change(own)] = effect.writes.as_slice() else { panic!("{:?}", effect.writes) };
        assert!(own.entries.is_empty());
        assert_eq!(own.plan.as_deref(), Some("free"));
        assert!(effect.emails.is_empty());
    }

    #[test]
    fn an_unreferred_upgrade_pays_no_one() {
        let (related, effect) = run("business", &snapshot("basic", false));
        assert!(related.is_empty());
        let body: serde_json::Value = serde_json::from_str(effect.reply.body()).expect("json");
        assert!(body["upgrade_bonus"].is_null());
        assert_eq!(effect.writes.len(), 1);
    }

    #[test]
    fn a_referrer_that_no_longer_exists_is_not_paid() {
        let mut snap = snapshot("free", true);
        snap.related.clear();
        let (_, effect) = run("pro", &snap);
        let body: serde_json::Value = serde_json::from_str(effect.reply.body()).expect("json");
        assert!(body["upgrade_bonus"].is_null());
        assert_eq!(effect.writes.len(), 1);
    }

    #[test]
    fn a_current_plan_the_catalogue_lost_is_an_error_not_rank_zero() {
        let config = crate::config::Config::for_tests();
        let ctx = Ctx { config: &config, now: crate::cycle::now(), fresh_code: "ZZZZ2222" };
        let err = command("pro").decide(&snapshot("legacy", true), &ctx).expect_err("unknown plan");
        assert_eq!(err.status, 500);
        assert!(err.message.contains("\"legacy\""), "{}", err.message);
    }

    #[test]
    fn an_unknown_target_plan_is_400_naming_the_choices() {
        let config = crate::config::Config::for_tests();
        let ctx = Ctx { config: &config, now: crate::cycle::now(), fresh_code: "ZZZZ2222" };
        let err = command("platinum").related(&snapshot("free", true), &ctx).expect_err("unknown plan");
        assert_eq!(err.status, 400);
        assert!(err.message.contains("free, basic, pro, business"), "{}", err.message);
    }

    #[test]
    fn a_top_up_that_would_overflow_is_a_500_that_says_why() {
        let mut snap = snapshot("free", false);
        if let Some(a) = snap.account.as_mut() {
            a.balance.plan = i64::MAX - 1;
        }
        let config = crate::config::Config::for_tests();
        let ctx = Ctx { config: &config, now: crate::cycle::now(), fresh_code: "ZZZZ2222" };
        let err = command("pro").decide(&snap, &ctx).expect_err("overflow");
        assert_eq!(err.status, 500);
        assert!(err.detail.is_some_and(|d| d.contains("plan_change")));
    }
}
