//! The one protocol every mutating route runs: a [`Command`] (see
//! `super::command`) is read, replayed or decided, and committed.
//!
//! 1. One read (`TransactGetItems`): the request's idempotency record, its
//!    user's account and, where it names them, a referral code's owner and
//!    a purchase of the user's.
//! 2. A record answers at once: the original body (a replay) when the
//!    request hashes the same, 409 `idempotency_conflict` when it does not.
//! 3. Accounts the decision needs besides the user's ([`Command::related`]:
//!    a referrer about to be paid) are read, consistently, one by one. An
//!    account read whose cycle has ended is rolled over first, as the
//!    scheduled run would (its own transaction, exactly once), and the
//!    request reads again.
//! 4. The decision: the reply, the writes, the emails; or a 4xx. Routes that
//!    can lower a balance also get the low-balance alert (`super::alerts`).
//! 5. One `TransactWriteItems`: the record first (it must not exist), then
//!    every write under its condition, the ledger entries, the emails.
//! 6. A failed condition on the record is a replay or a conflict, unless
//!    the record is this very write's (its `writer` id): the SDK sent the
//!    transaction again after its answer was lost, and the request took
//!    effect (201, not a replay). Any other
//!    failed condition means something read is stale (an account changed, a
//!    referral code was taken): back to 1, with jittered backoff, as for a
//!    `TransactionConflict` on the write or on the read. After
//!    [`MAX_ATTEMPTS`] the answer is 503 `unavailable`, safe to retry.
//! 7. After the commit, the emails are sent and marked sent; a failure there
//!    leaves them pending for the scheduled sender and never fails the request.

use super::command::{Command, Ctx, Snapshot};
use crate::cycle::now;
use crate::http::{ApiError, Reply};
use crate::idempotency::{new_writer, IdemRecord, RecordKey, RequestHash};
use crate::referral::new_code;
use crate::store::{CommitError, StoreError};
use crate::App;
use std::time::Duration;

