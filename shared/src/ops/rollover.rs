//! The scheduled rollover: every account whose cycle has ended, found through
//! the sharded schedule index, rolled over exactly once per cycle.
//!
//! Exactly once: each account's write is conditioned on its version and on
//! its stored cycle end, so of any number of racing invocations one write
//! wins and the others, re-reading, find the account no longer due. Each
//! write is one transaction: an account is never left half-rolled. An
//! account that cannot be rolled over (its plan left the catalogue, a bucket
//! would overflow, its stored item does not decode, its write kept failing)
//! is logged with the reason, counted in the report's `errors`, left
//! untouched, and does not stop the others.

use super::execute::Retry;
use super::schedule::{persist, Budget, ShardGroup};
use crate::account::Account;
use crate::cycle::Time;
use crate::plans::Catalogue;
use crate::rollover::{rollover, MAX_CYCLES_PER_WRITE};
use crate::store::{CommitError, Queue, Store};
use crate::types::redact;
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
    /// Accounts this invocation rolled over (at least one cycle each).
    pub rolled_over: u64,
    /// Cycles they caught up, together.
    pub cycles: u64,
    /// Due accounts (or pages of them) that could not be rolled over; each
    /// is logged with its reason.
    pub errors: u64,
    /// Whether due accounts were left for the next run: out of time, an
    /// account not yet current, or an error.
    pub remaining: bool,
}

/// What became of one due account.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    /// Cycles caught up by this invocation.
    cycles: u32,
    /// How it ended.
    end: End,
}

#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Current now (or no longer due: another invocation got there first).
    Current,
    /// Out of time before it was current.
    OutOfTime,
    /// Its rules refuse it (a plan the catalogue lost, an overflow): no
    /// retry can roll it over; the reason is logged.
    Failed,
    /// A store call failed (throttled, unreachable, conflicting past its
    /// retries): a later try may succeed; logged.
    StoreFailed,
}

impl Report {
    fn add(&mut self, outcome: Outcome) {
        if outcome.cycles > 0 {
            self.rolled_over += 1;
            self.cycles += u64::from(outcome.cycles);
        }
        match outcome.end {
            End::Current => {}
            End::OutOfTime => self.remaining = true,
            End::Failed | End::StoreFailed => {
                self.errors += 1;
                self.remaining = true;
            }
        }
    }
}

/// Rolls over every account of `shards` due at `now`, within `budget`, with
/// at most `concurrency` account writes in flight.
pub async fn run(
    store: &Store,
    catalogue: &Catalogue,
    now: Time,
    shards: ShardGroup,
    budget: &Budget,
    concurrency: usize,
) -> Report {
    let mut report = Report::default();
    for shard in shards.shards() {
        let mut start = None;
        loop {
            if budget.exhausted() {
                report.remaining = true;
                return report;
            }
            let page =
                persist(budget, "rollover query", || store.due(Queue::Due, shard, now, PAGE, start.clone())).await;
            let page = match page {
                Ok(page) => page,
                Err(e) => {
                    tracing::error!(shard, error = %e, "rollover query failed; the shard is left for the next run");
                    report.errors += 1;
                    report.remaining = true;
                    break;
                }
            };
            for ids in page.ids.chunks(100) {
                if budget.exhausted() {
                    report.remaining = true;
                    return report;
                }
                let accounts = match persist(budget, "rollover batch read", || {
                    store.accounts(ids, |pause| budget.allows(pause))
                })
                .await
                {
                    Ok(accounts) => accounts,
                    Err(e) => {
                        tracing::error!(shard, accounts = ids.len(), error = %e, "rollover batch read failed; left for the next run");
                        report.errors += 1;
                        report.remaining = true;
                        continue;
                    }
                };
                let mut readable = Vec::with_capacity(accounts.len());
                for account in accounts {
                    match account {
                        Ok(account) => readable.push(account),
                        Err(e) => {
                            tracing::error!(shard, error = %e, "due account cannot be read; left untouched");
                            report.add(Outcome { cycles: 0, end: End::Failed });
                        }
                    }
                }
                let outcomes: Vec<Outcome> = stream::iter(readable)
                    .map(|account| roll_account(store, catalogue, account, now, budget))
                    .buffer_unordered(concurrency.max(1))
                    .collect()
                    .await;
                for outcome in outcomes {
                    report.add(outcome);
                }
            }
            start = page.next;
            if start.is_none() {
                break;
            }
        }
    }
    report
}

