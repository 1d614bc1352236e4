//! An account as the service holds it, and a change to it under one
//! transaction: bucket deltas with their ledger entries, and the counters
//! the rules keep.

use crate::balance::{credit, Balance, Bucket, Delta};
use crate::cycle::{serialize_time, Cycle, Time};
use crate::ledger::{EntryContext, EntryKind, LedgerEntry};
use crate::plans::{Catalogue, Plan};
use crate::types::redact;
use serde::Serialize;

/// An account and the counters the rules need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The user's id.
    pub user_id: String,
    /// The address emails go to.
    pub email: String,
    /// The address normalised for self-referral checks.
    pub email_norm: String,
    /// The plan's name; see [`Account::current_plan`] for the plan itself.
    pub plan: String,
    /// This account's own referral code.
    pub referral_code: String,
    /// Who referred this account, for good.
    pub referrer_id: Option<String>,
    /// The current billing cycle.
    pub cycle: Cycle,
    /// The three buckets.
    pub balance: Balance,
    /// Bumped by every write that changes the balance: the optimistic lock
    /// that makes a ledger entry's `balance_after` exact.
    pub version: u64,
    /// Number of ledger entries written so far.
    pub ledger_seq: u64,
    /// Largest allowance granted in the current cycle.
    pub cycle_max_allowance: i64,
    /// Highest plan rank ever held.
    pub max_rank: u32,
    /// Signup bonuses earned in the current cycle (the referral cap's count).
    pub cycle_referrals: i64,
    /// Accounts that recorded this one as their referrer.
    pub referral_signups: i64,
    /// Everything earned from referrals (less what clawbacks took back).
    pub rewarded_credits: i64,
    /// What this account's referrer was paid for referring it: the signup
    /// bonus and the upgrade bonuses; what a clawback takes back.
    pub referral_paid: i64,
    /// Whether this account's referral was clawed back: it pays nothing more.
    pub referral_revoked: bool,
    /// Low-balance thresholds already alerted in the current cycle.
    pub low_balance_alerted: Vec<i64>,
}

/// An account's plan name that the catalogue (`CREDITS_CONFIG`) no longer
/// has: no rule that needs the plan can be applied to the account.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("account {user} is on plan {plan:?}, which the plan catalogue (CREDITS_CONFIG) does not have")]
pub struct UnknownPlan {
    /// The account, masked where it looks like an email address.
    pub user: String,
    /// The stored plan name.
    pub plan: String,
}

impl Account {
    /// The account's plan in `catalogue`; an error, never a guess, where the
    /// catalogue no longer has it.
    pub fn current_plan<'c>(&self, catalogue: &'c Catalogue) -> Result<&'c Plan, UnknownPlan> {
        catalogue.plan(&self.plan).ok_or_else(|| UnknownPlan { user: redact(&self.user_id), plan: self.plan.clone() })
    }

    /// The contract's `Account`.
    pub fn view(&self) -> AccountView<'_> {
        AccountView {
            user_id: &self.user_id,
            email: &self.email,
            plan: &self.plan,
            referral_code: &self.referral_code,
            cycle_start: self.cycle.start,
            cycle_end: self.cycle.end,
            balance: self.balance,
        }
    }
}

/// The contract's `Account`.
#[derive(Serialize)]
pub struct AccountView<'a> {
    user_id: &'a str,
    email: &'a str,
    plan: &'a str,
    referral_code: &'a str,
    #[serde(serialize_with = "serialize_time")]
    cycle_start: Time,
    #[serde(serialize_with = "serialize_time")]
    cycle_end: Time,
    balance: Balance,
}