/// Runs a command through the protocol above.
pub async fn execute<C: Command>(app: &App, command: &C) -> Result<Reply, ApiError> {
    let hash = command.canonical().hash();
    let key = record_key(command);
    let mut retry = Retry::new();
    loop {
        let read = match app.store.request_read(&key, &command.lookups()).await {
            Ok(read) => read,
            Err(StoreError::Conflict(why)) => {
                retry.again(&why).await?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(record) = read.record {
            return replay(&record, &hash).ok_or_else(|| command.mismatch());
        }
        let fresh_code = new_code();
        let ctx = Ctx { config: &app.config, now: now(), fresh_code: &fresh_code };
        let mut snapshot = Snapshot {
            account: read.account,
            code_owner: read.code_owner,
            purchase: read.purchase,
            hold: read.hold,
            subscription: read.subscription,
            related: Vec::new(),
        };
        for id in command.related(&snapshot, &ctx)? {
            if let Some(account) = app.store.account(&id).await? {
                snapshot.related.push(account);
            }
        }
        if catch_up(app, &snapshot, &ctx).await? {
            continue;
        }
        let mut effect = command.decide(&snapshot, &ctx)?;
        if C::LOWERS_BALANCE {
            super::alerts::apply(&mut effect, &snapshot, &ctx);
        }
        let record = IdemRecord {
            request_hash: hash.stored().to_owned(),
            status: effect.reply.status(),
            body: effect.reply.body().to_owned(),
            at: ctx.now,
            writer: new_writer(),
        };
        let mut tx = app.store.tx(&key, &record);
        for write in &effect.writes {
            tx.write(write);
        }
        for email in &effect.emails {
            tx.queue_email(email);
        }
        let committed = match app.store.commit(tx).await {
            Ok(()) => true,
            Err(CommitError::Duplicate(returned)) => {
                let stored = match returned {
                    Some(stored) => *stored,
                    None => app.store.record(&key).await?.ok_or_else(|| {
                        ApiError::internal("transaction refused as a duplicate, but no record is stored")
                    })?,
                };
                // This very write, committed, its answer lost and sent again
                // by the SDK: the request took effect, and answers as such.
                if stored.writer != record.writer {
                    return replay(&stored, &hash).ok_or_else(|| command.mismatch());
                }
                true
            }
            Err(CommitError::Stale(role)) => {
                retry.again(&format!("condition failed on {role}")).await?;
                false
            }
            Err(CommitError::Conflict) => {
                retry.again("transaction conflict").await?;
                false
            }
            Err(CommitError::Store(e)) => return Err(e.into()),
        };
        if committed {
            if let Some(mailer) = &app.mailer {
                let until = crate::http::invocation_deadline();
                super::outbox::deliver(&app.store, mailer, &effect.emails, ctx.now, until).await;
            }
            return Ok(effect.reply);
        }
    }
}

/// Time a request may spend rolling accounts over: at 40 cycles a write,
/// thousands of cycles (a `signed_up_at` centuries ago); the rest is left to
/// a retry (503) or the scheduled run.
const CATCH_UP_TIME: Duration = Duration::from_secs(3);

/// Rolls over the accounts read whose cycle has ended, as the scheduled run
/// would, so that no request draws plan credits that have expired or counts
/// against a cycle that is over. Returns whether one is now current (rolled
/// over here or by another writer meanwhile): what was read of it is stale,
/// and the request reads again. An account its rules refuse to roll over is
/// decided on as it is; one still behind after [`CATCH_UP_TIME`], or whose
/// rollover the store failed, is 503.
async fn catch_up(app: &App, snapshot: &Snapshot, ctx: &Ctx<'_>) -> Result<bool, ApiError> {
    use super::rollover::CatchUp;
    let budget = super::schedule::Budget::lasting(CATCH_UP_TIME);
    let mut stale = false;
    for account in snapshot.account.iter().chain(&snapshot.related) {
        if account.cycle.end > ctx.now {
            continue;
        }
        match super::rollover::catch_up(&app.store, &app.config.catalogue, account.clone(), ctx.now, &budget).await {
            CatchUp::Current => stale = true,
            CatchUp::Failed => {}
            CatchUp::Behind => {
                return Err(ApiError::unavailable("the account's ended billing cycles are still being rolled over"))
            }
            // Deciding on the ended cycle would spend plan credits that
            // have expired: 503, safe to retry with the same key.
            CatchUp::Unavailable => {
                return Err(ApiError::unavailable("the account's ended billing cycle could not be rolled over"))
            }
        }
    }
    Ok(stale)
}

/// Where a command's idempotency record is kept.
fn record_key<C: Command>(command: &C) -> RecordKey {
    RecordKey { route: C::ROUTE, user_id: command.user().to_string(), key: command.key().to_owned() }
}

/// The answer to a request whose key was used before: the original body if
/// the request is the same, `None` (the command's mismatch error) otherwise.
/// Every replay path goes through here.
pub fn replay(record: &IdemRecord, hash: &RequestHash) -> Option<Reply> {
    hash.matches(&record.request_hash).then(|| Reply::Replayed(record.body.clone()))
}

/// Tries before an operation gives up with 503 (safe to retry).
pub const MAX_ATTEMPTS: u32 = 100;

/// Bounded retries with jittered exponential backoff, for stale snapshots and
/// transaction conflicts.
#[derive(Debug, Default)]
pub struct Retry {
    attempt: u32,
}

impl Retry {
    /// The first attempt.
    pub fn new() -> Retry {
        Retry { attempt: 0 }
    }

    /// Waits before the next attempt; 503 `unavailable` once the attempts
    /// are used up.
    pub async fn again(&mut self, why: &str) -> Result<(), ApiError> {
        self.attempt += 1;
        if self.attempt >= MAX_ATTEMPTS {
            return Err(ApiError::unavailable(format!("gave up after {} attempts: {why}", self.attempt)));
        }
        tracing::debug!(attempt = self.attempt, why, "retrying");
        let cap_ms = (2_u64 << self.attempt.min(5)).min(50);
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=cap_ms))).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cycle::parse_time;
    use crate::idempotency::{Canonical, Route};

    #[test]
    fn a_replay_answers_the_original_body_or_a_conflict() {
        let hash = Canonical::new(Route::Purchase).text("payment_id", "p").hash();
        let at = parse_time("2026-01-01T00:00:00Z").expect("time");
        let record = IdemRecord {
            request_hash: hash.stored().to_owned(),
            status: 201,
            body: "{}".into(),
            at,
            writer: "w".into(),
        };
        assert_eq!(replay(&record, &hash), Some(Reply::Replayed("{}".into())));
        let other = Canonical::new(Route::Purchase).text("payment_id", "q").hash();
        assert_eq!(replay(&record, &other), None);
    }
}
