//! The plan catalogue: allowances, purchase rates and referral bonuses.
//!
//! The defaults are the contract's table; `CREDITS_CONFIG` may replace them
//! (see [`Catalogue::from_json`]). A catalogue that passes validation cannot
//! make any credit computation overflow.

use crate::letters::EmailSettings;
use serde::Deserialize;
use std::fmt;

/// Largest allowance, bonus or rate a catalogue may hold; keeps every
/// product of two configured numbers inside an `i64`.
const MAX_CONFIGURED: i64 = 1_000_000_000;

/// One plan of the catalogue.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The plan's name, as callers send it (`"pro"`).
    pub name: String,
    /// Order of plans: a higher rank is an upgrade.
    pub rank: u32,
    /// Credits granted into the plan bucket each cycle.
    pub monthly_allowance: i64,
    /// Flexible credits per US dollar; `None` where purchases are not allowed.
    #[serde(default)]
    pub rate_per_dollar: Option<i64>,
    /// What a referrer earns when a referred user first reaches this plan.
    #[serde(default)]
    pub upgrade_bonus: i64,
    /// Balances (absolute credits) whose crossing downward sends a
    /// low-balance email; default: 10% of the allowance, and 0.
    #[serde(default)]
    pub low_balance_thresholds: Option<Vec<i64>>,
}

impl Plan {
    /// The plan's low-balance thresholds, highest first, without repeats.
    pub fn low_balance_thresholds(&self) -> Vec<i64> {
        let mut thresholds =
            self.low_balance_thresholds.clone().unwrap_or_else(|| vec![self.monthly_allowance / 10, 0]);
        thresholds.sort_unstable_by(|a, b| b.cmp(a));
        thresholds.dedup();
        thresholds
    }
}

/// The plan catalogue and the referral numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Catalogue {
    plans: Vec<Plan>,
    default_plan: String,
    /// Credits a referrer earns for each rewarded signup.
    pub referral_signup_bonus: i64,
    /// Rewarded signups per referrer per billing cycle of the referrer's.
    pub referral_cap_per_cycle: i64,
}

/// A configuration that cannot be used; the message says what to fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid CREDITS_CONFIG: {0}")]
pub struct CatalogueError(pub String);

/// `CREDITS_CONFIG` as written: every key optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Overrides {
    plans: Option<Vec<Plan>>,
    default_plan: Option<String>,
    referral_signup_bonus: Option<i64>,
    referral_cap_per_cycle: Option<i64>,
    email: Option<EmailSettings>,
}

impl Default for Catalogue {
    fn default() -> Self {
        let plan = |name: &str, rank, monthly_allowance, rate_per_dollar, upgrade_bonus| Plan {
            name: name.to_owned(),
            rank,
            monthly_allowance,
            rate_per_dollar,
            upgrade_bonus,
            low_balance_thresholds: None,
        };
        Catalogue {
            plans: vec![
                plan("free", 0, 1_000, None, 0),
                plan("basic", 1, 2_000, None, 500),
                plan("pro", 2, 5_000, Some(300), 1_000),
                plan("business", 3, 20_000, Some(200), 2_500),
            ],
            default_plan: "free".to_owned(),
            referral_signup_bonus: 250,
            referral_cap_per_cycle: 25,
        }
    }
}

impl Catalogue {
    /// The defaults with the overrides of a `CREDITS_CONFIG` document applied:
    /// `plans` replaces the whole list; `default_plan`, `referral_signup_bonus`
    /// and `referral_cap_per_cycle` replace one number each.
    pub fn from_json(text: &str) -> Result<Catalogue, CatalogueError> {
        Catalogue::from_document(text).map(|(catalogue, _)| catalogue)
    }

    /// A whole `CREDITS_CONFIG` document: the catalogue (as
    /// [`Catalogue::from_json`]) and its `email` settings.
    pub fn from_document(text: &str) -> Result<(Catalogue, EmailSettings), CatalogueError> {
        let mut json = serde_json::Deserializer::from_str(text);
        let overrides: Overrides = serde_path_to_error::deserialize(&mut json).map_err(|e| {
            let path = e.path().to_string();
            CatalogueError(if path == "." { e.into_inner().to_string() } else { format!("{path}: {}", e.into_inner()) })
        })?;
        let mut catalogue = Catalogue::default();
        if let Some(mut plans) = overrides.plans {
            plans.sort_by_key(|p| p.rank);
            catalogue.plans = plans;
        }
        if let Some(name) = overrides.default_plan {
            catalogue.default_plan = name;
        }
        if let Some(bonus) = overrides.referral_signup_bonus {
            catalogue.referral_signup_bonus = bonus;
        }
        if let Some(cap) = overrides.referral_cap_per_cycle {
            catalogue.referral_cap_per_cycle = cap;
        }
        catalogue.validate()?;
        Ok((catalogue, overrides.email.unwrap_or_default()))
    }

