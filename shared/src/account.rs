//! An account as the service holds it, and a change to it under one
//! transaction: bucket deltas with their ledger entries, and the counters
//! the rules keep.

use crate::balance::{Balance, Delta};
use crate::cycle::{serialize_time, Cycle, Time};
use crate::ledger::{EntryKind, LedgerEntry};
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
    /// Everything earned from referrals.
    pub rewarded_credits: i64,
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
            cycle_referrals_below: None,
            cycle: None,
            reset_cycle_referrals: false,
        }
    }

    /// The sum of the entries' deltas.
    pub fn delta(&self) -> Delta {
        self.entries.iter().fold(Delta::default(), |sum, e| Delta {
            plan: sum.plan + e.delta.plan,
            bonus: sum.bonus + e.delta.bonus,
            flexible: sum.flexible + e.delta.flexible,
        })
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::account;
    use super::*;

    #[test]
    fn entries_are_numbered_after_the_last_and_carry_their_balance() {
        let a = account("u", "free", "2026-01-01T00:00:00Z", Balance { plan: 10, bonus: 0, flexible: 0 });
        let mut entries = Entries::on(&a, a.cycle.start);
        entries.push(EntryKind::Spend, Delta::plan(-4), "s").expect("fits");
        entries.push(EntryKind::Purchase, Delta::flexible(7), "p").expect("fits");
        let change = entries.finish();
        let seqs: Vec<(u64, i64)> = change.entries.iter().map(|e| (e.seq, e.balance_after.total())).collect();
        assert_eq!(seqs, [(4, 6), (5, 13)]);
        assert_eq!((change.user_id.as_str(), change.version), ("u", 3));
        assert_eq!(change.delta(), Delta { plan: -4, bonus: 0, flexible: 7 });
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
