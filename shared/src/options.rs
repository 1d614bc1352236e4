//! "How can I get more credits?", answered for one account: buying (at the
//! plan's rate, or on which plans), referring (the link, the bonus, what is
//! left of this cycle's cap, the upgrade bonuses invitees earn), upgrading
//! (what each higher plan would add today). A pure function of the account
//! and the catalogue; the low-balance email says the same.

use crate::account::{Account, UnknownPlan};
use crate::balance::Balance;
use crate::cycle::{serialize_time, Time};
use crate::plans::Catalogue;
use serde::Serialize;

/// The answer, as `GET /v1/me/credit-options` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CreditOptions {
    /// The balance now.
    pub balance: Balance,
    /// The current plan.
    pub plan: CurrentPlan,
    /// Buying flexible credits.
    pub buy: Buy,
    /// Referring friends.
    pub refer: Refer,
    /// Every plan ranked above the current one, lowest first.
    pub upgrade: Vec<Upgrade>,
}

/// The current plan and cycle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CurrentPlan {
    /// Its name.
    pub name: String,
    /// Credits granted each cycle.
    pub monthly_allowance: i64,
    /// When the cycle ends and the allowance is granted again.
    #[serde(serialize_with = "serialize_time")]
    pub cycle_end: Time,
}

/// Whether and how the user can buy credits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Buy {
    /// Whether the current plan can buy.
    pub eligible: bool,
    /// Credits per dollar on the current plan.
    pub rate_per_dollar: Option<i64>,
    /// Every plan that can buy.
    pub plans_that_can_buy: Vec<String>,
}

/// What referring friends brings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refer {
    /// The user's referral link.
    pub link: String,
    /// Credits per rewarded signup.
    pub signup_bonus: i64,
    /// Signups that will still be rewarded this cycle.
    pub rewarded_signups_left_this_cycle: i64,
    /// What the user earns when an invitee first reaches each plan.
    pub upgrade_bonuses: Vec<PlanBonus>,
}

/// An upgrade bonus.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlanBonus {
    /// The plan an invitee reaches.
    pub plan: String,
    /// What the referrer earns for it.
    pub bonus: i64,
}

/// A higher plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Upgrade {
    /// Its name.
    pub plan: String,
    /// Its allowance per cycle.
    pub monthly_allowance: i64,
    /// Its purchase rate, if it can buy.
    pub rate_per_dollar: Option<i64>,
    /// What upgrading today adds to the plan bucket (the top-up rule: the
    /// allowance minus the largest already granted this cycle).
    pub credits_now: i64,
}

/// The options of `account` in `catalogue`; its referral link is
/// `base_url?ref=CODE`.
pub fn credit_options(account: &Account, catalogue: &Catalogue, base_url: &str) -> Result<CreditOptions, UnknownPlan> {
    let current = account.current_plan(catalogue)?;
    let plans = catalogue.plans();
    Ok(CreditOptions {
        balance: account.balance,
        plan: CurrentPlan {
            name: current.name.clone(),
            monthly_allowance: current.monthly_allowance,
            cycle_end: account.cycle.end,
        },
        buy: Buy {
            eligible: current.rate_per_dollar.is_some(),
            rate_per_dollar: current.rate_per_dollar,
            plans_that_can_buy: plans.iter().filter(|p| p.rate_per_dollar.is_some()).map(|p| p.name.clone()).collect(),
        },
        refer: Refer {
            link: format!("{base_url}?ref={}", account.referral_code),
            signup_bonus: catalogue.referral_signup_bonus,
            rewarded_signups_left_this_cycle: (catalogue.referral_cap_per_cycle - account.cycle_referrals).max(0),
            upgrade_bonuses: plans
                .iter()
                .filter(|p| p.upgrade_bonus > 0)
                .map(|p| PlanBonus { plan: p.name.clone(), bonus: p.upgrade_bonus })
                .collect(),
        },
        upgrade: plans
            .iter()
            .filter(|p| p.rank > current.rank)
            .map(|p| {
                // The top-up, less what of it would repay a debt first.
                let top_up = (p.monthly_allowance - account.cycle_max_allowance).max(0);
                Upgrade {
                    plan: p.name.clone(),
                    monthly_allowance: p.monthly_allowance,
                    rate_per_dollar: p.rate_per_dollar,
                    credits_now: top_up - top_up.min(account.balance.debt.max(0)),
                }
            })
            .collect(),
    })
}