    fn validate(&self) -> Result<(), CatalogueError> {
        let fail = |msg: String| Err(CatalogueError(msg));
        if self.plans.is_empty() || self.plans.len() > 32 {
            return fail("plans must hold 1 to 32 plans".into());
        }
        for (i, plan) in self.plans.iter().enumerate() {
            let name_ok = (1..=32).contains(&plan.name.len())
                && plan.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
            if !name_ok {
                return fail(format!("plan name {:?} must be 1-32 characters of a-z 0-9 _ -", plan.name));
            }
            if self.plans[..i].iter().any(|p| p.name == plan.name) {
                return fail(format!("plan {:?} appears twice", plan.name));
            }
            if self.plans[..i].iter().any(|p| p.rank == plan.rank) {
                return fail(format!("plan {:?} shares its rank {} with another plan", plan.name, plan.rank));
            }
            if !(0..=MAX_CONFIGURED).contains(&plan.monthly_allowance) {
                return fail(format!("plan {:?}: monthly_allowance must be 0..={MAX_CONFIGURED}", plan.name));
            }
            if !(0..=MAX_CONFIGURED).contains(&plan.upgrade_bonus) {
                return fail(format!("plan {:?}: upgrade_bonus must be 0..={MAX_CONFIGURED}", plan.name));
            }
            if plan.rate_per_dollar.is_some_and(|r| !(1..=1_000_000).contains(&r)) {
                return fail(format!("plan {:?}: rate_per_dollar must be null or 1..=1000000", plan.name));
            }
            if let Some(thresholds) = &plan.low_balance_thresholds {
                if thresholds.len() > 5 || thresholds.iter().any(|t| !(0..=MAX_CONFIGURED).contains(t)) {
                    return fail(format!(
                        "plan {:?}: low_balance_thresholds must be at most 5 numbers of 0..={MAX_CONFIGURED}",
                        plan.name
                    ));
                }
            }
        }
        if self.plan(&self.default_plan).is_none() {
            return fail(format!("default_plan {:?} is not in the catalogue", self.default_plan));
        }
        if !(0..=MAX_CONFIGURED).contains(&self.referral_signup_bonus) {
            return fail(format!("referral_signup_bonus must be 0..={MAX_CONFIGURED}"));
        }
        if !(0..=1_000_000).contains(&self.referral_cap_per_cycle) {
            return fail("referral_cap_per_cycle must be 0..=1000000".into());
        }
        Ok(())
    }

    /// The plan with this name, if the catalogue has it.
    pub fn plan(&self, name: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.name == name)
    }

    /// The plan a signup gets when it names none.
    pub fn default_plan(&self) -> &str {
        &self.default_plan
    }

    /// Every plan, lowest rank first.
    pub fn plans(&self) -> &[Plan] {
        &self.plans
    }

    /// The plan names, for error messages.
    pub fn plan_names(&self) -> PlanNames<'_> {
        PlanNames(&self.plans)
    }

    /// Credits bought with `amount_cents` on `plan`: `amount_cents × rate ÷ 100`,
    /// rounded down. `None` where the plan has no purchase rate.
    pub fn purchase_credits(&self, plan: &Plan, amount_cents: i64) -> Option<i64> {
        let rate = plan.rate_per_dollar?;
        amount_cents.checked_mul(rate).map(|c| c / 100)
    }

    /// The plans whose upgrade bonus a referrer earns when a referred user whose
    /// highest rank so far is `highest_rank` moves to `new_plan`: every plan
    /// above `highest_rank` up to `new_plan`'s rank. Empty for a downgrade, a
    /// sideways move or a re-upgrade to a rank already held.
    pub fn upgrade_bonus_plans(&self, highest_rank: u32, new_plan: &Plan) -> Vec<&Plan> {
        self.plans.iter().filter(|p| p.rank > highest_rank && p.rank <= new_plan.rank).collect()
    }
}

/// Where an account stands, for a plan change: what it has now and has had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanStanding {
    /// Rank of the current plan.
    pub rank: u32,
    /// Largest allowance granted in the current cycle.
    pub cycle_max_allowance: i64,
    /// Highest rank ever held.
    pub max_rank: u32,
}

/// What a plan change does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanChange<'a> {
    /// Credits added to the plan bucket now: the new allowance minus the
    /// largest already granted this cycle, never below zero; zero for a
    /// downgrade (the next cycle grants the new plan's allowance).
    pub top_up: i64,
    /// Plans whose upgrade bonus the referrer earns, lowest first.
    pub bonus_plans: Vec<&'a Plan>,
    /// Their bonuses together.
    pub bonus: i64,
    /// The standing afterwards.
    pub after: PlanStanding,
}

