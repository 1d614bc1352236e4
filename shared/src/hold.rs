//! Holds: credits reserved for work whose cost is known only when it ends,
//! then captured (spent) or released (given back), and what settling one
//! does to the buckets.
//!
//! A hold moves credits out of the buckets, in spend order, into `held`.
//! Settling it spends the captured credits from the hold's own composition
//! in spend order (its plan part first) and gives the rest back to the
//! buckets they came from, repaying debt first like every credit. Plan
//! credits whose cycle ended while they were held do not come back: the
//! cycle that granted them is over, so they expire.

use crate::balance::{take, Balance, Delta, Parts, SPEND_ORDER};
use crate::cycle::{serialize_time, Time};
use serde::Serialize;

/// Where a hold stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldStatus {
    /// Its credits are reserved.
    Open,
    /// Settled by a capture.
    Captured,
    /// Given back by a release.
    Released,
    /// Given back automatically after `expires_at`.
    Expired,
}

impl HoldStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldStatus::Open => "open",
            HoldStatus::Captured => "captured",
            HoldStatus::Released => "released",
            HoldStatus::Expired => "expired",
        }
    }

    /// The status with this stored name.
    pub fn from_name(name: &str) -> Option<HoldStatus> {
        [HoldStatus::Open, HoldStatus::Captured, HoldStatus::Released, HoldStatus::Expired]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// A hold as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    /// The user whose credits it reserves.
    pub user_id: String,
    /// The caller's id for it (its idempotency key).
    pub hold_id: String,
    /// Credits reserved.
    pub credits: i64,
    /// What each bucket gave.
    pub from: Parts,
    /// Where it stands.
    pub status: HoldStatus,
    /// When it is released automatically if still open.
    pub expires_at: Time,
    /// Credits captured, once captured.
    pub captured: Option<i64>,
    /// The end of the billing cycle its plan part was granted in.
    pub cycle_end: Time,
    /// The feature the caller named, if any.
    pub feature: Option<String>,
    /// When it was made.
    pub created_at: Time,
}

/// The contract's `Hold`.
#[derive(Serialize)]
pub struct HoldView<'a> {
    hold_id: &'a str,
    credits: i64,
    from: Parts,
    status: HoldStatus,
    #[serde(serialize_with = "serialize_time")]
    expires_at: Time,
    captured: Option<i64>,
}

impl Hold {
    /// The contract's view.
    pub fn view(&self) -> HoldView<'_> {
        HoldView {
            hold_id: &self.hold_id,
            credits: self.credits,
            from: self.from,
            status: self.status,
            expires_at: self.expires_at,
            captured: self.captured,
        }
    }
}

/// What settling a hold does with its credits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settlement {
    /// Spent, from the hold's composition in spend order.
    pub captured: Parts,
    /// Given back to the buckets they came from.
    pub back: Parts,
    /// Plan credits whose cycle ended while held: they expire.
    pub expired: i64,
}

/// Settles `hold` capturing `capture` credits (0 for a release) on an
/// account whose current cycle ends at `cycle_end`. `capture` must be at
/// most the hold's credits.
pub fn settle(hold: &Hold, capture: i64, cycle_end: Time) -> Settlement {
    let composition =
        Balance { plan: hold.from.plan, bonus: hold.from.bonus, flexible: hold.from.flexible, ..Balance::default() };
    let (captured, _) = take(composition, capture, SPEND_ORDER);
    let mut back = Parts {
        plan: hold.from.plan - captured.plan,
        bonus: hold.from.bonus - captured.bonus,
        flexible: hold.from.flexible - captured.flexible,
    };
    let mut expired = 0;
    if cycle_end != hold.cycle_end {
        expired = back.plan;
        back.plan = 0;
    }
    Settlement { captured, back, expired }
}

/// Credits coming back to the buckets: the debt is repaid first, from the
/// parts in spend order (plan credits are the most perishable).
pub fn give_back(balance: Balance, back: Parts) -> Delta {
    let mut owed = balance.debt.max(0);
    let mut delta = Delta::default();
    for (part, to) in
        [(back.plan, &mut delta.plan), (back.bonus, &mut delta.bonus), (back.flexible, &mut delta.flexible)]
    {
        let repaid = part.min(owed);
        owed -= repaid;
        *to = part - repaid;
    }
    delta.debt = -(balance.debt.max(0) - owed);
    delta
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cycle::parse_time;

    fn t(s: &str) -> Time {
        parse_time(s).expect("time")
    }

    fn hold(from: Parts) -> Hold {
        Hold {
            user_id: "u".into(),
            hold_id: "h".into(),
            credits: from.total(),
            from,
            status: HoldStatus::Open,
            expires_at: t("2026-02-01T00:00:00Z"),
            captured: None,
            cycle_end: t("2026-02-28T10:00:00Z"),
            feature: None,
            created_at: t("2026-02-01T00:00:00Z"),
        }
    }

    #[test]
    fn a_capture_spends_the_plan_part_first_and_gives_the_rest_back() {
        let h = hold(Parts { plan: 5_000, bonus: 500, flexible: 3_000 });
        let s = settle(&h, 7_900, t("2026-02-28T10:00:00Z"));
        assert_eq!(s.captured, Parts { plan: 5_000, bonus: 500, flexible: 2_400 });
        assert_eq!(s.back, Parts { plan: 0, bonus: 0, flexible: 600 });
        assert_eq!(s.expired, 0);
        let all = settle(&h, 8_500, t("2026-02-28T10:00:00Z"));
        assert_eq!((all.captured.total(), all.back.total()), (8_500, 0));
    }

    #[test]
    fn held_plan_credits_whose_cycle_ended_expire_instead_of_coming_back() {
        let h = hold(Parts { plan: 1_000, bonus: 0, flexible: 400 });
        let s = settle(&h, 300, t("2026-03-31T10:00:00Z"));
        assert_eq!(s.captured, Parts { plan: 300, bonus: 0, flexible: 0 });
        assert_eq!((s.back, s.expired), (Parts { plan: 0, bonus: 0, flexible: 400 }, 700));
    }

    #[test]
    fn credits_coming_back_repay_debt_first_plan_part_first() {
        let owing = Balance { debt: 250, ..Balance::default() };
        let delta = give_back(owing, Parts { plan: 100, bonus: 0, flexible: 400 });
        assert_eq!(delta, Delta { plan: 0, flexible: 250, debt: -250, ..Delta::default() });
        assert_eq!(
            give_back(Balance::default(), Parts { plan: 1, bonus: 2, flexible: 3 }),
            Delta { plan: 1, bonus: 2, flexible: 3, ..Delta::default() }
        );
    }

    proptest::proptest! {
        #[test]
        fn a_settlement_accounts_for_every_held_credit(
            plan in 0..10_000_i64, bonus in 0..10_000_i64, flexible in 0..10_000_i64, share in 0.0..=1.0_f64, cycle_over: bool,
        ) {
            let h = hold(Parts { plan, bonus, flexible });
            let capture = (h.credits as f64 * share) as i64;
            let end = if cycle_over { t("2026-03-31T10:00:00Z") } else { h.cycle_end };
            let s = settle(&h, capture, end);
            proptest::prop_assert_eq!(s.captured.total(), capture);
            proptest::prop_assert_eq!(s.captured.total() + s.back.total() + s.expired, h.credits);
            proptest::prop_assert!(s.captured.plan == plan || (s.captured.bonus == 0 && s.captured.flexible == 0));
            proptest::prop_assert!(s.back.plan >= 0 && s.back.bonus >= 0 && s.back.flexible >= 0);
        }
    }
}
