//! The scheduled rollover: every account whose cycle has ended, found through
//! the sharded schedule index, rolled over exactly once per cycle.
//!
//! Exactly once: each account's write is conditioned on its version and on
//! its stored cycle end, so of any number of racing invocations one write
//! wins and the others, re-reading, find the account no longer due. Each
//! write is one transaction: an account is never left half-rolled.

use super::{Budget, Retry};
use crate::account::Account;
use crate::cycle::Time;
use crate::rollover::{rollover, MAX_CYCLES_PER_WRITE};
use crate::store::{CommitError, Queue, StoreError, SCHEDULE_SHARDS};
use crate::App;
use futures::stream::{self, StreamExt};
use serde::Serialize;

/// Due accounts per page of the schedule index; read 100 at a time
/// (`BatchGetItem`'s limit).
pub const PAGE: i32 = 1_000;

/// Concurrent account writes of one invocation.
pub const CONCURRENCY: usize = 32;

/// What one invocation did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Accounts this invocation rolled over.
    pub rolled_over: u64,
    /// Cycles they caught up, together.
    pub cycles: u64,
    /// Whether due accounts were left for the next run (out of time, or an
    /// account's write failed and will be retried).
    pub remaining: bool,
}

enum Outcome {
    Rolled(u32),
    NotDue,
    OutOfTime,
    Failed,
}

/// Rolls over every account due at `now`, within `budget`, with at most
/// `concurrency` account writes in flight.
pub async fn run(app: &App, now: Time, budget: &Budget, concurrency: usize) -> Result<Report, StoreError> {
    let mut report = Report::default();
    for shard in 0..SCHEDULE_SHARDS {
        let mut start = None;
        loop {
            if budget.exhausted() {
                report.remaining = true;
                return Ok(report);
            }
            let page = app.store.due(Queue::Due, shard, now, PAGE, start).await?;
            for ids in page.ids.chunks(100) {
                if budget.exhausted() {
                    report.remaining = true;
                    return Ok(report);
                }
                let accounts = app.store.accounts(ids).await?;
                let outcomes: Vec<Outcome> = stream::iter(accounts)
                    .map(|account| roll_account(app, account, now, budget))
                    .buffer_unordered(concurrency.max(1))
                    .collect()
                    .await;
                for outcome in outcomes {
                    match outcome {
                        Outcome::Rolled(cycles) => {
                            report.rolled_over += 1;
                            report.cycles += u64::from(cycles);
                        }
                        Outcome::NotDue => {}
                        Outcome::OutOfTime | Outcome::Failed => report.remaining = true,
                    }
                }
            }
            start = page.next;
            if start.is_none() {
                break;
            }
        }
    }
    Ok(report)
}

/// Rolls one account over until it is current, one transaction per
/// [`MAX_CYCLES_PER_WRITE`] cycles.
async fn roll_account(app: &App, mut account: Account, now: Time, budget: &Budget) -> Outcome {
    let mut cycles = 0;
    let mut retry = Retry::new();
    loop {
        let Some(step) = rollover(&account, &app.config.catalogue, now, MAX_CYCLES_PER_WRITE) else {
            return if cycles > 0 { Outcome::Rolled(cycles) } else { Outcome::NotDue };
        };
        if budget.exhausted() {
            return if cycles > 0 { Outcome::Rolled(cycles) } else { Outcome::OutOfTime };
        }
        let mut tx = app.store.tx_unkeyed();
        tx.change_account(&account, &step.change);
        let reread = match app.store.commit(tx).await {
            Ok(()) => {
                cycles += step.cycles;
                if step.caught_up {
                    return Outcome::Rolled(cycles);
                }
                true
            }
            // Another invocation (or a request) wrote the account first.
            Err(CommitError::Stale(_)) => retry.again("account changed since it was read").await.is_ok(),
            Err(CommitError::Conflict) => retry.again("transaction conflict").await.is_ok(),
            Err(e) => {
                tracing::warn!(user = %crate::types::redact(&account.user_id), error = %e, "rollover write failed; left for the next run");
                false
            }
        };
        if !reread {
            return if cycles > 0 { Outcome::Rolled(cycles) } else { Outcome::Failed };
        }
        account = match app.store.account(&account.user_id).await {
            Ok(Some(fresh)) => fresh,
            Ok(None) => return Outcome::NotDue,
            Err(e) => {
                tracing::warn!(error = %e, "rollover re-read failed; left for the next run");
                return Outcome::Failed;
            }
        };
    }
}