impl Catalogue {
    /// The rule for moving an account from `standing` to `new_plan`. The
    /// bonus plans are those above the highest rank ever held, up to the new
    /// plan: a referrer's total from one user depends only on the highest
    /// plan that user reaches, whatever the path.
    pub fn plan_change<'a>(&'a self, standing: PlanStanding, new_plan: &'a Plan) -> PlanChange<'a> {
        let upgrade = new_plan.rank > standing.rank;
        let top_up = if upgrade { (new_plan.monthly_allowance - standing.cycle_max_allowance).max(0) } else { 0 };
        let bonus_plans = self.upgrade_bonus_plans(standing.max_rank, new_plan);
        let bonus = bonus_plans.iter().map(|p| p.upgrade_bonus).sum();
        PlanChange {
            top_up,
            bonus_plans,
            bonus,
            after: PlanStanding {
                rank: new_plan.rank,
                cycle_max_allowance: if upgrade {
                    standing.cycle_max_allowance.max(new_plan.monthly_allowance)
                } else {
                    standing.cycle_max_allowance
                },
                max_rank: standing.max_rank.max(new_plan.rank),
            },
        }
    }
}

/// Displays the catalogue's plan names as `free, basic, pro`.
pub struct PlanNames<'a>(&'a [Plan]);

