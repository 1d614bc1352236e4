//! What each route does: validation, the rules, and the one transaction.
//!
//! Every mutating operation follows the same shape: parse and validate; read
//! at most one snapshot; build one transaction (idempotency record first,
//! then balance updates conditioned on the snapshot's version, ledger
//! entries, outbox emails); commit; on a stale snapshot or a transaction
//! conflict, read again and retry; after the commit, send the emails.

pub mod account;
pub mod plan_change;
pub mod purchase;
pub mod signup;
pub mod spend;

use crate::http::{ApiError, Reply};
use crate::store::{IdemRecord, ReceiptKey, Route, Store};
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

/// Bounded retries with jittered exponential backoff, for stale snapshots and
/// transaction conflicts.
pub struct Retry {
    attempt: u32,
}

/// Tries before an operation gives up with 503 (safe to retry).
pub const MAX_ATTEMPTS: u32 = 100;

impl Retry {
    /// The first attempt.
    pub fn new() -> Retry {
        Retry { attempt: 0 }
    }

    /// Waits before the next attempt; 503 once the attempts are used up.
    pub async fn again(&mut self, why: &str) -> Result<(), ApiError> {
        self.attempt += 1;
        if self.attempt >= MAX_ATTEMPTS {
            tracing::warn!(attempts = self.attempt, why, "giving up after repeated contention");
            return Err(ApiError::unavailable());
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
