//! Sending outbox emails: right after the commit that queued them
//! ([`deliver`]), and by the scheduled `email-outbox` function ([`run`]) for
//! every email still pending, claimed one at a time so concurrent runs never
//! send the same email twice, with backoff between attempts and a final
//! `failed` state.

use super::schedule::{persist, Budget};
use crate::cycle::{format_time, Time};
use crate::email::{backoff, Mailer, OutboxEmail, SendError, MAX_ATTEMPTS};
use crate::store::{Queue, Store, StoreError, SCHEDULE_SHARDS};
use crate::types::redact;
use serde::Serialize;
use std::future::Future;
use std::time::{Duration, Instant};

/// How long a claim keeps other runs off an email: longer than one send.
pub const LEASE: chrono::Duration = chrono::Duration::minutes(5);

/// Pause after the first throttle; it doubles while SES keeps throttling.
const FIRST_PAUSE: Duration = Duration::from_millis(200);
/// Longest pause between two sends.
const MAX_PAUSE: Duration = Duration::from_secs(10);

/// Time an email's send and its sent mark may take after a request's commit:
/// the longest an SES call takes ([`crate::sdk::OPERATION_TIMEOUT`], its
/// retries included) and a second for the mark.
pub const SEND_TIME: Duration = Duration::from_secs(crate::sdk::OPERATION_TIMEOUT.as_secs() + 1);

/// Time kept to answer, after the last email's sent mark.
const ANSWER_TIME: Duration = Duration::from_millis(300);

/// Sends freshly committed emails and records the outcome of each, while
/// the invocation's time (`until`, its deadline) leaves [`SEND_TIME`] for
/// each: a request that has committed answers in time, whatever SES does.
/// Never fails: whatever goes wrong, or is not started, leaves the email
/// pending for the scheduled sender (due [`crate::email::FIRST_SEND_GRACE`]
/// after the commit), and is logged.
pub async fn deliver(store: &Store, mailer: &Mailer, emails: &[OutboxEmail], now: Time, until: Option<Instant>) {
    let left = || until.map(|until| until.saturating_duration_since(Instant::now()));
    for email in emails {
        let to = redact(&email.to);
        if left().is_some_and(|left| left < SEND_TIME) {
            tracing::warn!(email_id = %email.id, kind = email.kind.as_str(), %to,
                "too little of the invocation left to wait for SES; left pending for email-outbox");
            continue;
        }
        match mailer.send(email).await {
            // SES has it: a lost mark means the scheduled sender sends it again.
            Ok(message_id) => {
                let unbounded = Budget::unbounded();
                let mark = persist(&unbounded, "mark sent", || store.email_sent(&email.id, &message_id, now));
                let marked = in_time(until, mark).await;
                match marked {
                    Ok(()) => tracing::info!(email_id = %email.id, kind = email.kind.as_str(), %to, "email sent"),
                    Err(e) => {
                        tracing::warn!(email_id = %email.id, error = %e, "email sent but not marked sent; it may be sent again")
                    }
                }
            }
            Err(e) => {
                // A throttle or an SES that sends nothing for now is not
                // the email's fault: it costs no attempt.
                let attempts = u32::from(matches!(e, SendError::Failed(_)));
                let next = now + backoff(1);
                tracing::warn!(email_id = %email.id, kind = email.kind.as_str(), %to, error = %e,
                    next_attempt_at = %format_time(next), "email not sent; left pending");
                let error = e.to_string();
                if let Err(e) = in_time(until, store.email_attempt_failed(&email.id, attempts, next, &error)).await {
                    tracing::warn!(email_id = %email.id, error = %e, "could not record the failed attempt");
                }
            }
        }
    }
}

/// A store call after a request's send, cut short [`ANSWER_TIME`] before
/// the invocation's deadline `until`.
async fn in_time<T>(
    until: Option<Instant>,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let Some(until) = until else { return call.await };
    let left = until.saturating_duration_since(Instant::now()).saturating_sub(ANSWER_TIME);
    tokio::time::timeout(left, call)
        .await
        .unwrap_or_else(|_| Err(StoreError::Unavailable("no time left in the invocation".into())))
}

