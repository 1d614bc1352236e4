//! Idempotency keys: the route that scopes a key, the canonical form of a
//! request that every replay must match, and the record a request leaves.
//!
//! A key is used once, forever, so the hash stored with it must not change
//! when the code does. It is computed from a canonical text with a version
//! line, the route as the contract names it, and the fields in a fixed
//! order, absent optional fields written as `null` (so `{"plan": null}` and
//! a body without `plan` are one request). Nothing in it comes from a Rust
//! type's name or from serde's output. Records written before this version
//! hold a bare hex hash of the older form, which [`RequestHash::matches`]
//! still recognises.

use crate::cycle::Time;
use sha2::{Digest, Sha256};

/// The mutating routes; each scopes its own keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `POST /v1/signups`, keyed by `user_id`.
    Signup,
    /// `POST /v1/purchases`, keyed by `payment_id`.
    Purchase,
    /// `POST /v1/plan-changes`, keyed by `change_id`.
    PlanChange,
    /// `POST /v1/spends`, keyed by `spend_id`.
    Spend,
    /// `POST /v1/reversals`, keyed by `reversal_id`.
    Reversal,
    /// `POST /v1/adjustments`, keyed by `adjustment_id`.
    Adjustment,
    /// `POST /v1/referral-clawbacks`, keyed by `clawback_id` (scoped to the referred user).
    Clawback,
    /// `POST /v1/holds`, keyed by `hold_id`.
    Hold,
    /// `POST /v1/holds/{hold_id}/capture`, keyed by the hold.
    Capture,
    /// `POST /v1/holds/{hold_id}/release`, keyed by the hold.
    Release,
}

impl Route {
    /// The route as the contract writes it; part of every request hash.
    pub fn contract_name(self) -> &'static str {
        match self {
            Route::Signup => "POST /v1/signups",
            Route::Purchase => "POST /v1/purchases",
            Route::PlanChange => "POST /v1/plan-changes",
            Route::Spend => "POST /v1/spends",
            Route::Reversal => "POST /v1/reversals",
            Route::Adjustment => "POST /v1/adjustments",
            Route::Clawback => "POST /v1/referral-clawbacks",
            Route::Hold => "POST /v1/holds",
            Route::Capture => "POST /v1/holds/{hold_id}/capture",
            Route::Release => "POST /v1/holds/{hold_id}/release",
        }
    }

    /// The route's part of a stored record's sort key (`IDEM#<this>#<key>`).
    pub fn record_name(self) -> &'static str {
        match self {
            Route::Signup => "signup",
            Route::Purchase => "purchase",
            Route::PlanChange => "plan-change",
            Route::Spend => "spend",
            Route::Reversal => "reversal",
            Route::Adjustment => "adjustment",
            Route::Clawback => "clawback",
            Route::Hold => "hold",
            Route::Capture => "capture",
            Route::Release => "release",
        }
    }

    /// The body field that carries the route's key, for error messages.
    pub fn key_field(self) -> &'static str {
        match self {
            Route::Signup => "user_id",
            Route::Purchase => "payment_id",
            Route::PlanChange => "change_id",
            Route::Spend => "spend_id",
            Route::Reversal => "reversal_id",
            Route::Adjustment => "adjustment_id",
            Route::Clawback => "clawback_id",
            Route::Hold | Route::Capture | Route::Release => "hold_id",
        }
    }

    /// What the first version of the hash wrote for the route.
    fn legacy_name(self) -> &'static str {
        match self {
            Route::Signup => "Signup",
            Route::Purchase => "Purchase",
            Route::PlanChange => "PlanChange",
            Route::Spend => "Spend",
            Route::Reversal => "Reversal",
            Route::Adjustment => "Adjustment",
            Route::Clawback => "Clawback",
            Route::Hold => "Hold",
            Route::Capture => "Capture",
            Route::Release => "Release",
        }
    }
}

/// Where a request's record lives: its route, its user and its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordKey {
    /// Scopes the key.
    pub route: Route,
    /// The user the request is about.
    pub user_id: String,
    /// The caller's key.
    pub key: String,
}

/// What a request answered, kept forever under its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdemRecord {
    /// The request's hash ([`RequestHash::stored`]).
    pub request_hash: String,
    /// The status of the original answer.
    pub status: u16,
    /// The original answer's body, byte for byte.
    pub body: String,
    /// When it was recorded.
    pub at: Time,
    /// A random id of the request that wrote it ([`new_writer`]), so that
    /// request can tell its own write, whose answer was lost and retried,
    /// from another's; empty on records stored before it was kept.
    pub writer: String,
}

