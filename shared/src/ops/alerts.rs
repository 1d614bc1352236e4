//! Low-balance alerts, applied to the effect of the routes that can lower
//! a balance (spends, holds, captures, reversals, adjustments): when the
//! change takes the user's `total` below a threshold of their plan for the
//! first time this cycle, the same transaction records the alert on the
//! account and queues the email. The account's version condition makes
//! concurrent changes crossing together send one email: the second reads
//! the alert the first recorded.

use super::command::{Ctx, Effect, Snapshot};
use crate::account::Account;
use crate::alerts::crossed;
use crate::email::low_balance;
use crate::options::credit_options;
use crate::store::Write;

/// Adds the low-balance alert, if the effect's change of the snapshot's
/// account crosses a threshold not yet alerted this cycle. An account whose
/// plan the catalogue lost has only the threshold 0 ("you have run out"),
/// and no email can say how to get more: the crossing is logged as an error
/// and not recorded, so that a crossing once the plan is back sends it.
pub fn apply(effect: &mut Effect, snapshot: &Snapshot, ctx: &Ctx<'_>) {
    let Some(account) = snapshot.account.as_ref() else { return };
    let Some(change) = effect.writes.iter_mut().find_map(|w| match w {
        Write::Change(c) if c.user_id == account.user_id => Some(c),
        _ => None,
    }) else {
        return;
    };
    let Some(after) = change.entries.last().map(|e| e.balance_after) else { return };
    let thresholds = account.current_plan(ctx.catalogue()).map_or_else(|_| vec![0], |p| p.low_balance_thresholds());
    let hit = crossed(&thresholds, account.balance.total(), after.total(), &account.low_balance_alerted);
    let Some(&lowest) = hit.last() else { return };
    let now_account = Account { balance: after, ..account.clone() };
    let options = match credit_options(&now_account, ctx.catalogue(), &ctx.config.referral_base_url) {
        Ok(options) => options,
        Err(e) => {
            let user = crate::types::redact(&account.user_id);
            tracing::error!(%user, error = %e, threshold = lowest, "low-balance alert not sent");
            return;
        }
    };
    let mut alerted = account.low_balance_alerted.clone();
    alerted.extend(&hit);
    change.low_balance_alerted = Some(alerted);
    effect.emails.push(low_balance(ctx.letters(), &account.user_id, &account.email, lowest, &options, ctx.now));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::fixtures::account;
    use crate::account::Entries;
    use crate::balance::{Balance, Delta};
    use crate::config::Config;
    use crate::http::Reply;
    use crate::ledger::EntryKind;

    fn spend_effect(account: &Account, credits: i64) -> Effect {
        let mut entries = Entries::on(account, account.cycle.start);
        entries.push(EntryKind::Spend, Delta::plan(-credits), "s").expect("fits");
        Effect { reply: Reply::Created("{}".into()), writes: vec![Write::Change(entries.finish())], emails: Vec::new() }
    }

    fn run(account: Account, credits: i64) -> Effect {
        let config = Config::for_tests();
        let ctx = Ctx { config: &config, now: account.cycle.start, fresh_code: "ZZZZ2222" };
        let mut effect = spend_effect(&account, credits);
        apply(&mut effect, &Snapshot { account: Some(account), ..Snapshot::default() }, &ctx);
        effect
    }

    fn alerted(effect: &Effect) -> Option<Vec<i64>> {
        match effect.writes.first() {
            Some(Write::Change(c)) => c.low_balance_alerted.clone(),
            _ => None,
        }
    }

    #[test]
    fn crossing_ten_per_cent_records_it_and_queues_one_personalised_email() {
        let a = account("u", "free", "2026-01-31T10:00:00Z", Balance { plan: 1_000, ..Balance::default() });
        let effect = run(a, 950);
        assert_eq!(alerted(&effect), Some(vec![100]));
        assert_eq!(effect.emails.len(), 1);
        let email = &effect.emails[0];
        assert_eq!(email.subject, "You have 50 credits left");
        assert!(email.text.contains("balance is down to 50 credits."), "{}", email.text);
        assert!(email.text.contains("Flexible credits can be bought on the pro or business plan."), "{}", email.text);
        assert!(email.text.contains("signup?ref=ABCD2345: you earn 250 credits"), "{}", email.text);
        assert!(email.text.contains("Upgrade to business: it adds 19,000 credits right away"), "{}", email.text);
    }

    #[test]
    fn not_crossing_or_crossing_again_in_the_cycle_sends_nothing() {
        let a = account("u", "free", "2026-01-31T10:00:00Z", Balance { plan: 1_000, ..Balance::default() });
        let effect = run(a.clone(), 899);
        assert!(effect.emails.is_empty() && alerted(&effect).is_none());
        let mut already = a;
        already.low_balance_alerted = vec![100];
        let effect = run(already, 950);
        assert!(effect.emails.is_empty() && alerted(&effect).is_none());
    }

    #[test]
    fn running_out_alerts_the_zero_threshold_after_the_ten_per_cent_one() {
        let mut a = account("u", "free", "2026-01-31T10:00:00Z", Balance { plan: 60, ..Balance::default() });
        a.low_balance_alerted = vec![100];
        let effect = run(a, 60);
        assert_eq!(alerted(&effect), Some(vec![100, 0]));
        assert_eq!(effect.emails[0].subject, "You have 0 credits left");
    }

    #[test]
    fn running_out_on_a_plan_the_catalogue_lost_is_not_recorded_as_alerted() {
        // No email can be written without the plan, so none is marked
        // sent: the alert goes out once the plan is back in the catalogue.
        let a = account("u", "retired", "2026-01-31T10:00:00Z", Balance { plan: 60, ..Balance::default() });
        let effect = run(a, 60);
        assert!(effect.emails.is_empty());
        assert_eq!(alerted(&effect), None);
    }
}