/// What one scheduled run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Emails SES accepted.
    pub sent: u64,
    /// Failed attempts, due again after their backoff.
    pub retried: u64,
    /// Emails given up on after their last attempt.
    pub failed: u64,
    /// Times SES throttled the run (attempts not counted).
    pub throttled: u64,
    /// Store errors that outlasted their retries, and SES saying it sends
    /// nothing (paused, suspended; the run stops there): each is logged,
    /// and the email or page it concerned is left for a later run.
    pub errors: u64,
    /// Whether due emails were left for the next run.
    pub remaining: bool,
}

/// Sends the emails due at `now`, within `budget`, starting at the shard of
/// `now`'s minute: a backlog larger than one run can send is worked through
/// from a shard further along each run (every 5 minutes, and 5 and 16 have no
/// common factor), so no shard waits behind the others.
pub async fn run(store: &Store, mailer: &Mailer, now: Time, budget: &Budget) -> Report {
    let mut run = Run { store, mailer, now, budget, report: Report::default(), pause: Duration::ZERO };
    for shard in shard_order(now) {
        if !run.shard(shard).await {
            run.report.remaining = true;
            break;
        }
    }
    run.report
}

/// The shards in the order a run at `now` takes them.
fn shard_order(now: Time) -> impl Iterator<Item = u32> {
    let first = u32::try_from(now.timestamp().div_euclid(60).rem_euclid(i64::from(SCHEDULE_SHARDS))).unwrap_or(0);
    (0..SCHEDULE_SHARDS).map(move |i| (first + i) % SCHEDULE_SHARDS)
}

struct Run<'a> {
    store: &'a Store,
    mailer: &'a Mailer,
    now: Time,
    budget: &'a Budget,
    report: Report,
    /// The pause between sends, while SES throttles.
    pause: Duration,
}

