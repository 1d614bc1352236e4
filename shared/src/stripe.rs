//! Stripe webhooks: checking the `Stripe-Signature` header, and reading the
//! events the service acts on.
//!
//! A signature is an HMAC-SHA256 of `"{t}.{payload}"` with the endpoint's
//! signing secret, hex-encoded, in `t=...,v1=...` (several `v1` while a
//! secret is being rotated). It is compared in constant time, and a
//! timestamp more than [`TOLERANCE_S`] from now is refused, so a captured
//! request cannot be replayed later.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::collections::BTreeMap;

/// Largest distance between a signature's timestamp and now, in seconds.
pub const TOLERANCE_S: i64 = 300;

/// Why a webhook's signature was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `Stripe-Signature` header.
    #[error("the Stripe-Signature header is missing")]
    Missing,
    /// The header is not `t=...,v1=...`.
    #[error("the Stripe-Signature header is malformed")]
    Malformed,
    /// The timestamp is too far from now.
    #[error("the signature's timestamp is more than 5 minutes from now")]
    Stale,
    /// No `v1` signature matches.
    #[error("no signature matches the payload")]
    Mismatch,
}

/// Checks `header` against `payload` and `secret` at `now` (seconds since the epoch).
pub fn verify(header: Option<&str>, payload: &[u8], secret: &[u8], now: i64) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = Some(t.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            Some(("v1", sig)) => candidates.push(hex_decode(sig).ok_or(SignatureError::Malformed)?),
            Some(_) => {} // other schemes (v0) are not Stripe's live signatures
            None => return Err(SignatureError::Malformed),
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if now.abs_diff(timestamp) > TOLERANCE_S.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| SignatureError::Mismatch)?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    // verify_slice compares in constant time.
    if candidates.iter().any(|sig| mac.clone().verify_slice(sig).is_ok()) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The `Stripe-Signature` header Stripe would send for `payload` at
/// `timestamp` (for tests and local tools).
pub fn sign(payload: &[u8], secret: &[u8], timestamp: i64) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return String::new() };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    let sig: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={sig}")
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// What an event asks of the service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A paid Checkout payment: a purchase.
    Purchase {
        /// The buyer.
        user_id: String,
        /// The payment intent: the purchase's `payment_id`.
        payment_intent: String,
        /// What was paid, in cents.
        amount_cents: i64,
        /// In which currency (upper-case).
        currency: String,
    },
    /// A charge refunded, in part or in full (cumulative figures).
    Refund {
        /// The payment intent of the purchase refunded.
        payment_intent: String,
        /// What the charge was for, in cents.
        amount_cents: i64,
        /// What has been refunded of it so far, in cents.
        refunded_cents: i64,
    },
    /// A dispute opened on a charge: the purchase is reversed in full.
    Dispute {
        /// The dispute (`dp_...`).
        dispute_id: String,
        /// The payment intent of the purchase disputed.
        payment_intent: String,
    },
    /// A subscription started, moved to another price or ended.
    Subscription {
        /// The subscription (`sub_...`).
        subscription_id: String,
        /// The subscriber.
        user_id: String,
        /// Where it stands.
        state: SubscriptionState,
    },
    /// Nothing to do; why.
    Ignore(String),
}

/// Where a subscription stands, as far as the user's plan is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubscriptionState {
    /// Active or trialing (set to cancel or not: it is active until it
    /// ends), on a price.
    Active {
        /// The first of its items' prices that `STRIPE_PRICE_PLANS` maps
        /// (the first item's where none is).
        price: String,
        /// The plan it maps to, if it does.
        plan: Option<String>,
    },
    /// Not active: `unpaid` or `paused`, which may become active again, or
    /// for good (`done`): deleted, `canceled`, `incomplete_expired`.
    Ended {
        /// Whether it can never become active again.
        done: bool,
    },
}

/// The event's id, type, creation time and the action it asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// `evt_...`: the key every action of the event is idempotent by.
    pub id: String,
    /// `checkout.session.completed`, ...
    pub kind: String,
    /// When Stripe created it (seconds since the epoch).
    pub created: i64,
    /// What to do.
    pub action: Action,
}