impl fmt::Display for PlanNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, plan) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(&plan.name)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan<'a>(c: &'a Catalogue, name: &str) -> &'a Plan {
        c.plan(name).expect("plan exists")
    }

    #[test]
    fn default_rates_give_three_and_two_credits_per_cent() {
        let c = Catalogue::default();
        assert_eq!(c.purchase_credits(plan(&c, "pro"), 1_000), Some(3_000));
        assert_eq!(c.purchase_credits(plan(&c, "business"), 1_000), Some(2_000));
        assert_eq!(c.purchase_credits(plan(&c, "business"), 1_000_000), Some(2_000_000));
        assert_eq!(c.purchase_credits(plan(&c, "free"), 1_000), None);
        assert_eq!(c.purchase_credits(plan(&c, "basic"), 1_000), None);
    }

    #[test]
    fn purchases_round_down_to_whole_credits() {
        let c = Catalogue::from_json(
            r#"{"plans":[{"name":"free","rank":0,"monthly_allowance":10,"rate_per_dollar":150}]}"#,
        )
        .expect("valid config");
        assert_eq!(c.purchase_credits(plan(&c, "free"), 101), Some(151));
    }

    #[test]
    fn overrides_replace_only_what_they_name() {
        let c = Catalogue::from_json(r#"{"referral_signup_bonus": 100}"#).expect("valid config");
        assert_eq!(c.referral_signup_bonus, 100);
        assert_eq!(c.referral_cap_per_cycle, 25);
        assert_eq!(c.plans().len(), 4);
        assert_eq!(Catalogue::from_json("{}").expect("empty config"), Catalogue::default());
    }

    #[test]
    fn plans_are_ordered_by_rank_whatever_the_order_given() {
        let c = Catalogue::from_json(
            r#"{"plans":[{"name":"top","rank":5,"monthly_allowance":9},{"name":"free","rank":0,"monthly_allowance":1}]}"#,
        )
        .expect("valid config");
        assert_eq!(c.plan_names().to_string(), "free, top");
    }

    #[test]
    fn low_balance_thresholds_default_to_a_tenth_and_zero() {
        let c = Catalogue::default();
        assert_eq!(plan(&c, "pro").low_balance_thresholds(), [500, 0]);
        let c = Catalogue::from_json(
            r#"{"plans":[{"name":"free","rank":0,"monthly_allowance":1000,"low_balance_thresholds":[0,300,300,50]}]}"#,
        )
        .expect("valid");
        assert_eq!(plan(&c, "free").low_balance_thresholds(), [300, 50, 0]);
    }

    #[test]
    fn invalid_configs_are_refused_with_a_reason() {
        let cases = [
            (r#"{"plans": []}"#, "1 to 32 plans"),
            (
                r#"{"plans":[{"name":"free","rank":0,"monthly_allowance":1},{"name":"free","rank":1,"monthly_allowance":1}]}"#,
                "twice",
            ),
            (
                r#"{"plans":[{"name":"free","rank":0,"monthly_allowance":1},{"name":"b","rank":0,"monthly_allowance":1}]}"#,
                "rank",
            ),
            (r#"{"plans":[{"name":"free","rank":0,"monthly_allowance":-1}]}"#, "monthly_allowance"),
            (r#"{"plans":[{"name":"Free","rank":0,"monthly_allowance":1}]}"#, "plan name"),
            (r#"{"plans":[{"name":"free","rank":0,"monthly_allowance":1,"rate_per_dollar":0}]}"#, "rate_per_dollar"),
            (r#"{"plans":[{"name":"x","rank":0,"monthly_allowance":1}]}"#, "default_plan"),
            (r#"{"referral_cap_per_cycle": -1}"#, "referral_cap_per_cycle"),
            (r#"{"referral_signup_bonus": 1.5}"#, "referral_signup_bonus: invalid type"),
            (r#"{"plans":[{"name":"free","rank":0}]}"#, "plans[0]: missing field `monthly_allowance`"),
            (r#"{"referal_signup_bonus": 1}"#, "unknown field"),
            (
                r#"{"plans":[{"name":"free","rank":0,"monthly_allowance":1,"low_balance_thresholds":[-1]}]}"#,
                "low_balance_thresholds",
            ),
            (r#"{"email": {"product": "x"}}"#, "email.product: unknown field `product`"),
            ("not json", "expected"),
        ];
        for (json, needle) in cases {
            let err = Catalogue::from_json(json).expect_err(json);
            assert!(err.to_string().contains(needle), "{json}: {err}");
        }
    }

    fn standing(c: &Catalogue, name: &str) -> PlanStanding {
        let p = plan(c, name);
        PlanStanding { rank: p.rank, cycle_max_allowance: p.monthly_allowance, max_rank: p.rank }
    }

    #[test]
    fn the_contract_examples_of_plan_changes() {
        let c = Catalogue::default();
        let free_to_pro = c.plan_change(standing(&c, "free"), plan(&c, "pro"));
        assert_eq!((free_to_pro.top_up, free_to_pro.bonus), (4_000, 1_500));
        let to_free = c.plan_change(free_to_pro.after, plan(&c, "free"));
        assert_eq!((to_free.top_up, to_free.bonus), (0, 0));
        let back_to_pro = c.plan_change(to_free.after, plan(&c, "pro"));
        assert_eq!((back_to_pro.top_up, back_to_pro.bonus), (0, 0), "pro→free→pro adds nothing the second time");
        let to_business = c.plan_change(back_to_pro.after, plan(&c, "business"));
        assert_eq!((to_business.top_up, to_business.bonus), (15_000, 2_500));
        let direct = c.plan_change(standing(&c, "free"), plan(&c, "business"));
        assert_eq!(direct.bonus, 500 + 1_000 + 2_500);
    }

    #[test]
    fn upgrade_bonus_plans_are_those_above_the_highest_rank_held() {
        let c = Catalogue::default();
        let names = |highest, to| -> Vec<String> {
            c.upgrade_bonus_plans(highest, plan(&c, to)).iter().map(|p| p.name.clone()).collect()
        };
        assert_eq!(names(0, "business"), ["basic", "pro", "business"]);
        assert_eq!(names(2, "business"), ["business"]);
        assert!(names(2, "pro").is_empty());
        assert!(names(3, "basic").is_empty());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// For any sequence of plan changes, the referrer is paid the bonuses
        /// of exactly the plans above the starting rank up to the highest
        /// rank reached, each once; the plan bucket's top-ups never exceed
        /// the largest allowance reached minus the starting one.
        #[test]
        fn bonuses_depend_only_on_the_highest_plan_reached(start in 0usize..4, path in proptest::collection::vec(0usize..4, 0..12)) {
            let c = Catalogue::default();
            let plans = c.plans();
            let first = &plans[start];
            let mut standing = PlanStanding { rank: first.rank, cycle_max_allowance: first.monthly_allowance, max_rank: first.rank };
            let mut paid = Vec::new();
            let mut bonus = 0;
            let mut top_ups = 0;
            for &i in &path {
                let change = c.plan_change(standing, &plans[i]);
                prop_assert!(change.top_up >= 0);
                prop_assert_eq!(change.bonus, change.bonus_plans.iter().map(|p| p.upgrade_bonus).sum::<i64>());
                paid.extend(change.bonus_plans.iter().map(|p| p.name.clone()));
                bonus += change.bonus;
                top_ups += change.top_up;
                standing = change.after;
            }
            let highest = path.iter().map(|&i| plans[i].rank).chain([first.rank]).max().unwrap_or(0);
            let expected: Vec<String> = plans.iter().filter(|p| p.rank > first.rank && p.rank <= highest).map(|p| p.name.clone()).collect();
            prop_assert_eq!(&paid, &expected, "each plan paid once, in order");
            prop_assert_eq!(bonus, plans.iter().filter(|p| p.rank > first.rank && p.rank <= highest).map(|p| p.upgrade_bonus).sum::<i64>());
            let reached = plans.iter().filter(|p| p.rank <= highest).map(|p| p.monthly_allowance).max().unwrap_or(0);
            prop_assert_eq!(top_ups, reached - first.monthly_allowance);
        }
    }
}