/// Everything one transaction does to one existing account. The store turns
/// it into a single update, conditioned on the account still being at the
/// version it was read at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The account changed.
    pub user_id: String,
    /// The version it was read at: the write's condition.
    pub version: u64,
    /// The ledger entries, in order; each carries its own delta.
    pub entries: Vec<LedgerEntry>,
    /// New plan, if it changes.
    pub plan: Option<String>,
    /// New largest allowance granted this cycle, if it changes.
    pub cycle_max_allowance: Option<i64>,
    /// New highest rank held, if it changes.
    pub max_rank: Option<u32>,
    /// Added to `cycle_referrals`.
    pub cycle_referrals: i64,
    /// Added to `rewarded_credits`.
    pub rewarded_credits: i64,
    /// Added to `referral_signups`.
    pub referral_signups: i64,
    /// Added to `referral_paid`.
    pub referral_paid: i64,
    /// Marks the account's referral revoked.
    pub revoke_referral: bool,
    /// The low-balance thresholds alerted this cycle, if they change (a
    /// new alert adds one; a new cycle empties them).
    pub low_balance_alerted: Option<Vec<i64>>,
    /// A cap `cycle_referrals` must still be under when the write lands.
    pub cycle_referrals_below: Option<i64>,
    /// A move to a later cycle.
    pub cycle: Option<Advance>,
    /// Starts the referral cap's count afresh (a new cycle).
    pub reset_cycle_referrals: bool,
}

impl Change {
    /// A change of `account` with nothing in it yet.
    pub fn of(account: &Account) -> Change {
        Change {
            user_id: account.user_id.clone(),
            version: account.version,
            entries: Vec::new(),
            plan: None,
            cycle_max_allowance: None,
            max_rank: None,
            cycle_referrals: 0,
            rewarded_credits: 0,
            referral_signups: 0,
            referral_paid: 0,
            revoke_referral: false,
            low_balance_alerted: None,
            cycle_referrals_below: None,
            cycle: None,
            reset_cycle_referrals: false,
        }
    }

    /// The sum of the entries' deltas.
    pub fn delta(&self) -> Delta {
        self.entries.iter().fold(Delta::default(), |sum, e| sum.plus(e.delta))
    }
}

/// A move to a later billing cycle, on the condition that the stored cycle
/// still ends where it did when read: what makes a rollover exactly-once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advance {
    /// The end of the cycle as read.
    pub from_end: Time,
    /// The cycle moved to.
    pub to: Cycle,
}

/// A ledger entry that would take a bucket below zero or past `i64::MAX`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {kind} entry of {delta:?} on account {user} with balance {balance:?} would take a bucket below zero or past the largest number")]
pub struct LedgerError {
    /// The account, masked where it looks like an email address.
    pub user: String,
    /// The entry's kind.
    pub kind: &'static str,
    /// The entry's change.
    pub delta: Delta,
    /// The balance it would have applied to.
    pub balance: Balance,
}

/// Appends ledger entries to a change of one account, numbering them after
/// its last entry and computing each `balance_after` from its balance.
pub struct Entries {
    balance: Balance,
    next_seq: u64,
    at: Time,
    change: Change,
}

impl Entries {
    /// Starts a change of `account` at `at`.
    pub fn on(account: &Account, at: Time) -> Entries {
        Entries { balance: account.balance, next_seq: account.ledger_seq + 1, at, change: Change::of(account) }
    }

    /// Adds an entry.
    pub fn push(&mut self, kind: EntryKind, delta: Delta, reference: &str) -> Result<(), LedgerError> {
        self.push_with(kind, delta, reference, EntryContext::default())
    }

    /// Adds a credit of `amount` to `bucket`: it repays the debt first, and
    /// the entry shows the bucket's part and the debt's. Returns the delta.
    pub fn credit(
        &mut self,
        kind: EntryKind,
        bucket: Bucket,
        amount: i64,
        reference: &str,
    ) -> Result<Delta, LedgerError> {
        let delta = credit(self.balance, bucket, amount);
        self.push(kind, delta, reference)?;
        Ok(delta)
    }

    /// Adds an entry that carries a correction's context.
    pub fn push_with(
        &mut self,
        kind: EntryKind,
        delta: Delta,
        reference: &str,
        context: EntryContext,
    ) -> Result<(), LedgerError> {
        let after = self.balance.apply(delta).ok_or_else(|| LedgerError {
            user: redact(&self.change.user_id),
            kind: kind.as_str(),
            delta,
            balance: self.balance,
        })?;
        self.balance = after;
        self.change.entries.push(LedgerEntry {
            seq: self.next_seq,
            at: self.at,
            kind,
            delta,
            balance_after: after,
            reference: reference.to_owned(),
            context,
        });
        self.next_seq += 1;
        Ok(())
    }

