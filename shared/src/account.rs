//! An account as the service holds it, and its change under one transaction.

use crate::balance::{Balance, Delta};
use crate::cycle::{format_time, Cycle};
use crate::ledger::{EntryKind, LedgerEntry};
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
    /// Current plan.
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
    /// Signup bonuses earned in the current cycle.
    pub cycle_referrals: i64,
    /// Accounts that recorded this one as their referrer.
    pub referral_signups: i64,
    /// Everything earned from referrals.
    pub rewarded_credits: i64,
}

/// The public view of an account (the contract's `Account`).
#[derive(Serialize)]
pub struct AccountView<'a> {
    user_id: &'a str,
    email: &'a str,
    plan: &'a str,
    referral_code: &'a str,
    cycle_start: String,
    cycle_end: String,
    balance: Balance,
}

impl Account {
    /// The contract's view of this account.
    pub fn view(&self) -> AccountView<'_> {
        AccountView {
            user_id: &self.user_id,
            email: &self.email,
            plan: &self.plan,
            referral_code: &self.referral_code,
            cycle_start: format_time(self.cycle.start),
            cycle_end: format_time(self.cycle.end),
            balance: self.balance,
        }
    }
}

/// Everything one transaction does to one existing account: bucket deltas
/// with their ledger entries, and the other fields it sets. The store turns
/// it into a single conditional update on the snapshot's `version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The ledger entries, in order; each carries its own delta.
    pub entries: Vec<LedgerEntry>,
    /// New plan, if it changes.
    pub plan: Option<String>,
    /// New highest allowance granted this cycle, if it changes.
    pub cycle_max_allowance: Option<i64>,
    /// New highest rank held, if it changes.
    pub max_rank: Option<u32>,
    /// Added to `cycle_referrals`.
    pub cycle_referrals: i64,
    /// Added to `rewarded_credits`.
    pub rewarded_credits: i64,
    /// Added to `referral_signups`.
    pub referral_signups: i64,
    /// A cap the account's `cycle_referrals` must stay under.
    pub cycle_referrals_below: Option<i64>,
    /// The new current cycle, if it advances (on the condition that the
    /// stored one still ends where the snapshot's does).
    pub cycle: Option<Cycle>,
    /// Starts the referral cap's count afresh (a new cycle).
    pub reset_cycle_referrals: bool,
}

impl Change {
    /// A change with nothing in it yet.
    pub fn new() -> Change {
        Change {
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

impl Default for Change {
    fn default() -> Self {
        Change::new()
    }
}

/// Appends ledger entries to a change, numbering them after the account's
/// last entry and computing each `balance_after` from the snapshot.
pub struct Entries<'a> {
    account: &'a Account,
    balance: Balance,
    at: String,
    change: Change,
}

/// A change would take a bucket below zero (or overflow it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WouldGoNegative;

impl<'a> Entries<'a> {
    /// Starts a change of `account` at time `at`.
    pub fn on(account: &'a Account, at: String) -> Entries<'a> {
        Entries { account, balance: account.balance, at, change: Change::new() }
    }

    /// Adds an entry.
    pub fn push(&mut self, kind: EntryKind, delta: Delta, reference: &str) -> Result<(), WouldGoNegative> {
        let after = self.balance.apply(delta).ok_or(WouldGoNegative)?;
        self.balance = after;
        let seq = self.account.ledger_seq + self.change.entries.len() as u64 + 1;
        self.change.entries.push(LedgerEntry {
            seq,
            at: self.at.clone(),
            kind,
            delta,
            balance_after: after,
            reference: reference.to_owned(),
        });
        Ok(())
    }

    /// The balance after the entries so far.
    pub fn balance(&self) -> Balance {
        self.balance
    }

    /// The change, for the other fields to be set on it.
    pub fn finish(self) -> Change {
        self.change
    }
}
