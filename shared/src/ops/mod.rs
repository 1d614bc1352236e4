//! What each route and schedule does.
//!
//! Every mutating route is a [`Command`](command::Command): its file holds
//! the request's validation and its rules as a pure decision, and
//! [`execute`](execute::execute) runs every one of them through the same
//! read, replay, decide, commit and retry protocol. The scheduled functions
//! ([`rollover`], [`outbox`]) share [`schedule`]'s time budget.

pub mod account;
pub mod alerts;
pub mod command;
pub mod corrections;
pub mod execute;
pub mod holds;
pub mod outbox;
pub mod plan_change;
pub mod purchase;
pub mod rollover;
pub mod schedule;
pub mod signup;
pub mod spend;
pub mod stripe;

/// Every route's stored request hash, pinned from a request body: renaming,
/// reordering or adding a field of a route's canonical form fails here,
/// before it turns every replay of an existing key into a 409.
#[cfg(test)]
mod pinned_request_hashes {
    use super::command::Command;
    use super::{corrections, holds, plan_change, purchase, signup, spend};

    fn body<T: serde::de::DeserializeOwned>(json: &str) -> T {
        serde_json::from_str(json).expect("a valid body")
    }

    fn hash<C: Command>(command: Result<C, crate::http::ApiError>) -> String {
        command.expect("a valid request").canonical().hash().stored().to_owned()
    }

    #[test]
    fn every_route_hashes_a_known_body_to_a_known_hash() {
        let cases = [
            (
                "signup",
                hash(signup::Signup::parse(body(
                    r#"{"user_id": "bob", "email": "bob@example.org", "referral_code": "abcd2345"}"#,
                ))),
                "v1:d0355979d6c123c3cf342e2975c7c5157d93cf07ee1f33879ec001bfee198ff4",
            ),
            (
                "purchase",
                hash(purchase::Purchase::parse(body(
                    r#"{"user_id": "alice", "payment_id": "pay-1", "amount_cents": 1000, "currency": "USD"}"#,
                ))),
                "v1:d63478e5f75763ae54b20e0f8246cf7763919034f7f1ccb1606bc1a00aabda8a",
            ),
            (
                "plan change",
                hash(plan_change::ChangePlan::parse(body(
                    r#"{"user_id": "alice", "change_id": "c-1", "plan": "pro"}"#,
                ))),
                "v1:743a62fa9590e2ff461a3e4ad1814c63bb21382cbb9cab37422a7f10c6630a7a",
            ),
            (
                "spend",
                hash(spend::Spend::parse(body(r#"{"user_id": "alice", "spend_id": "s-1", "credits": 5}"#))),
                "v1:88b1c7c5cbf2c2305692212d70729208c33644c12761428b7ee1d9ea10c27b1a",
            ),
            (
                "reversal",
                hash(corrections::Reversal::parse(body(
                    r#"{"user_id": "alice", "reversal_id": "r-1", "payment_id": "pay-1", "reason": "refund"}"#,
                ))),
                "v1:eb07270f53afc034a191ff2edb5e02ba8d7bb9ae843dc1ddc28c25b4cd626426",
            ),
            (
                "adjustment",
                hash(corrections::Adjustment::parse(body(
                    r#"{"user_id": "alice", "adjustment_id": "a-1", "credits": -5, "bucket": "flexible", "reason": "correction"}"#,
                ))),
                "v1:eb7ff2bef1f17fcda552d58fd1d4cc67f33da1bee9725d7ac1ef080682d87f8e",
            ),
            (
                "clawback",
                hash(corrections::Clawback::parse(body(
                    r#"{"referred_user_id": "bob", "clawback_id": "k-1", "reason": "fraud"}"#,
                ))),
                "v1:3db7ee296eab44047e34f795284184ceb64cedc6f44aacc03bfe42bcf7a52168",
            ),
            (
                "hold",
                hash(holds::PlaceHold::parse(body(r#"{"user_id": "alice", "hold_id": "h-1", "credits": 30}"#))),
                "v1:eae91528e1e796296cf616818a850077f233f9f7519cb32d8e6cf5cb74b00115",
            ),
            (
                "capture",
                hash(holds::Capture::parse("h-1", body(r#"{"user_id": "alice", "credits": 20}"#))),
                "v1:cd0f93dbbe84c8d0aac7cbdfec67f0a952fad543c5a96c56ef6123f352a7f711",
            ),
            (
                "release",
                hash(holds::Release::parse("h-1", body(r#"{"user_id": "alice"}"#))),
                "v1:c5853d9165f9df2b6c0fdff69407135c08f93a44a657ad188c13bf1b158d5931",
            ),
        ];
        let changed: Vec<String> = cases
            .iter()
            .filter(|(_, got, pinned)| got != pinned)
            .map(|(route, got, pinned)| format!("{route}: {got}, pinned {pinned}"))
            .collect();
        assert!(changed.is_empty(), "request hashes changed: {changed:#?}");
    }
}
