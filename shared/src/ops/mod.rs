//! What each route does: validation, the rules, and the one transaction.
//!
//! Every mutating operation follows the same shape: parse and validate; read
//! at most one snapshot; build one transaction (idempotency record first,
//! then balance updates conditioned on the snapshot's version, ledger
//! entries, outbox emails); commit; on a stale snapshot or a transaction
//! conflict, read again and retry; after the commit, send the emails.

pub mod account;
pub mod outbox;
pub mod plan_change;
pub mod purchase;
pub mod rollover;
pub mod signup;
pub mod spend;

use crate::http::{ApiError, Reply};
use crate::store::{CommitError, IdemRecord, ReceiptKey, Role, Route, Store};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Hash of a request as parsed, scoped to its route: what a replay must match.
pub fn request_hash(route: Route, request: &impl serde::Serialize) -> Result<String, ApiError> {
    let json = crate::http::to_json(request)?;
    let digest = Sha256::new().chain_update(format!("{route:?}\n")).chain_update(json).finalize();
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// The answer to a request whose key was used before: the original body if
/// the request is the same, 409 otherwise. Every replay path goes through here.
pub fn replay(record: &IdemRecord, hash: &str, key_field: &str) -> Result<Reply, ApiError> {
    if record.request_hash == hash {
        Ok(Reply::Replayed(record.body.clone()))
    } else {
        Err(ApiError::idempotency_conflict(key_field))
    }
}

/// Replays from the record a failed conditional put returned, or, where
/// DynamoDB did not return it, from a fresh read.
pub async fn replay_duplicate(
    store: &Store,
    returned: Option<Box<IdemRecord>>,
    key: &ReceiptKey,
    hash: &str,
    key_field: &str,
) -> Result<Reply, ApiError> {
    let record = match returned {
        Some(record) => *record,
        None => store.receipt(key).await?.ok_or_else(|| {
            tracing::error!("transaction refused as a duplicate, but no record is stored");
            ApiError::internal()
        })?,
    };
    replay(&record, hash, key_field)
}

/// What a request whose transaction did not commit does next, for the
/// operations whose only conditions are the record and the accounts'
/// versions: `Some(answer)` for a replay (or a 409), `None` to read again and
/// retry (after the backoff), an error otherwise.
pub async fn after_failed_commit(
    err: CommitError,
    store: &Store,
    key: &ReceiptKey,
    hash: &str,
    key_field: &str,
    retry: &mut Retry,
) -> Result<Option<Reply>, ApiError> {
    match err {
        CommitError::Duplicate(old) => replay_duplicate(store, old, key, hash, key_field).await.map(Some),
        CommitError::Stale(Role::Account(_)) => {
            retry.again("account changed since it was read").await?;
            Ok(None)
        }
        CommitError::Stale(role) => {
            tracing::error!(?role, "unexpected condition failure");
            Err(ApiError::internal())
        }
        CommitError::Conflict => {
            retry.again("transaction conflict").await?;
            Ok(None)
        }
        CommitError::Store(e) => Err(e.into()),
    }
}

/// Bounded retries with jittered exponential backoff, for stale snapshots and
/// transaction conflicts.
pub struct Retry {
    attempt: u32,
}

/// The retries are used up: the contention outlasted them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted;

impl From<Exhausted> for ApiError {
    fn from(_: Exhausted) -> ApiError {
        ApiError::unavailable()
    }
}

/// The time a scheduled event is about: its `time` (an EventBridge rule's
/// event or a Scheduler payload `{"time": ...}`), or the clock where none is
/// given.
pub fn event_time(payload: &serde_json::Value) -> Result<crate::cycle::Time, String> {
    match payload.get("time") {
        None | Some(serde_json::Value::Null) => Ok(crate::cycle::now()),
        Some(serde_json::Value::String(text)) => {
            crate::cycle::parse_time(text).ok_or_else(|| format!("event time {text:?} is not an RFC 3339 time"))
        }
        Some(other) => Err(format!("event time must be a string, got {other}")),
    }
}

/// A scheduled invocation's time budget: work stops being started once less
/// than [`Budget::MARGIN`] is left, so a write that starts always finishes.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    deadline: Option<std::time::Instant>,
}

impl Budget {
    /// Time kept in hand at the end of an invocation.
    pub const MARGIN: Duration = Duration::from_secs(2);