/// A fresh [`IdemRecord::writer`]: 16 random letters and digits.
pub fn new_writer() -> String {
    (0..16).map(|_| fastrand::alphanumeric()).collect()
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Field {
    Text(String),
    Number(i64),
    Absent,
}

impl Field {
    /// The field as JSON: a quoted, escaped string, a number, or `null`.
    fn json(&self) -> String {
        match self {
            Field::Text(text) => serde_json::Value::from(text.as_str()).to_string(),
            Field::Number(n) => n.to_string(),
            Field::Absent => "null".to_owned(),
        }
    }
}

/// A request as its hash sees it: the route and each field of the body, in
/// the order the route lists them, as the caller sent them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Canonical {
    route: Route,
    fields: Vec<(&'static str, Field)>,
}

impl Canonical {
    /// The first line of the canonical text; a new form gets a new version.
    pub const VERSION: &'static str = "credits request v1";

    /// A request of `route`, with no fields yet.
    pub fn new(route: Route) -> Canonical {
        Canonical { route, fields: Vec::new() }
    }

    /// Adds a text field.
    pub fn text(mut self, name: &'static str, value: &str) -> Canonical {
        self.fields.push((name, Field::Text(value.to_owned())));
        self
    }

    /// Adds a whole-number field.
    pub fn number(mut self, name: &'static str, value: i64) -> Canonical {
        self.fields.push((name, Field::Number(value)));
        self
    }

    /// Adds an optional whole-number field; absent and `null` are the same.
    pub fn optional_number(mut self, name: &'static str, value: Option<i64>) -> Canonical {
        self.fields.push((name, value.map_or(Field::Absent, Field::Number)));
        self
    }

    /// Adds an optional text field; absent and `null` are the same.
    pub fn optional_text(mut self, name: &'static str, value: Option<&str>) -> Canonical {
        self.fields.push((name, value.map_or(Field::Absent, |v| Field::Text(v.to_owned()))));
        self
    }

    /// The canonical text: the version line, the route, then `name: value`
    /// lines with JSON values, each line ended by `\n`.
    pub fn text_form(&self) -> String {
        let mut text = format!("{}\n{}\n", Canonical::VERSION, self.route.contract_name());
        for (name, value) in &self.fields {
            text.push_str(&format!("{name}: {}\n", value.json()));
        }
        text
    }

    /// The request's hashes.
    pub fn hash(&self) -> RequestHash {
        let current = format!("v1:{}", hex(&Sha256::digest(self.text_form().as_bytes())));
        // Version 0 hashed the route's Rust name and serde's compact JSON of
        // the request struct, whose fields were in this same order.
        let body: Vec<String> =
            self.fields.iter().map(|(name, value)| format!("\"{name}\":{}", value.json())).collect();
        let legacy = format!("{}\n{{{}}}", self.route.legacy_name(), body.join(","));
        RequestHash { current, legacy: hex(&Sha256::digest(legacy.as_bytes())) }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hash a new record stores, and the one an older record may hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHash {
    current: String,
    legacy: String,
}

impl RequestHash {
    /// What a new record stores: `v1:` and the SHA-256 of the canonical text.
    pub fn stored(&self) -> &str {
        &self.current
    }

    /// Whether a stored hash is this request's: the current form, or (for
    /// records written before the canonical form) the version-0 form.
    pub fn matches(&self, stored: &str) -> bool {
        stored == self.current || (!stored.starts_with("v1:") && stored == self.legacy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purchase() -> Canonical {
        Canonical::new(Route::Purchase)
            .text("user_id", "alice")
            .text("payment_id", "pay-1")
            .number("amount_cents", 1000)
            .text("currency", "USD")
    }

    /// Pinned: a change to the canonical form fails here, before it turns
    /// every replay of an existing key into a 409.
    #[test]
    fn a_known_purchase_has_a_known_hash() {
        assert_eq!(
            purchase().text_form(),
            "credits request v1\nPOST /v1/purchases\nuser_id: \"alice\"\npayment_id: \"pay-1\"\namount_cents: 1000\ncurrency: \"USD\"\n"
        );
        assert_eq!(purchase().hash().stored(), "v1:d63478e5f75763ae54b20e0f8246cf7763919034f7f1ccb1606bc1a00aabda8a");
    }

    #[test]
    fn a_known_signup_with_absent_fields_has_a_known_hash() {
        let signup = Canonical::new(Route::Signup)
            .text("user_id", "bob")
            .text("email", "bob@example.org")
            .optional_text("plan", None)
            .optional_text("referral_code", Some("abcd2345"))
            .optional_text("signed_up_at", None);
        assert_eq!(signup.hash().stored(), "v1:d0355979d6c123c3cf342e2975c7c5157d93cf07ee1f33879ec001bfee198ff4");
    }

    /// Records written by the first version still replay.
    #[test]
    fn records_of_the_first_version_still_match() {
        let hash = purchase().hash();
        assert!(hash.matches("68db25a71116b3399aeb50b74b34a4e36f6a17bd3178f78f8c7351b38f925d4e"));
        assert!(hash.matches(hash.stored()));
        assert!(!hash.matches("v1:68db25a71116b3399aeb50b74b34a4e36f6a17bd3178f78f8c7351b38f925d4e"));
        let other = Canonical::new(Route::Spend).text("user_id", "alice").hash();
        assert!(!other.matches(hash.stored()));
    }

    #[test]
    fn route_values_and_order_all_count() {
        let base = purchase().hash();
        let cases = [
            Canonical::new(Route::Spend).text("user_id", "alice").text("payment_id", "pay-1"),
            purchase().number("extra", 1),
            Canonical::new(Route::Purchase).text("payment_id", "pay-1").text("user_id", "alice"),
            Canonical::new(Route::Purchase).text("user_id", "alice\"").text("payment_id", "pay-1"),
        ];
        for case in cases {
            assert_ne!(case.hash(), base, "{}", case.text_form());
        }
        // A text "null" is not an absent field.
        assert_ne!(
            Canonical::new(Route::Signup).optional_text("plan", None).hash(),
            Canonical::new(Route::Signup).optional_text("plan", Some("null")).hash()
        );
    }
}
