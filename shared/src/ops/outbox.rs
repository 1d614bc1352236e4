//! The scheduled email sender: every pending email whose next attempt is due,
//! claimed one at a time so concurrent runs never send the same email twice,
//! with backoff between attempts and a final `failed` state.

use super::Budget;
use crate::cycle::Time;
use crate::email::{backoff, Mailer, SendError, MAX_ATTEMPTS};
use crate::store::{Queue, StoreError, SCHEDULE_SHARDS};
use crate::App;
use serde::Serialize;
use std::time::Duration;

/// How long a claim keeps other runs off an email: longer than one send.
pub const LEASE: chrono::Duration = chrono::Duration::minutes(5);

/// Pause after the first throttle; it doubles while SES keeps throttling.
const FIRST_PAUSE: Duration = Duration::from_millis(200);
/// Longest pause between two sends.
const MAX_PAUSE: Duration = Duration::from_secs(10);

/// What one run did.
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
    /// Whether due emails were left for the next run.
    pub remaining: bool,
}

/// Sends the emails due at `now`, within `budget`.
pub async fn run(app: &App, mailer: &Mailer, now: Time, budget: &Budget) -> Result<Report, StoreError> {
    let mut report = Report::default();
    let mut pause = Duration::ZERO;
    for shard in 0..SCHEDULE_SHARDS {
        let mut start = None;
        loop {
            if budget.exhausted() {
                report.remaining = true;
                return Ok(report);
            }
            let page = app.store.due(Queue::Outbox, shard, now, 100, start).await?;
            for id in &page.ids {
                if budget.exhausted() {
                    report.remaining = true;
                    return Ok(report);
                }
                let Some(email) = app.store.claim_email(id, now, now + LEASE).await? else {
                    continue; // another run has it, or it was sent meanwhile
                };
                loop {
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                    match mailer.send_parts(&email.to, &email.subject, &email.text, &email.html).await {
                        Ok(message_id) => {
                            app.store.email_sent(&email.id, &message_id, now).await?;
                            report.sent += 1;
                            pause /= 2;
                            break;
                        }
                        Err(SendError::Throttled(e)) => {
                            // Not the email's fault: slow down, keep its attempts.
                            report.throttled += 1;
                            pause = (pause * 2).clamp(FIRST_PAUSE, MAX_PAUSE);
                            tracing::warn!(email_id = %email.id, pause_ms = pause.as_millis() as u64, error = %e, "SES throttled; slowing down");
                            if !budget.allows(pause) {
                                app.store.email_release(&email.id, now).await?;
                                report.remaining = true;
                                return Ok(report);
                            }
                        }
                        Err(SendError::Failed(e)) => {
                            let attempts = email.attempts + 1;
                            if attempts >= MAX_ATTEMPTS {
                                tracing::error!(email_id = %email.id, kind = %email.kind, attempts, error = %e, "email failed for good");
                                app.store.email_failed(&email.id, attempts, &e).await?;
                                report.failed += 1;
                            } else {
                                let next = now + backoff(attempts);
                                tracing::warn!(email_id = %email.id, attempts, error = %e, "email attempt failed");
                                app.store.email_attempt_failed(&email.id, attempts, next, &e).await?;
                                report.retried += 1;
                            }
                            break;
                        }
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