    /// The budget of a Lambda invocation whose deadline is `deadline_ms`
    /// (milliseconds since the epoch, from the Lambda context); `0` (no
    /// deadline given) means unbounded. A value too small to be an epoch
    /// time (before 2001) is a duration: `cargo lambda watch` sends the
    /// function's timeout there.
    pub fn until_epoch_ms(deadline_ms: u64) -> Budget {
        if deadline_ms == 0 {
            return Budget { deadline: None };
        }
        if deadline_ms < 1_000_000_000_000 {
            return Budget { deadline: Some(std::time::Instant::now() + Duration::from_millis(deadline_ms)) };
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
        Budget { deadline: Some(std::time::Instant::now() + left) }
    }

    /// No deadline.
    pub fn unbounded() -> Budget {
        Budget { deadline: None }
    }

    /// Whether it is time to stop starting work.
    pub fn exhausted(&self) -> bool {
        self.deadline.is_some_and(|d| d.saturating_duration_since(std::time::Instant::now()) < Budget::MARGIN)
    }

    /// Whether `wait` can be spent and still leave the margin.
    pub fn allows(&self, wait: Duration) -> bool {
        self.deadline.is_none_or(|d| d.saturating_duration_since(std::time::Instant::now()) >= Budget::MARGIN + wait)
    }
}

/// Tries before an operation gives up with 503 (safe to retry).
pub const MAX_ATTEMPTS: u32 = 100;

impl Retry {
    /// The first attempt.
    pub fn new() -> Retry {
        Retry { attempt: 0 }
    }

    /// Waits before the next attempt; [`Exhausted`] (503 for a request)
    /// once the attempts are used up.
    pub async fn again(&mut self, why: &str) -> Result<(), Exhausted> {
        self.attempt += 1;
        if self.attempt >= MAX_ATTEMPTS {
            tracing::warn!(attempts = self.attempt, why, "giving up after repeated contention");
            return Err(Exhausted);
        }
        tracing::debug!(attempt = self.attempt, why, "retrying");
        let cap_ms = (2_u64 << self.attempt.min(5)).min(50);
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=cap_ms))).await;
        Ok(())
    }
}

impl Default for Retry {
    fn default() -> Self {
        Retry::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduled_events_give_their_time() {
        let rule = serde_json::json!({"source": "aws.events", "detail-type": "Scheduled Event", "time": "2026-02-28T10:00:00Z"});
        assert_eq!(event_time(&rule).map(crate::cycle::format_time), Ok("2026-02-28T10:00:00Z".to_owned()));
        assert!(event_time(&serde_json::json!({"time": "soon"})).is_err());
        assert!(event_time(&serde_json::json!({"time": 5})).is_err());
        let before = crate::cycle::now();
        assert!(event_time(&serde_json::json!({})).is_ok_and(|t| t >= before));
    }

    #[test]
    fn budgets_stop_work_before_the_deadline() {
        assert!(!Budget::until_epoch_ms(0).exhausted());
        let now_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        assert!(Budget::until_epoch_ms(now_ms + 5).exhausted());
        assert!(!Budget::until_epoch_ms(now_ms + 60_000).exhausted());
        assert!(!Budget::until_epoch_ms(now_ms + 3_000).allows(Duration::from_secs(5)));
        // cargo lambda watch's relative deadline.
        assert!(!Budget::until_epoch_ms(600_000).exhausted());
        assert!(Budget::until_epoch_ms(1_000).exhausted());
    }

    #[test]
    fn hashes_depend_on_route_and_payload() {
        let a = request_hash(Route::Purchase, &serde_json::json!({"a": 1})).expect("hash");
        assert_eq!(a.len(), 64);
        assert_eq!(a, request_hash(Route::Purchase, &serde_json::json!({"a": 1})).expect("hash"));
        assert_ne!(a, request_hash(Route::Spend, &serde_json::json!({"a": 1})).expect("hash"));
        assert_ne!(a, request_hash(Route::Purchase, &serde_json::json!({"a": 2})).expect("hash"));
    }

    #[test]
    fn a_replay_answers_the_original_body_or_a_conflict() {
        let record = IdemRecord { request_hash: "h".into(), status: 201, body: "{}".into(), at: "t".into() };
        assert_eq!(replay(&record, "h", "payment_id"), Ok(Reply::Replayed("{}".into())));
        let err = replay(&record, "other", "payment_id").expect_err("conflict");
        assert_eq!((err.status, err.code), (409, "idempotency_conflict"));
    }
}
