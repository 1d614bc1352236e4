//! The three buckets of a balance, and how a spend draws from them.

use serde::{Serialize, Serializer};

/// A balance: plan (expires at cycle end), bonus and flexible (carry over).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Balance {
    /// The monthly allowance's remainder.
    pub plan: i64,
    /// Referral rewards.
    pub bonus: i64,
    /// Purchased credits.
    pub flexible: i64,
}

/// A change to each bucket; a ledger entry's `delta`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Delta {
    /// Change to the plan bucket.
    pub plan: i64,
    /// Change to the bonus bucket.
    pub bonus: i64,
    /// Change to the flexible bucket.
    pub flexible: i64,
}

impl Balance {
    /// All three buckets together.
    pub fn total(&self) -> i64 {
        self.plan.saturating_add(self.bonus).saturating_add(self.flexible)
    }

    /// The balance after `delta`; `None` where a bucket would go negative or
    /// overflow.
    pub fn apply(&self, delta: Delta) -> Option<Balance> {
        let after = Balance {
            plan: self.plan.checked_add(delta.plan)?,
            bonus: self.bonus.checked_add(delta.bonus)?,
            flexible: self.flexible.checked_add(delta.flexible)?,
        };
        (after.plan >= 0
            && after.bonus >= 0
            && after.flexible >= 0
            && after.plan.checked_add(after.bonus)?.checked_add(after.flexible).is_some())
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
            total: i64,
        }
        View { plan: self.plan, bonus: self.bonus, flexible: self.flexible, total: self.total() }.serialize(serializer)
    }
}

/// A spend larger than the balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insufficient;

/// What a spend of `credits` takes from each bucket: plan first, then
/// bonus, then flexible. The parts are positive and add up to `credits`.
pub fn draw(balance: Balance, credits: i64) -> Result<Delta, Insufficient> {
    if credits < 0 || balance.total() < credits {
        return Err(Insufficient);
    }
    let plan = credits.min(balance.plan.max(0));
    let bonus = (credits - plan).min(balance.bonus.max(0));
    let flexible = credits - plan - bonus;
    if flexible > balance.flexible {
        return Err(Insufficient);
    }
    Ok(Delta { plan, bonus, flexible })
}

impl Delta {
    /// The same change in the other direction: a spend's delta from what it draws.
    pub fn negated(self) -> Delta {
        Delta { plan: -self.plan, bonus: -self.bonus, flexible: -self.flexible }
    }

    /// A change to the plan bucket only.
    pub fn plan(n: i64) -> Delta {
        Delta { plan: n, ..Delta::default() }
    }

    /// A change to the bonus bucket only.
    pub fn bonus(n: i64) -> Delta {
        Delta { bonus: n, ..Delta::default() }
    }

    /// A change to the flexible bucket only.
    pub fn flexible(n: i64) -> Delta {
        Delta { flexible: n, ..Delta::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spends_draw_plan_then_bonus_then_flexible() {
        let b = Balance { plan: 10, bonus: 20, flexible: 30 };
        assert_eq!(draw(b, 5), Ok(Delta { plan: 5, bonus: 0, flexible: 0 }));
        assert_eq!(draw(b, 25), Ok(Delta { plan: 10, bonus: 15, flexible: 0 }));
        assert_eq!(draw(b, 60), Ok(Delta { plan: 10, bonus: 20, flexible: 30 }));
        assert_eq!(draw(b, 61), Err(Insufficient));
    }

    proptest::proptest! {
        #[test]
        fn any_spend_adds_up_and_leaves_no_bucket_negative(
            plan in 0..1_000_000_i64, bonus in 0..1_000_000_i64, flexible in 0..1_000_000_i64, credits in 0..4_000_000_i64,
        ) {
            let b = Balance { plan, bonus, flexible };
            match draw(b, credits) {
                Ok(d) => {
                    proptest::prop_assert_eq!(d.plan + d.bonus + d.flexible, credits);
                    let after = b.apply(d.negated());
                    proptest::prop_assert!(after.is_some(), "a bucket went negative");
                    // Order: a later bucket is touched only once the earlier ones are empty.
                    proptest::prop_assert!(d.bonus == 0 || d.plan == plan);
                    proptest::prop_assert!(d.flexible == 0 || d.bonus == bonus);
                }
                Err(Insufficient) => proptest::prop_assert!(credits > b.total()),
            }
        }
    }

    #[test]
    fn totals_add_the_three_buckets() {
        assert_eq!(Balance { plan: 1, bonus: 20, flexible: 300 }.total(), 321);
    }

    #[test]
    fn a_bucket_never_goes_negative() {
        let b = Balance { plan: 5, bonus: 0, flexible: 0 };
        assert_eq!(b.apply(Delta::plan(-5)), Some(Balance::default()));
        assert_eq!(b.apply(Delta::plan(-6)), None);
        assert_eq!(b.apply(Delta::bonus(-1)), None);
        assert_eq!(b.apply(Delta::flexible(i64::MAX)), None);
    }

    #[test]
    fn balances_serialise_with_their_total() {
        let json = serde_json::to_value(Balance { plan: 1, bonus: 2, flexible: 3 }).expect("serialises");
        assert_eq!(json, serde_json::json!({"plan": 1, "bonus": 2, "flexible": 3, "total": 6}));
    }
}
