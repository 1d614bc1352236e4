//! A balance's five figures, and the rules that move credits between them:
//! drawing a spend, repaying debt from a credit, taking credits back.

use serde::{Serialize, Serializer};

/// A balance. Three buckets hold spendable credits: plan (expires at cycle
/// end), bonus and flexible (carry over). `held` is reserved by open holds,
/// in no bucket; `debt` is owed after a correction the buckets could not
/// cover. No figure is ever negative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Balance {
    /// The monthly allowance's remainder.
    pub plan: i64,
    /// Referral rewards and bonus adjustments.
    pub bonus: i64,
    /// Purchased credits and flexible adjustments.
    pub flexible: i64,
    /// Reserved by open holds.
    pub held: i64,
    /// Owed; every later credit repays it first.
    pub debt: i64,
}

/// A change to each figure; a ledger entry's `delta`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Delta {
    /// Change to the plan bucket.
    pub plan: i64,
    /// Change to the bonus bucket.
    pub bonus: i64,
    /// Change to the flexible bucket.
    pub flexible: i64,
    /// Change to the held credits.
    pub held: i64,
    /// Change to the debt.
    pub debt: i64,
}

/// One of the three spendable buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    /// The monthly allowance.
    Plan,
    /// Referral rewards.
    Bonus,
    /// Purchased credits.
    Flexible,
}

/// Credits per bucket: what a spend draws, or a correction takes back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Parts {
    /// From the plan bucket.
    pub plan: i64,
    /// From the bonus bucket.
    pub bonus: i64,
    /// From the flexible bucket.
    pub flexible: i64,
}

impl Parts {
    /// All three together.
    pub fn total(&self) -> i64 {
        self.plan + self.bonus + self.flexible
    }

    fn get_mut(&mut self, bucket: Bucket) -> &mut i64 {
        match bucket {
            Bucket::Plan => &mut self.plan,
            Bucket::Bonus => &mut self.bonus,
            Bucket::Flexible => &mut self.flexible,
        }
    }
}

impl Balance {
    /// What can be spent or held now: the three buckets. Neither `held`
    /// nor `debt` counts.
    pub fn total(&self) -> i64 {
        self.plan.saturating_add(self.bonus).saturating_add(self.flexible)
    }

    /// One bucket's credits.
    pub fn bucket(&self, bucket: Bucket) -> i64 {
        match bucket {
            Bucket::Plan => self.plan,
            Bucket::Bonus => self.bonus,
            Bucket::Flexible => self.flexible,
        }
    }

    /// The balance after `delta`; `None` where a figure would go negative
    /// or overflow.
    pub fn apply(&self, delta: Delta) -> Option<Balance> {
        let after = Balance {
            plan: self.plan.checked_add(delta.plan)?,
            bonus: self.bonus.checked_add(delta.bonus)?,
            flexible: self.flexible.checked_add(delta.flexible)?,
            held: self.held.checked_add(delta.held)?,
            debt: self.debt.checked_add(delta.debt)?,
        };
        let figures = [after.plan, after.bonus, after.flexible, after.held, after.debt];
        (figures.iter().all(|f| *f >= 0) && after.plan.checked_add(after.bonus)?.checked_add(after.flexible).is_some())
            .then_some(after)
    }
}

impl Serialize for Balance {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View {
            plan: i64,
            bonus: i64,
            flexible: i64,
            held: i64,
            debt: i64,
            total: i64,
        }
        View {
            plan: self.plan,
            bonus: self.bonus,
            flexible: self.flexible,
            held: self.held,
            debt: self.debt,
            total: self.total(),
        }
        .serialize(serializer)
    }
}

/// A spend or hold larger than the total.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insufficient;

/// The order a spend draws in: plan, then bonus, then flexible.
pub const SPEND_ORDER: [Bucket; 3] = [Bucket::Plan, Bucket::Bonus, Bucket::Flexible];
/// The order a reversal takes a purchase back in: flexible, then bonus, then plan.
pub const REVERSAL_ORDER: [Bucket; 3] = [Bucket::Flexible, Bucket::Bonus, Bucket::Plan];
/// The order a clawback takes a referral's bonuses back in: bonus, then flexible, then plan.
pub const CLAWBACK_ORDER: [Bucket; 3] = [Bucket::Bonus, Bucket::Flexible, Bucket::Plan];

/// Takes up to `credits` from the buckets in `order`: what each gives, and
/// what they could not cover.
pub fn take(balance: Balance, credits: i64, order: [Bucket; 3]) -> (Parts, i64) {
    let mut parts = Parts::default();
    let mut left = credits.max(0);
    for bucket in order {
        let part = left.min(balance.bucket(bucket).max(0));
        *parts.get_mut(bucket) = part;
        left -= part;
    }
    (parts, left)
}

/// What a spend of `credits` takes from each bucket, in spend order. The
/// parts add up to `credits`.
pub fn draw(balance: Balance, credits: i64) -> Result<Parts, Insufficient> {
    if credits < 0 || balance.total() < credits {
        return Err(Insufficient);
    }
    match take(balance, credits, SPEND_ORDER) {
        (parts, 0) => Ok(parts),
        _ => Err(Insufficient),
    }
}