impl Run<'_> {
    /// Sends what is due in one shard; `false` once out of time.
    async fn shard(&mut self, shard: u32) -> bool {
        let mut start = None;
        loop {
            if self.budget.exhausted() {
                return false;
            }
            let page = persist(self.budget, "outbox query", || {
                self.store.due(Queue::Outbox, shard, self.now, 100, start.clone())
            })
            .await;
            let page = match page {
                Ok(page) => page,
                Err(e) => {
                    tracing::error!(shard, error = %e, "outbox query failed; the shard is left for the next run");
                    self.report.errors += 1;
                    self.report.remaining = true;
                    return true;
                }
            };
            for id in &page.ids {
                if !self.email(id).await {
                    return false;
                }
            }
            start = page.next;
            if start.is_none() {
                return true;
            }
        }
    }

    /// Claims and sends one email; `false` once out of time.
    async fn email(&mut self, id: &str) -> bool {
        if self.budget.exhausted() {
            return false;
        }
        let claimed = match self.store.claim_email(id, self.now, self.clock() + LEASE).await {
            Ok(Some(claimed)) => claimed,
            Ok(None) => return true, // another run has it, or it was sent meanwhile
            Err(e) => return self.store_error(id, "claim", &e),
        };
        let email = match &claimed.email {
            Ok(email) => email,
            // Claimed, but its item does not decode (a kind of a newer
            // release, mid-deploy): a failed attempt, so that a later run
            // can still send it, and the last attempt fails it, instead of
            // its being claimed for ever.
            Err(why) => {
                let why = format!("the stored email does not decode: {why}");
                return self.failed_attempt(id, "unknown", claimed.attempts, &why).await;
            }
        };
        loop {
            // The claim took time too, and a pause left by an earlier
            // throttle would: both must leave the send and its mark time
            // before the deadline, or SES could accept the email and the
            // invocation end before the mark (a second copy after the lease).
            if !self.budget.allows(self.pause) {
                self.hand_back(&email.id).await;
                return false;
            }
            if !self.pause.is_zero() {
                tokio::time::sleep(self.pause).await;
            }
            match self.mailer.send(email).await {
                Ok(message_id) => {
                    self.report.sent += 1;
                    self.pause /= 2;
                    // SES has it: losing the mark would send it again after
                    // the lease, so the mark is retried while time allows.
                    let marked =
                        persist(self.budget, "mark sent", || self.store.email_sent(&email.id, &message_id, self.now))
                            .await;
                    if let Err(e) = marked {
                        return self.store_error(&email.id, "mark sent", &e);
                    }
                    return true;
                }
                Err(SendError::Throttled(e)) => {
                    // Not the email's fault: slow down, keep its attempts.
                    self.report.throttled += 1;
                    self.pause = (self.pause * 2).clamp(FIRST_PAUSE, MAX_PAUSE);
                    tracing::warn!(email_id = %email.id, pause_ms = self.pause.as_millis() as u64, error = %e, "SES throttled; slowing down");
                }
                Err(SendError::Unavailable(e)) => {
                    // Whatever the email: the others would fare the same.
                    // No attempt is counted, so an SES pause longer than the
                    // attempts' 26.5 hours fails nothing; the run stops.
                    tracing::error!(email_id = %email.id, error = %e, "SES is not sending; the run stops and the emails stay pending");
                    self.report.errors += 1;
                    self.hand_back(&email.id).await;
                    return false;
                }
                Err(SendError::Failed(e)) => {
                    return self.failed_attempt(&email.id, email.kind.as_str(), claimed.attempts, &e).await
                }
            }
        }
    }

    /// Hands a claimed email back, due at once, for the next run.
    async fn hand_back(&mut self, id: &str) {
        if let Err(e) = self.store.email_release(id, self.now).await {
            self.store_error(id, "release", &e);
        }
    }

    /// Records a failed attempt of a claimed email (`attempts` before it):
    /// due again after its backoff, or `failed` after the last.
    async fn failed_attempt(&mut self, id: &str, kind: &str, attempts: u32, error: &str) -> bool {
        let attempts = attempts + 1;
        let recorded = if attempts >= MAX_ATTEMPTS {
            tracing::error!(email_id = %id, kind, attempts, error, "email failed for good");
            self.report.failed += 1;
            self.store.email_failed(id, attempts, error).await
        } else {
            tracing::warn!(email_id = %id, kind, attempts, error, "email attempt failed");
            self.report.retried += 1;
            self.store.email_attempt_failed(id, attempts, self.clock() + backoff(attempts), error).await
        };
        if let Err(e) = recorded {
            return self.store_error(id, "record the attempt", &e);
        }
        true
    }

    /// What a lease or a backoff runs from: the run's time, or the clock's
    /// if the run started late (a retried or delayed event). From the
    /// event's time a lease could have ended already, and an on-time run
    /// take the email while this one sends it.
    fn clock(&self) -> Time {
        self.now.max(crate::cycle::now())
    }

    /// Logs and counts a store error about one email, which stays pending
    /// (claimed: due again once its lease ends); the run goes on.
    fn store_error(&mut self, id: &str, what: &str, e: &StoreError) -> bool {
        tracing::error!(email_id = %id, error = %e, "outbox: could not {what}; the email stays pending");
        self.report.errors += 1;
        self.report.remaining = true;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_run_of_the_schedule_starts_at_another_shard_and_takes_them_all() {
        let start = crate::cycle::parse_time("2026-03-01T00:00:00Z").expect("time");
        let mut firsts = std::collections::BTreeSet::new();
        for run in 0..i64::from(SCHEDULE_SHARDS) {
            let order: Vec<u32> = shard_order(start + chrono::Duration::minutes(5 * run)).collect();
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..SCHEDULE_SHARDS).collect::<Vec<_>>(), "run {run}: {order:?}");
            firsts.insert(order[0]);
        }
        assert_eq!(firsts.len(), SCHEDULE_SHARDS as usize, "16 runs, 5 minutes apart, start at every shard");
    }

    #[tokio::test]
    async fn a_store_call_after_a_send_is_cut_short_before_the_deadline() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<_, StoreError>(())
        };
        let started = Instant::now();
        let cut = in_time(Some(started + ANSWER_TIME + Duration::from_millis(200)), slow).await;
        assert!(matches!(cut, Err(StoreError::Unavailable(_))), "{cut:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        // In time, or without a deadline, the call's own answer.
        let quick = in_time(Some(Instant::now() + Duration::from_secs(5)), async { Ok::<_, StoreError>(7) }).await;
        assert!(matches!(quick, Ok(7)));
        assert!(matches!(in_time(None, async { Ok::<_, StoreError>(8) }).await, Ok(8)));
    }
}