    /// The balance after the entries so far.
    pub fn balance(&self) -> Balance {
        self.balance
    }

    /// The change, for its other fields to be set.
    pub fn finish(self) -> Change {
        self.change
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Accounts for the rules' unit tests.

    use super::*;
    use crate::cycle::parse_time;

    /// An account on `plan`, signed up at `signed_up_at`, with `balance`
    /// and three ledger entries behind it.
    pub fn account(user_id: &str, plan: &str, signed_up_at: &str, balance: Balance) -> Account {
        let catalogue = Catalogue::default();
        let found = catalogue.plan(plan);
        Account {
            user_id: user_id.into(),
            email: format!("{user_id}@example.com"),
            email_norm: format!("{user_id}@example.com"),
            plan: plan.into(),
            referral_code: "ABCD2345".into(),
            referrer_id: None,
            cycle: Cycle::first(parse_time(signed_up_at).expect("time")).expect("cycle"),
            balance,
            version: 3,
            ledger_seq: 3,
            cycle_max_allowance: found.map_or(0, |p| p.monthly_allowance),
            max_rank: found.map_or(0, |p| p.rank),
            cycle_referrals: 0,
            referral_signups: 0,
            rewarded_credits: 0,
            referral_paid: 0,
            referral_revoked: false,
            low_balance_alerted: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::account;
    use super::*;

    #[test]
    fn entries_are_numbered_after_the_last_and_carry_their_balance() {
        let a = account("u", "free", "2026-01-01T00:00:00Z", Balance { plan: 10, ..Balance::default() });
        let mut entries = Entries::on(&a, a.cycle.start);
        entries.push(EntryKind::Spend, Delta::plan(-4), "s").expect("fits");
        entries.push(EntryKind::Purchase, Delta::to(Bucket::Flexible, 7), "p").expect("fits");
        let change = entries.finish();
        let seqs: Vec<(u64, i64)> = change.entries.iter().map(|e| (e.seq, e.balance_after.total())).collect();
        assert_eq!(seqs, [(4, 6), (5, 13)]);
        assert_eq!((change.user_id.as_str(), change.version), ("u", 3));
        assert_eq!(change.delta(), Delta { plan: -4, flexible: 7, ..Delta::default() });
    }

    #[test]
    fn an_entry_that_cannot_be_applied_says_which_and_why() {
        let a = account(
            "jane@example.com",
            "free",
            "2026-01-01T00:00:00Z",
            Balance { plan: i64::MAX - 1, ..Balance::default() },
        );
        let mut entries = Entries::on(&a, a.cycle.start);
        let err = entries.push(EntryKind::PlanChange, Delta::plan(5), "c").expect_err("overflows");
        let text = err.to_string();
        assert!(text.contains("plan_change") && text.contains("j***@example.com"), "{text}");
        assert!(!text.contains("jane@"), "{text}");
    }

    #[test]
    fn a_plan_the_catalogue_lost_is_an_error_naming_it() {
        let a = account("u", "legacy", "2026-01-01T00:00:00Z", Balance::default());
        let err = a.current_plan(&Catalogue::default()).expect_err("not in the catalogue");
        assert_eq!(err, UnknownPlan { user: "u".into(), plan: "legacy".into() });
        assert!(err.to_string().contains("\"legacy\""));
    }
}

#[cfg(test)]
mod properties {
    //! Any sequence of the rules' moves keeps the ledger's invariants.

    use super::fixtures::account;
    use super::*;
    use crate::balance::{draw, take, Parts, CLAWBACK_ORDER, REVERSAL_ORDER};
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Move {
        Purchase(i64),
        Spend(i64),
        Reversal(i64),
        AdjustUp(Bucket, i64),
        AdjustDown(Bucket, i64),
        Clawback(i64),
        CycleGrant(i64),
    }

    fn a_move() -> impl Strategy<Value = Move> {
        let bucket = prop_oneof![Just(Bucket::Bonus), Just(Bucket::Flexible)];
        prop_oneof![
            (1..5_000_i64).prop_map(Move::Purchase),
            (1..5_000_i64).prop_map(Move::Spend),
            (1..5_000_i64).prop_map(Move::Reversal),
            (bucket.clone(), 1..5_000_i64).prop_map(|(b, n)| Move::AdjustUp(b, n)),
            (bucket, 1..5_000_i64).prop_map(|(b, n)| Move::AdjustDown(b, n)),
            (1..5_000_i64).prop_map(Move::Clawback),
            (0..5_000_i64).prop_map(Move::CycleGrant),
        ]
    }

    /// Applies one move as the routes do; `false` where the route refuses it.
    fn apply(entries: &mut Entries, m: &Move) -> Result<bool, LedgerError> {
        let balance = entries.balance();
        let taken = |parts: Parts, short: i64| Delta { debt: short, ..Delta::out_of(parts) };
        match *m {
            Move::Purchase(n) => entries.credit(EntryKind::Purchase, Bucket::Flexible, n, "p").map(|_| true),
            Move::Spend(n) => match draw(balance, n) {
                Ok(parts) => entries.push(EntryKind::Spend, Delta::out_of(parts), "s").map(|_| true),
                Err(_) => Ok(false),
            },
            Move::Reversal(n) => {
                let (parts, short) = take(balance, n, REVERSAL_ORDER);
                entries.push(EntryKind::Reversal, taken(parts, short), "r").map(|_| true)
            }
            Move::AdjustUp(b, n) => entries.credit(EntryKind::Adjustment, b, n, "a").map(|_| true),
            Move::AdjustDown(b, n) if balance.bucket(b) >= n => {
                entries.push(EntryKind::Adjustment, Delta::to(b, -n), "a").map(|_| true)
            }
            Move::AdjustDown(..) => Ok(false),
            Move::Clawback(n) => {
                let (parts, short) = take(balance, n, CLAWBACK_ORDER);
                entries.push(EntryKind::Clawback, taken(parts, short), "k").map(|_| true)
            }
            Move::CycleGrant(n) => {
                if balance.plan > 0 {
                    entries.push(EntryKind::Expire, Delta::plan(-balance.plan), "c")?;
                }
                entries.credit(EntryKind::CycleGrant, Bucket::Plan, n, "c").map(|_| true)
            }
        }
    }

    proptest! {
        /// No figure negative, every figure the sum of its deltas, and a
        /// debt repaid before any bucket grows.
        #[test]
        fn the_ledger_explains_every_balance_through_any_corrections(moves in proptest::collection::vec(a_move(), 0..60)) {
            let mut acct = account("u", "pro", "2026-01-31T10:00:00Z", Balance { plan: 1_000, ..Balance::default() });
            acct.ledger_seq = 0;
            let mut ledger: Vec<LedgerEntry> = Vec::new();
            let start = acct.balance;
            for m in &moves {
                let mut entries = Entries::on(&acct, acct.cycle.start);
                let before = entries.balance();
                prop_assert!(apply(&mut entries, m).is_ok(), "{m:?} on {before:?}");
                let after = entries.balance();
                let change = entries.finish();
                for e in &change.entries {
                    let b = e.balance_after;
                    prop_assert!([b.plan, b.bonus, b.flexible, b.held, b.debt].iter().all(|f| *f >= 0), "{e:?}");
                    let grows = e.delta.plan > 0 || e.delta.bonus > 0 || e.delta.flexible > 0;
                    prop_assert!(!grows || b.debt == 0, "a bucket grew while a debt remained: {e:?}");
                }
                acct.balance = after;
                acct.ledger_seq += change.entries.len() as u64;
                ledger.extend(change.entries);
            }
            let sum = ledger.iter().fold(Delta::default(), |s, e| s.plus(e.delta));
            let end = [start.plan + sum.plan, start.bonus + sum.bonus, start.flexible + sum.flexible, sum.held, sum.debt];
            let b = acct.balance;
            prop_assert_eq!(end, [b.plan, b.bonus, b.flexible, b.held, b.debt]);
            let seqs: Vec<u64> = ledger.iter().map(|e| e.seq).collect();
            prop_assert_eq!(seqs, (1..=ledger.len() as u64).collect::<Vec<_>>());
            if let Some(last) = ledger.last() {
                prop_assert_eq!(last.balance_after, acct.balance);
            }
        }
    }
}