/// A credit of `amount` to `bucket`: the debt is repaid first, the rest
/// goes to the bucket. A purchase of 3,000 with a debt of 1,000 credits
/// 2,000 to flexible.
pub fn credit(balance: Balance, bucket: Bucket, amount: i64) -> Delta {
    let repaid = amount.clamp(0, balance.debt.max(0));
    let mut delta = Delta { debt: -repaid, ..Delta::default() };
    *delta.bucket_mut(bucket) = amount - repaid;
    delta
}

impl Delta {
    /// The parts taken out of the buckets (a spend, a reversal).
    pub fn out_of(parts: Parts) -> Delta {
        Delta { plan: -parts.plan, bonus: -parts.bonus, flexible: -parts.flexible, ..Delta::default() }
    }

    /// A change to one bucket only.
    pub fn to(bucket: Bucket, n: i64) -> Delta {
        let mut delta = Delta::default();
        *delta.bucket_mut(bucket) = n;
        delta
    }

    /// A change to the plan bucket only.
    pub fn plan(n: i64) -> Delta {
        Delta::to(Bucket::Plan, n)
    }

    fn bucket_mut(&mut self, bucket: Bucket) -> &mut i64 {
        match bucket {
            Bucket::Plan => &mut self.plan,
            Bucket::Bonus => &mut self.bonus,
            Bucket::Flexible => &mut self.flexible,
        }
    }

    /// This change and `other` together.
    pub fn plus(self, other: Delta) -> Delta {
        Delta {
            plan: self.plan + other.plan,
            bonus: self.bonus + other.bonus,
            flexible: self.flexible + other.flexible,
            held: self.held + other.held,
            debt: self.debt + other.debt,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(plan: i64, bonus: i64, flexible: i64) -> Balance {
        Balance { plan, bonus, flexible, ..Balance::default() }
    }

    #[test]
    fn spends_draw_plan_then_bonus_then_flexible() {
        let balance = b(10, 20, 30);
        assert_eq!(draw(balance, 5), Ok(Parts { plan: 5, bonus: 0, flexible: 0 }));
        assert_eq!(draw(balance, 25), Ok(Parts { plan: 10, bonus: 15, flexible: 0 }));
        assert_eq!(draw(balance, 60), Ok(Parts { plan: 10, bonus: 20, flexible: 30 }));
        assert_eq!(draw(balance, 61), Err(Insufficient));
    }

    #[test]
    fn takes_follow_their_order_and_report_what_is_missing() {
        let balance = b(10, 20, 30);
        assert_eq!(take(balance, 45, REVERSAL_ORDER), (Parts { plan: 0, bonus: 15, flexible: 30 }, 0));
        assert_eq!(take(balance, 25, CLAWBACK_ORDER), (Parts { plan: 0, bonus: 20, flexible: 5 }, 0));
        assert_eq!(take(balance, 70, REVERSAL_ORDER), (Parts { plan: 10, bonus: 20, flexible: 30 }, 10));
    }

    #[test]
    fn a_credit_repays_the_debt_first() {
        let owing = Balance { debt: 1_000, ..b(0, 0, 0) };
        assert_eq!(credit(owing, Bucket::Flexible, 3_000), Delta { flexible: 2_000, debt: -1_000, ..Delta::default() });
        assert_eq!(credit(owing, Bucket::Plan, 600), Delta { debt: -600, ..Delta::default() });
        assert_eq!(credit(b(0, 0, 0), Bucket::Bonus, 250), Delta::to(Bucket::Bonus, 250));
    }

    proptest::proptest! {
        #[test]
        fn any_spend_adds_up_and_leaves_no_bucket_negative(
            plan in 0..1_000_000_i64, bonus in 0..1_000_000_i64, flexible in 0..1_000_000_i64, credits in 0..4_000_000_i64,
        ) {
            let balance = b(plan, bonus, flexible);
            match draw(balance, credits) {
                Ok(d) => {
                    proptest::prop_assert_eq!(d.total(), credits);
                    proptest::prop_assert!(balance.apply(Delta::out_of(d)).is_some(), "a bucket went negative");
                    // Order: a later bucket is touched only once the earlier ones are empty.
                    proptest::prop_assert!(d.bonus == 0 || d.plan == plan);
                    proptest::prop_assert!(d.flexible == 0 || d.bonus == bonus);
                }
                Err(Insufficient) => proptest::prop_assert!(credits > balance.total()),
            }
        }
    }

    #[test]
    fn totals_add_the_three_buckets_only() {
        assert_eq!(Balance { plan: 1, bonus: 20, flexible: 300, held: 4_000, debt: 50_000 }.total(), 321);
    }

    #[test]
    fn no_figure_ever_goes_negative() {
        let balance = b(5, 0, 0);
        assert_eq!(balance.apply(Delta::plan(-5)), Some(Balance::default()));
        assert_eq!(balance.apply(Delta::plan(-6)), None);
        assert_eq!(balance.apply(Delta::to(Bucket::Bonus, -1)), None);
        assert_eq!(balance.apply(Delta { debt: -1, ..Delta::default() }), None);
        assert_eq!(balance.apply(Delta { held: -1, ..Delta::default() }), None);
        assert_eq!(balance.apply(Delta::to(Bucket::Flexible, i64::MAX)), None);
    }

    #[test]
    fn balances_serialise_all_five_figures_and_the_total() {
        let json =
            serde_json::to_value(Balance { plan: 1, bonus: 2, flexible: 3, held: 4, debt: 5 }).expect("serialises");
        assert_eq!(json, serde_json::json!({"plan": 1, "bonus": 2, "flexible": 3, "held": 4, "debt": 5, "total": 6}));
    }
}
