//! The one protocol every mutating route runs, and the shape of a route's
//! rules: a [`Command`] whose [`Command::decide`] is a pure function of the
//! request, what was read, the catalogue and the time.
//!
//! 1. One read (`TransactGetItems`): the request's idempotency record, its
//!    user's account and, where it names them, a referral code's owner and
//!    a purchase of the user's.
//! 2. A record answers at once: the original body (a replay) when the
//!    request hashes the same, 409 `idempotency_conflict` when it does not.
//! 3. Accounts the decision needs besides the user's ([`Command::related`]:
//!    a referrer about to be paid) are read, consistently, one by one.
//! 4. The decision: the reply, the writes, the emails; or a 4xx. Routes that
//!    can lower a balance also get the low-balance alert (`super::alerts`).
//! 5. One `TransactWriteItems`: the record first (it must not exist), then
//!    every write under its condition, the ledger entries, the emails.
//! 6. A failed condition on the record is a replay or a conflict. Any other
//!    failed condition means something read is stale (an account changed, a
//!    referral code was taken): back to 1, with jittered backoff, as for a
//!    `TransactionConflict` on the write or on the read. After
//!    [`MAX_ATTEMPTS`] the answer is 503 `unavailable`, safe to retry.
//! 7. After the commit, the emails are sent and marked sent; a failure there
//!    leaves them pending for the scheduled sender and never fails the request.

use crate::account::Account;
use crate::config::Config;
use crate::cycle::{now, Time};
use crate::email::OutboxEmail;
use crate::hold::Hold;
use crate::http::{ApiError, Reply};
use crate::idempotency::{Canonical, IdemRecord, RecordKey, RequestHash, Route};
use crate::letters::Letters;
use crate::plans::Catalogue;
use crate::referral::new_code;
use crate::store::{CommitError, Lookups, PurchaseFacts, StoreError, Write};
use crate::types::UserId;
use crate::App;
use std::time::Duration;

/// What a decision may use besides the request and the snapshot.
#[derive(Clone, Copy, Debug)]
pub struct Ctx<'a> {
    /// Plans, bonuses, the brand and its email templates, referral links.
    pub config: &'a Config,
    /// The time of this attempt, whole seconds.
    pub now: Time,
    /// A referral code drawn for this attempt (a new account claims it; a
    /// collision makes the next attempt draw another).
    pub fresh_code: &'a str,
}

impl<'a> Ctx<'a> {
    /// Plans and bonuses.
    pub fn catalogue(&self) -> &'a Catalogue {
        &self.config.catalogue
    }

    /// The brand and email templates.
    pub fn letters(&self) -> &'a Letters {
        &self.config.letters
    }
}

/// What was read for a request.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The account of the request's user.
    pub account: Option<Account>,
    /// The owner of the referral code the request names, if anyone owns it.
    pub code_owner: Option<String>,
    /// The purchase the request names, if the user made it.
    pub purchase: Option<PurchaseFacts>,
    /// The hold the request names, if the user has it.
    pub hold: Option<Hold>,
    /// The accounts [`Command::related`] asked for that exist.
    pub related: Vec<Account>,
}

impl Snapshot {
    /// The user's account; 404 `account_not_found` where there is none.
    pub fn account(&self) -> Result<&Account, ApiError> {
        self.account.as_ref().ok_or_else(ApiError::account_not_found)
    }

    /// A related account, if it exists.
    pub fn related(&self, user_id: &str) -> Option<&Account> {
        self.related.iter().find(|a| a.user_id == user_id)
    }
}

/// What a request does: its answer, and what commits with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effect {
    /// The answer, which the idempotency record keeps for replays.
    pub reply: Reply,
    /// The writes, each under its condition.
    pub writes: Vec<Write>,
    /// Emails queued in the outbox by the same transaction.
    pub emails: Vec<OutboxEmail>,
}

/// A validated mutating request: what the executor needs to know of it,
/// and its rules.
pub trait Command {
    /// The route, which scopes the key.
    const ROUTE: Route;

    /// Whether the route can take a balance below a low-balance threshold
    /// (see [`super::alerts`]).
    const LOWERS_BALANCE: bool = false;

    /// The user the request is about.
    fn user(&self) -> &UserId;

    /// The request's idempotency key.
    fn key(&self) -> &str;

    /// The request as its hash sees it (fields as sent, in a fixed order).
    fn canonical(&self) -> Canonical;

    /// The answer when the key was used before with another request: 409
    /// `idempotency_conflict` unless the route's contract says otherwise.
    fn mismatch(&self) -> ApiError {
        ApiError::idempotency_conflict(Self::ROUTE.key_field())
    }

    /// What the first read looks up besides the user's account and the
    /// request's record: a referral code's owner, a purchase.
    fn lookups(&self) -> Lookups {
        Lookups::default()
    }

    /// Other accounts the decision needs, by id, once the first read is in.
    fn related(&self, _snapshot: &Snapshot, _ctx: &Ctx<'_>) -> Result<Vec<String>, ApiError> {
        Ok(Vec::new())
    }

    /// The rules: what the request does, given what was read. Pure.
    fn decide(&self, snapshot: &Snapshot, ctx: &Ctx<'_>) -> Result<Effect, ApiError>;
}

/// Runs a command through the protocol above.
pub async fn execute<C: Command>(app: &App, command: &C) -> Result<Reply, ApiError> {
    let hash = command.canonical().hash();
    let key = RecordKey { route: C::ROUTE, user_id: command.user().to_string(), key: command.key().to_owned() };
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
            related: Vec::new(),
        };
        for id in command.related(&snapshot, &ctx)? {
            if let Some(account) = app.store.account(&id).await? {
                snapshot.related.push(account);
            }
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
        };
        let mut tx = app.store.tx(&key, &record);
        for write in &effect.writes {
            tx.write(write);
        }
        for email in &effect.emails {
            tx.queue_email(email);
        }
        match app.store.commit(tx).await {
            Ok(()) => {
                if let Some(mailer) = &app.mailer {
                    super::outbox::deliver(&app.store, mailer, &effect.emails, ctx.now).await;
                }
                return Ok(effect.reply);
            }
            Err(CommitError::Duplicate(returned)) => {
                let record = match returned {
                    Some(record) => *record,
                    None => app.store.record(&key).await?.ok_or_else(|| {
                        ApiError::internal("transaction refused as a duplicate, but no record is stored")
                    })?,
                };
                return replay(&record, &hash).ok_or_else(|| command.mismatch());
            }
            Err(CommitError::Stale(role)) => retry.again(&format!("condition failed on {role:?}")).await?,
            Err(CommitError::Conflict) => retry.again("transaction conflict").await?,
            Err(CommitError::Store(e)) => return Err(e.into()),
        }
    }
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

    #[test]
    fn a_replay_answers_the_original_body_or_a_conflict() {
        let hash = Canonical::new(Route::Purchase).text("payment_id", "p").hash();
        let at = parse_time("2026-01-01T00:00:00Z").expect("time");
        let record = IdemRecord { request_hash: hash.stored().to_owned(), status: 201, body: "{}".into(), at };
        assert_eq!(replay(&record, &hash), Some(Reply::Replayed("{}".into())));
        let other = Canonical::new(Route::Purchase).text("payment_id", "q").hash();
        assert_eq!(replay(&record, &other), None);
    }
}
