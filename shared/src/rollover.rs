//! The billing-cycle rollover rule.
//!
//! For every cycle that has ended: the plan bucket's remainder expires
//! (ledger `expire`, left out when nothing remains), the current plan's
//! allowance is granted (ledger `cycle_grant`; after a downgrade, the new
//! plan's), bonus and flexible carry over untouched, and the cycle advances
//! one calendar month on its anchor day. Each elapsed cycle writes its own
//! entries; the referral cap's count starts afresh.

use crate::account::{Account, Advance, Entries, LedgerError, UnknownPlan};
use crate::balance::{Bucket, Delta};
use crate::cycle::{format_time, Time};
use crate::ledger::EntryKind;
use crate::plans::Catalogue;

/// Cycles caught up in one transaction: two entries each plus the account
/// stay within DynamoDB's 100 items per transaction.
pub const MAX_CYCLES_PER_WRITE: u32 = 40;

/// What rolling an account over does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollover {
    /// The entries, the new cycle, the allowance granted.
    pub change: crate::account::Change,
    /// Cycles it catches up.
    pub cycles: u32,
    /// Whether the account is then current (`false`: more than
    /// [`MAX_CYCLES_PER_WRITE`] cycles behind; another write follows).
    pub caught_up: bool,
}

/// Why a due account cannot be rolled over. None of these fixes itself:
/// the account stays due, untouched, and each run reports it again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RolloverError {
    /// Its plan is not in the catalogue, so its allowance is unknown.
    #[error(transparent)]
    UnknownPlan(#[from] UnknownPlan),
    /// A bucket would overflow.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The next cycle's end is past the last representable date.
    #[error("account {0}: the next cycle ends past the last representable date")]
    EndOfTime(String),
}

/// The rollover of `account` at `now`, at most `max_cycles` cycles; `None`
/// when its cycle has not ended yet.
pub fn rollover(
    account: &Account,
    catalogue: &Catalogue,
    now: Time,
    max_cycles: u32,
) -> Result<Option<Rollover>, RolloverError> {
    if account.cycle.end > now || max_cycles == 0 {
        return Ok(None);
    }
    let allowance = account.current_plan(catalogue)?.monthly_allowance;
    let mut entries = Entries::on(account, now);
    let mut cycle = account.cycle;
    let mut cycles = 0;
    while cycle.end <= now && cycles < max_cycles {
        let reference = format!("rollover:{}", format_time(cycle.end));
        let remainder = entries.balance().plan;
        if remainder > 0 {
            entries.push(EntryKind::Expire, Delta::plan(-remainder), &reference)?;
        }
        entries.credit(EntryKind::CycleGrant, Bucket::Plan, allowance, &reference)?;
        cycle = cycle.next().ok_or_else(|| RolloverError::EndOfTime(crate::types::redact(&account.user_id)))?;
        cycles += 1;
    }
    let mut change = entries.finish();
    change.cycle = Some(Advance { from_end: account.cycle.end, to: cycle });
    change.cycle_max_allowance = Some(allowance);
    change.reset_cycle_referrals = true;
    change.low_balance_alerted = Some(Vec::new());
    Ok(Some(Rollover { change, cycles, caught_up: cycle.end > now }))
}