/// What [`catch_up`] made of a due account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatchUp {
    /// Current now, rolled over by this call or by another writer first:
    /// what was read of it is stale.
    Current,
    /// Still behind when `budget` ran out (thousands of cycles).
    Behind,
    /// Its rules refuse it (logged, as by the scheduled run): it is decided
    /// on as it is.
    Failed,
    /// The store failed it (logged): its ended cycle still stands, so
    /// nothing may be decided on it until it is rolled over.
    Unavailable,
}

/// Rolls over, before a request decides on it, an account whose cycle has
/// ended: the scheduled run's writes for that one account, now, within
/// `budget`.
pub async fn catch_up(store: &Store, catalogue: &Catalogue, account: Account, now: Time, budget: &Budget) -> CatchUp {
    match roll_account(store, catalogue, account, now, budget).await.end {
        End::Current => CatchUp::Current,
        End::OutOfTime => CatchUp::Behind,
        End::Failed => CatchUp::Failed,
        End::StoreFailed => CatchUp::Unavailable,
    }
}

/// Rolls one account over until it is current, one transaction per
/// [`MAX_CYCLES_PER_WRITE`] cycles.
async fn roll_account(
    store: &Store,
    catalogue: &Catalogue,
    mut account: Account,
    now: Time,
    budget: &Budget,
) -> Outcome {
    let user_id = account.user_id.clone();
    let user = redact(&user_id);
    let mut cycles = 0;
    let mut retry = Retry::new();
    loop {
        let step = match rollover(&account, catalogue, now, MAX_CYCLES_PER_WRITE) {
            Ok(Some(step)) => step,
            Ok(None) => return Outcome { cycles, end: End::Current },
            Err(e) => {
                tracing::error!(%user, plan = %account.plan, error = %e, "account cannot be rolled over; left untouched");
                return Outcome { cycles, end: End::Failed };
            }
        };
        if budget.exhausted() {
            return Outcome { cycles, end: End::OutOfTime };
        }
        let mut tx = store.tx_unkeyed();
        tx.change_account(&step.change);
        let why = match store.commit(tx).await {
            Ok(()) => {
                cycles += step.cycles;
                if step.caught_up {
                    return Outcome { cycles, end: End::Current };
                }
                None
            }
            // Another invocation (or a request) wrote the account first.
            Err(CommitError::Stale(_)) => Some("account changed since it was read"),
            Err(CommitError::Conflict) => Some("transaction conflict"),
            Err(e) => {
                tracing::error!(%user, error = %e, "rollover write failed; left for the next run");
                return Outcome { cycles, end: End::StoreFailed };
            }
        };
        if let Some(why) = why {
            if let Err(e) = retry.again(why).await {
                tracing::error!(%user, error = ?e.detail, "rollover write kept conflicting; left for the next run");
                return Outcome { cycles, end: End::StoreFailed };
            }
        }
        account = match persist(budget, "rollover re-read", || store.account(&user_id)).await {
            Ok(Some(fresh)) => fresh,
            Ok(None) => return Outcome { cycles, end: End::Current },
            Err(e) => {
                tracing::error!(%user, error = %e, "rollover re-read failed; left for the next run");
                return Outcome { cycles, end: End::StoreFailed };
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_catch_up_or_a_failure_leaves_work_remaining() {
        let mut report = Report::default();
        report.add(Outcome { cycles: 1, end: End::Current });
        assert_eq!(report, Report { rolled_over: 1, cycles: 1, errors: 0, remaining: false });
        report.add(Outcome { cycles: 40, end: End::OutOfTime });
        assert_eq!(report, Report { rolled_over: 2, cycles: 41, errors: 0, remaining: true });
        let mut report = Report::default();
        report.add(Outcome { cycles: 40, end: End::Failed });
        report.add(Outcome { cycles: 0, end: End::StoreFailed });
        assert_eq!(report, Report { rolled_over: 1, cycles: 40, errors: 2, remaining: true });
    }
}