fn text(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

/// Reads an event; `price_plans` maps Stripe price ids to plans.
pub fn read_event(payload: &[u8], price_plans: &BTreeMap<String, String>) -> Result<Event, String> {
    let event: Value = serde_json::from_slice(payload).map_err(|e| format!("the body is not JSON ({e})"))?;
    let id = text(&event["id"]).ok_or("the event has no id")?;
    let kind = text(&event["type"]).ok_or("the event has no type")?;
    let created = event["created"].as_i64().ok_or("the event has no created time")?;
    let object = &event["data"]["object"];
    let action = match kind.as_str() {
        // A delayed payment method (bank debits) completes the session
        // unpaid, and pays later.
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" => checkout(object),
        "charge.refunded" => {
            let cents = |field: &str| object[field].as_i64().filter(|c| *c >= 0);
            match (text(&object["payment_intent"]), cents("amount"), cents("amount_refunded")) {
                (Some(payment_intent), Some(amount_cents), Some(refunded_cents)) => {
                    Action::Refund { payment_intent, amount_cents, refunded_cents }
                }
                _ => Action::Ignore(
                    "a charge without payment_intent, or a whole amount and amount_refunded of at least 0".into(),
                ),
            }
        }
        "charge.dispute.created" => match (text(&object["id"]), text(&object["payment_intent"])) {
            (Some(dispute_id), Some(payment_intent)) => Action::Dispute { dispute_id, payment_intent },
            _ => Action::Ignore("a dispute without id or payment_intent".into()),
        },
        "customer.subscription.created" | "customer.subscription.updated" => subscription(object, price_plans, false),
        // Stripe deletes a subscription as it ends it for good, whatever
        // status the event's object still shows.
        "customer.subscription.deleted" => subscription(object, price_plans, true),
        other => Action::Ignore(format!("events of type {other} are not used")),
    };
    Ok(Event { id, kind, created, action })
}

fn checkout(session: &Value) -> Action {
    if session["mode"] != "payment" || session["payment_status"] != "paid" {
        return Action::Ignore("a checkout session that is not a paid one-off payment".into());
    }
    let Some(user_id) = text(&session["client_reference_id"]).or_else(|| text(&session["metadata"]["user_id"])) else {
        return Action::Ignore("a checkout session with neither client_reference_id nor metadata.user_id".into());
    };
    match (text(&session["payment_intent"]), session["amount_total"].as_i64(), text(&session["currency"])) {
        (Some(payment_intent), Some(amount_cents), Some(currency)) => {
            Action::Purchase { user_id, payment_intent, amount_cents, currency: currency.to_uppercase() }
        }
        _ => Action::Ignore("a checkout session without payment_intent, amount_total or currency".into()),
    }
}

/// A subscription event's action; `deleted`: the event is the subscription's deletion.
fn subscription(sub: &Value, price_plans: &BTreeMap<String, String>, deleted: bool) -> Action {
    let (Some(subscription_id), Some(user_id)) = (text(&sub["id"]), text(&sub["metadata"]["user_id"])) else {
        return Action::Ignore("a subscription without id or metadata.user_id".into());
    };
    if deleted {
        return Action::Subscription { subscription_id, user_id, state: SubscriptionState::Ended { done: true } };
    }
    let state = match sub["status"].as_str() {
        Some("active" | "trialing") => {
            // A subscription may have several items (a base price and an
            // add-on): the plan comes from the first one that maps to one.
            let prices: Vec<String> = sub["items"]["data"]
                .as_array()
                .map(|items| items.iter().filter_map(|item| text(&item["price"]["id"])).collect())
                .unwrap_or_default();
            match prices.iter().find_map(|price| price_plans.get(price).map(|plan| (price, plan))) {
                Some((price, plan)) => SubscriptionState::Active { price: price.clone(), plan: Some(plan.clone()) },
                None => SubscriptionState::Active { price: prices.first().cloned().unwrap_or_default(), plan: None },
            }
        }
        Some("unpaid" | "paused") => SubscriptionState::Ended { done: false },
        Some("canceled" | "incomplete_expired") => SubscriptionState::Ended { done: true },
        // `incomplete` (its first payment pending) and `past_due` (Stripe
        // retrying a renewal) are not decided yet: the plan stays.
        other => return Action::Ignore(format!("a subscription whose status is {other:?}, not decided yet")),
    };
    Action::Subscription { subscription_id, user_id, state }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test_secret";

    #[test]
    fn a_signature_stripe_made_verifies_and_a_tampered_one_does_not() {
        let payload = br#"{"id":"evt_1"}"#;
        let header = sign(payload, SECRET, 1_700_000_000);
        assert_eq!(verify(Some(&header), payload, SECRET, 1_700_000_100), Ok(()));
        assert_eq!(verify(Some(&header), br#"{"id":"evt_2"}"#, SECRET, 1_700_000_100), Err(SignatureError::Mismatch));
        assert_eq!(verify(Some(&header), payload, b"whsec_other", 1_700_000_100), Err(SignatureError::Mismatch));
        assert_eq!(verify(Some(&header), payload, SECRET, 1_700_000_301), Err(SignatureError::Stale));
        assert_eq!(verify(Some(&header), payload, SECRET, 1_699_999_699), Err(SignatureError::Stale));
        assert_eq!(verify(None, payload, SECRET, 1_700_000_000), Err(SignatureError::Missing));
        for bad in ["", "t=abc,v1=00", "v1=00", "t=1700000000", "t=1700000000,v1=zz", "nonsense"] {
            assert!(verify(Some(bad), payload, SECRET, 1_700_000_000).is_err(), "{bad:?}");
        }
        // The route is public: the farthest timestamps are stale, without overflow.
        for t in [i64::MIN, i64::MAX] {
            let header = format!("t={t},v1=00");
            assert_eq!(verify(Some(&header), payload, SECRET, 1_700_000_000), Err(SignatureError::Stale), "{t}");
        }
    }

    #[test]
    fn during_a_secret_rotation_any_v1_signature_may_match() {
        let payload = b"{}";
        let old = sign(payload, b"whsec_old", 1_700_000_000);
        let new = sign(payload, SECRET, 1_700_000_000);
        let both = format!("{},v1={},v0=ignored", new, old.rsplit_once("v1=").map_or("", |(_, s)| s));
        assert_eq!(verify(Some(&both), payload, SECRET, 1_700_000_000), Ok(()));
        assert_eq!(verify(Some(&both), payload, b"whsec_old", 1_700_000_000), Ok(()));
    }

    fn read(event: serde_json::Value) -> Action {
        let plans = BTreeMap::from([("price_pro".to_owned(), "pro".to_owned())]);
        read_event(event.to_string().as_bytes(), &plans).expect("event").action
    }

    #[test]
    fn events_become_actions() {
        let session = serde_json::json!({"id": "evt_1", "type": "checkout.session.completed", "created": 1,
            "data": {"object": {"mode": "payment", "payment_status": "paid", "client_reference_id": "alice",
                "payment_intent": "pi_1", "amount_total": 1000, "currency": "usd"}}});
        assert_eq!(
            read(session),
            Action::Purchase {
                user_id: "alice".into(),
                payment_intent: "pi_1".into(),
                amount_cents: 1000,
                currency: "USD".into()
            }
        );
        let unpaid = serde_json::json!({"id": "evt_2", "type": "checkout.session.completed", "created": 1,
            "data": {"object": {"mode": "payment", "payment_status": "unpaid", "client_reference_id": "alice"}}});
        assert!(matches!(read(unpaid), Action::Ignore(_)));
        let later = serde_json::json!({"id": "evt_2b", "type": "checkout.session.async_payment_succeeded", "created": 2,
            "data": {"object": {"mode": "payment", "payment_status": "paid", "client_reference_id": "alice",
                "payment_intent": "pi_2", "amount_total": 1000, "currency": "usd"}}});
        assert!(matches!(read(later), Action::Purchase { .. }), "a delayed payment pays later");
        let refund = serde_json::json!({"id": "evt_3", "type": "charge.refunded", "created": 1,
            "data": {"object": {"payment_intent": "pi_1", "amount": 1000, "amount_refunded": 250}}});
        assert_eq!(
            read(refund),
            Action::Refund { payment_intent: "pi_1".into(), amount_cents: 1000, refunded_cents: 250 }
        );
        for (amount, refunded) in [(-1000, 250), (1000, -250)] {
            let negative = serde_json::json!({"id": "evt_3", "type": "charge.refunded", "created": 1,
                "data": {"object": {"payment_intent": "pi_1", "amount": amount, "amount_refunded": refunded}}});
            assert!(matches!(read(negative), Action::Ignore(_)), "{amount} {refunded}");
        }
        let sub = |status: &str| {
            serde_json::json!({"id": "evt_4", "type": "customer.subscription.updated", "created": 1,
                "data": {"object": {"id": "sub_1", "status": status, "metadata": {"user_id": "alice"},
                    "items": {"data": [{"price": {"id": "price_pro"}}]}}}})
        };
        let subscription =
            |state| Action::Subscription { subscription_id: "sub_1".into(), user_id: "alice".into(), state };
        for status in ["active", "trialing"] {
            let active = SubscriptionState::Active { price: "price_pro".into(), plan: Some("pro".into()) };
            assert_eq!(read(sub(status)), subscription(active), "{status}");
        }
        for (status, done) in [("canceled", true), ("incomplete_expired", true), ("unpaid", false), ("paused", false)] {
            assert_eq!(read(sub(status)), subscription(SubscriptionState::Ended { done }), "{status}");
        }
        // A deletion ends it for good, whatever status its object shows.
        for status in ["canceled", "active", "past_due"] {
            let mut deleted = sub(status);
            deleted["type"] = serde_json::json!("customer.subscription.deleted");
            assert_eq!(read(deleted), subscription(SubscriptionState::Ended { done: true }), "{status}");
        }
        for status in ["past_due", "incomplete"] {
            assert!(matches!(read(sub(status)), Action::Ignore(_)), "{status}");
        }
        // The first item whose price maps gives the plan; with none, the first item's price, unmapped.
        let mut add_on = sub("active");
        add_on["data"]["object"]["items"]["data"] =
            serde_json::json!([{"price": {"id": "price_seats"}}, {"price": {"id": "price_pro"}}]);
        let active = SubscriptionState::Active { price: "price_pro".into(), plan: Some("pro".into()) };
        assert_eq!(read(add_on), subscription(active));
        let mut unknown_price = sub("active");
        unknown_price["data"]["object"]["items"]["data"][0]["price"]["id"] = serde_json::json!("price_x");
        assert_eq!(
            read(unknown_price),
            subscription(SubscriptionState::Active { price: "price_x".into(), plan: None })
        );
        let other = serde_json::json!({"id": "evt_5", "type": "invoice.paid", "created": 1, "data": {"object": {}}});
        assert!(matches!(read(other), Action::Ignore(_)));
        assert!(read_event(b"[]", &BTreeMap::new()).is_err());
    }
}