/// `account` as a request at `now` finds it: with every cycle ended by then
/// rolled over, as a request that changes the account rolls it over before
/// anything else. What the read routes show, so that an account the hourly
/// run has not reached yet shows the balance that can be spent, not the
/// ended cycle's. The account as read where it is current, or cannot be
/// rolled over (its plan left the catalogue, a bucket would overflow), as a
/// request decides on it then.
pub fn as_of(account: &Account, catalogue: &Catalogue, now: Time) -> Account {
    let Ok(Some(rollover)) = self::rollover(account, catalogue, now, u32::MAX) else { return account.clone() };
    let change = rollover.change;
    let mut rolled = account.clone();
    if let Some(last) = change.entries.last() {
        rolled.balance = last.balance_after;
        rolled.ledger_seq = last.seq;
    }
    if let Some(advance) = change.cycle {
        rolled.cycle = advance.to;
    }
    rolled.cycle_max_allowance = change.cycle_max_allowance.unwrap_or(rolled.cycle_max_allowance);
    if change.reset_cycle_referrals {
        rolled.cycle_referrals = 0;
    }
    rolled.low_balance_alerted = change.low_balance_alerted.unwrap_or(rolled.low_balance_alerted);
    rolled
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::Balance;
    use crate::cycle::parse_time;

    fn t(s: &str) -> Time {
        parse_time(s).expect("time")
    }

    fn account(plan: &str, signed_up: &str, balance: Balance) -> Account {
        crate::account::fixtures::account("u", plan, signed_up, balance)
    }

    fn due(a: &Account, now: &str, max: u32) -> Rollover {
        rollover(a, &Catalogue::default(), t(now), max).expect("rolls over").expect("due")
    }

    #[test]
    fn a_cycle_not_yet_ended_is_left_alone() {
        let a = account("pro", "2026-01-31T10:00:00Z", Balance::default());
        assert_eq!(rollover(&a, &Catalogue::default(), t("2026-02-28T09:59:59Z"), 40), Ok(None));
    }

    #[test]
    fn one_cycle_expires_the_plan_remainder_and_grants_the_allowance() {
        let a = account(
            "pro",
            "2026-01-31T10:00:00Z",
            Balance { plan: 1_200, bonus: 250, flexible: 3_000, ..Balance::default() },
        );
        let r = due(&a, "2026-02-28T10:00:00Z", 40);
        assert_eq!((r.cycles, r.caught_up), (1, true));
        let kinds: Vec<_> = r.change.entries.iter().map(|e| (e.kind, e.delta.plan, e.seq)).collect();
        assert_eq!(kinds, [(EntryKind::Expire, -1_200, 4), (EntryKind::CycleGrant, 5_000, 5)]);
        let last = r.change.entries.last().expect("entry").balance_after;
        assert_eq!(last, Balance { plan: 5_000, bonus: 250, flexible: 3_000, ..Balance::default() });
        let cycle = r.change.cycle.expect("cycle").to;
        assert_eq!(
            (format_time(cycle.start), format_time(cycle.end)),
            ("2026-02-28T10:00:00Z".into(), "2026-03-31T10:00:00Z".into())
        );
        assert!(r.change.reset_cycle_referrals);
        assert_eq!(r.change.cycle_max_allowance, Some(5_000));
    }

    #[test]
    fn three_missed_cycles_each_write_their_entries_and_keep_the_anchor() {
        let a =
            account("basic", "2028-01-31T00:00:00Z", Balance { plan: 0, bonus: 10, flexible: 0, ..Balance::default() });
        let r = due(&a, "2028-04-30T00:00:00Z", 40);
        assert_eq!(r.cycles, 3);
        let refs: Vec<_> = r.change.entries.iter().map(|e| (e.kind, e.reference.as_str())).collect();
        assert_eq!(
            refs,
            [
                (EntryKind::CycleGrant, "rollover:2028-02-29T00:00:00Z"),
                (EntryKind::Expire, "rollover:2028-03-31T00:00:00Z"),
                (EntryKind::CycleGrant, "rollover:2028-03-31T00:00:00Z"),
                (EntryKind::Expire, "rollover:2028-04-30T00:00:00Z"),
                (EntryKind::CycleGrant, "rollover:2028-04-30T00:00:00Z"),
            ],
            "no expire when nothing remains"
        );
        assert_eq!(format_time(r.change.cycle.expect("cycle").to.end), "2028-05-31T00:00:00Z");
    }

    #[test]
    fn after_a_downgrade_the_new_plan_is_granted() {
        let a = account(
            "free",
            "2026-03-15T12:00:00Z",
            Balance { plan: 4_000, bonus: 0, flexible: 0, ..Balance::default() },
        );
        let r = due(&a, "2026-04-15T12:00:00Z", 40);
        assert_eq!(r.change.entries.last().expect("grant").balance_after.plan, 1_000);
        assert_eq!(r.change.cycle_max_allowance, Some(1_000));
    }

    #[test]
    fn a_read_finds_the_account_as_a_request_would_after_its_rollover() {
        let mut a = account(
            "free",
            "2026-03-15T12:00:00Z",
            Balance { plan: 4_000, bonus: 20, flexible: 300, held: 50, debt: 0 },
        );
        (a.cycle_referrals, a.low_balance_alerted, a.cycle_max_allowance) = (3, vec![100], 5_000);
        let read = as_of(&a, &Catalogue::default(), t("2026-05-20T00:00:00Z"));
        assert_eq!(read.balance, Balance { plan: 1_000, bonus: 20, flexible: 300, held: 50, debt: 0 });
        assert_eq!(format_time(read.cycle.end), "2026-06-15T12:00:00Z", "two cycles rolled over");
        assert_eq!((read.cycle_referrals, read.low_balance_alerted.len(), read.cycle_max_allowance), (0, 0, 1_000));
        assert_eq!(read.ledger_seq, a.ledger_seq + 4, "two expires, two grants");
        assert_eq!((read.plan.as_str(), read.version), ("free", a.version), "nothing else changes");
    }

    #[test]
    fn a_read_finds_a_far_behind_account_caught_up_whole() {
        let a = account("free", "2020-01-01T00:00:00Z", Balance::default());
        let read = as_of(&a, &Catalogue::default(), t("2026-01-01T00:00:01Z"));
        assert_eq!(format_time(read.cycle.end), "2026-02-01T00:00:00Z", "more than one write's worth of cycles");
        assert_eq!(read.balance.plan, 1_000);
    }

    #[test]
    fn a_read_finds_a_current_account_or_one_that_cannot_roll_over_as_stored() {
        let a = account("pro", "2026-01-31T10:00:00Z", Balance { plan: 700, ..Balance::default() });
        assert_eq!(as_of(&a, &Catalogue::default(), t("2026-02-28T09:59:59Z")), a);
        let lost = account("legacy", "2026-01-31T10:00:00Z", Balance { plan: 700, ..Balance::default() });
        assert_eq!(as_of(&lost, &Catalogue::default(), t("2026-03-01T00:00:00Z")), lost);
    }

    #[test]
    fn far_behind_accounts_catch_up_in_bounded_writes() {
        let a = account("free", "2020-01-01T00:00:00Z", Balance::default());
        let r = due(&a, "2026-01-01T00:00:00Z", MAX_CYCLES_PER_WRITE);
        assert_eq!((r.cycles, r.caught_up), (40, false));
        assert!(r.change.entries.len() < 99);
    }

    #[test]
    fn a_cycle_grant_repays_debt_before_the_plan_bucket_grows() {
        let a = account("pro", "2026-01-31T10:00:00Z", Balance { plan: 300, debt: 1_200, ..Balance::default() });
        let r = due(&a, "2026-02-28T10:00:00Z", 40);
        let deltas: Vec<_> = r.change.entries.iter().map(|e| (e.kind, e.delta.plan, e.delta.debt)).collect();
        assert_eq!(deltas, [(EntryKind::Expire, -300, 0), (EntryKind::CycleGrant, 3_800, -1_200)]);
        let last = r.change.entries.last().expect("entry").balance_after;
        assert_eq!((last.plan, last.debt), (3_800, 0));
    }

    #[test]
    fn an_overflowing_grant_is_an_error_not_a_skip() {
        let a = account(
            "pro",
            "2026-01-31T10:00:00Z",
            Balance { plan: 0, bonus: i64::MAX - 100, flexible: 0, ..Balance::default() },
        );
        let err = rollover(&a, &Catalogue::default(), t("2026-03-01T00:00:00Z"), 40).expect_err("overflows");
        assert!(matches!(err, RolloverError::Ledger(_)), "{err}");
    }

    #[test]
    fn a_plan_the_catalogue_lost_is_an_error_not_a_grant_of_nothing() {
        let a = account(
            "legacy",
            "2026-01-31T10:00:00Z",
            Balance { plan: 700, bonus: 0, flexible: 0, ..Balance::default() },
        );
        let err = rollover(&a, &Catalogue::default(), t("2026-03-01T00:00:00Z"), 40).expect_err("unknown plan");
        assert!(err.to_string().contains("\"legacy\""), "{err}");
        // Not due yet: nothing to decide, so no error either.
        assert_eq!(rollover(&a, &Catalogue::default(), t("2026-02-01T00:00:00Z"), 40), Ok(None));
    }
}