impl CreditOptions {
    /// The upgrade that adds the most credits today (on a tie, the one with
    /// the largest allowance), if there is a higher plan.
    pub fn best_upgrade(&self) -> Option<&Upgrade> {
        self.upgrade.iter().max_by_key(|u| (u.credits_now, u.monthly_allowance))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::fixtures::account;
    use crate::plans::PlanStanding;

    fn options(plan: &str) -> CreditOptions {
        let a = account("u", plan, "2026-01-31T10:00:00Z", Balance { plan: 42, ..Balance::default() });
        credit_options(&a, &Catalogue::default(), "https://app.example.com/signup").expect("known plan")
    }

    fn names(upgrades: &[Upgrade]) -> Vec<(&str, i64)> {
        upgrades.iter().map(|u| (u.plan.as_str(), u.credits_now)).collect()
    }

    #[test]
    fn every_plan_gets_its_own_answer() {
        let free = options("free");
        assert_eq!((free.buy.eligible, free.buy.rate_per_dollar), (false, None));
        assert_eq!(free.buy.plans_that_can_buy, ["pro", "business"]);
        assert_eq!(names(&free.upgrade), [("basic", 1_000), ("pro", 4_000), ("business", 19_000)]);
        assert_eq!(free.best_upgrade().map(|u| u.plan.as_str()), Some("business"));
        assert_eq!(free.refer.link, "https://app.example.com/signup?ref=ABCD2345");
        assert_eq!((free.refer.signup_bonus, free.refer.rewarded_signups_left_this_cycle), (250, 25));
        let bonuses: Vec<(&str, i64)> = free.refer.upgrade_bonuses.iter().map(|b| (b.plan.as_str(), b.bonus)).collect();
        assert_eq!(bonuses, [("basic", 500), ("pro", 1_000), ("business", 2_500)]);

        let basic = options("basic");
        assert!(!basic.buy.eligible);
        assert_eq!(names(&basic.upgrade), [("pro", 3_000), ("business", 18_000)]);
        let pro = options("pro");
        assert_eq!((pro.buy.eligible, pro.buy.rate_per_dollar), (true, Some(300)));
        assert_eq!(names(&pro.upgrade), [("business", 15_000)]);
        let business = options("business");
        assert_eq!((business.buy.rate_per_dollar, business.upgrade.len()), (Some(200), 0));
        assert!(business.best_upgrade().is_none());
        assert_eq!((business.plan.name.as_str(), business.plan.monthly_allowance), ("business", 20_000));
        assert_eq!(business.balance.plan, 42);
    }

    #[test]
    fn at_the_cap_no_rewarded_signups_are_left() {
        let mut a = account("u", "free", "2026-01-31T10:00:00Z", Balance::default());
        a.cycle_referrals = 30;
        let o = credit_options(&a, &Catalogue::default(), "https://x.example/s").expect("options");
        assert_eq!(o.refer.rewarded_signups_left_this_cycle, 0);
        a.cycle_referrals = 24;
        let o = credit_options(&a, &Catalogue::default(), "https://x.example/s").expect("options");
        assert_eq!(o.refer.rewarded_signups_left_this_cycle, 1);
    }

    #[test]
    fn after_a_downgrade_within_a_cycle_an_upgrade_adds_only_what_was_not_granted() {
        let c = Catalogue::default();
        let mut a = account("u", "business", "2026-01-31T10:00:00Z", Balance::default());
        // business → free within the cycle: 20,000 was granted already.
        let down = c.plan_change(
            PlanStanding { rank: 3, cycle_max_allowance: a.cycle_max_allowance, max_rank: 3 },
            c.plan("free").expect("free"),
        );
        a.plan = "free".into();
        a.cycle_max_allowance = down.after.cycle_max_allowance;
        let o = credit_options(&a, &c, "https://x.example/s").expect("options");
        assert_eq!(names(&o.upgrade), [("basic", 0), ("pro", 0), ("business", 0)]);
        assert_eq!(o.best_upgrade().map(|u| u.plan.as_str()), Some("business"), "the most every month on a tie");
        assert!(!o.buy.eligible);
    }

    #[test]
    fn an_upgrade_of_a_user_in_debt_adds_the_top_up_less_what_repays_the_debt() {
        let c = Catalogue::default();
        let a = account("u", "free", "2026-01-31T10:00:00Z", Balance { debt: 1_000, ..Balance::default() });
        let o = credit_options(&a, &c, "https://x.example/s").expect("options");
        // free's 1,000 was granted; pro tops up 4,000, of which 1,000 repays the debt.
        let pro = o.upgrade.iter().find(|u| u.plan == "pro").expect("pro");
        assert_eq!(pro.credits_now, 3_000);
        let deep = account("u", "free", "2026-01-31T10:00:00Z", Balance { debt: 50_000, ..Balance::default() });
        let o = credit_options(&deep, &c, "https://x.example/s").expect("options");
        assert!(o.upgrade.iter().all(|u| u.credits_now == 0));
    }

    #[test]
    fn an_account_on_a_plan_the_catalogue_lost_has_no_options() {
        let a = account("u", "legacy", "2026-01-31T10:00:00Z", Balance::default());
        assert!(credit_options(&a, &Catalogue::default(), "https://x.example/s").is_err());
    }
}
