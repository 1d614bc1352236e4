//! `POST /v1/webhooks/stripe`: Stripe's events turned into the service's own
//! requests, so a deployer who takes payments with Stripe needs no glue.
//!
//! | event | becomes |
//! |---|---|
//! | `checkout.session.completed` (paid, mode `payment`) | a purchase; `payment_id` = the payment intent |
//! | `charge.refunded` | a reversal up to the refunded share of the purchase, keyed by the event |
//! | `charge.dispute.created` | a reversal of what is left of the purchase, keyed by the dispute |
//! | `checkout.session.async_payment_succeeded` | the same (a delayed payment method completes the session unpaid) |
//! | `customer.subscription.created`, `.updated` (active, trialing) | the subscription on its price's plan (`STRIPE_PRICE_PLANS`); the user's plan the best of theirs: a plan change keyed by the event |
//! | `customer.subscription.deleted` (whatever its status), `.updated` (canceled, unpaid, paused, incomplete_expired) | the subscription gone; the best of the rest, or the default plan: a plan change keyed by the event |
//!
//! Stripe delivers at least once and sometimes out of order, and retries
//! every answer that is not 2xx. So: each action is idempotent by its event
//! (or dispute); a refund reverses up to the cumulative refunded share,
//! never twice and never back; a user's plan is the best among their active
//! subscriptions, and a subscription event older than one of its own
//! already applied changes nothing; 2xx is answered only once the effect is committed;
//! an event the service can never apply (an unknown user, a plan without a
//! purchase rate) is answered 200 with `applied: false` and logged as an
//! error, because Stripe's retries could not change it.

use super::command::{Command, Ctx, Effect, Snapshot};
use super::corrections::Reversal;
use super::execute::execute;
use super::plan_change::ChangePlan;
use super::purchase::Purchase;
use crate::http::{to_json, ApiError, Reply};
use crate::idempotency::{Canonical, Route};
use crate::plans::Catalogue;
use crate::store::{Lookups, PaymentOwner, SubscriptionFacts, Write};
use crate::stripe::{read_event, verify, Action, Event, SubscriptionState};
use crate::types::{Key, UserId};
use crate::App;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What the webhook needs besides the app: the endpoint's signing secret
/// (read once per cold start) and the price → plan map.
#[derive(Clone)]
pub struct StripeSettings {
    /// The webhook endpoint's signing secret (`whsec_...`).
    pub secret: Vec<u8>,
    /// Stripe price ids to plan names (`STRIPE_PRICE_PLANS`).
    pub price_plans: BTreeMap<String, String>,
}

impl std::fmt::Debug for StripeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeSettings").field("secret", &"<redacted>").field("price_plans", &self.price_plans).finish()
    }
}

impl StripeSettings {
    /// Reads `STRIPE_PRICE_PLANS` (a JSON object of price id → plan name),
    /// checking every plan against the catalogue.
    pub fn price_plans(
        json: Option<&str>,
        catalogue: &crate::plans::Catalogue,
    ) -> Result<BTreeMap<String, String>, String> {
        let Some(json) = json.filter(|j| !j.trim().is_empty()) else { return Ok(BTreeMap::new()) };
        let plans: BTreeMap<String, String> = serde_json::from_str(json)
            .map_err(|e| format!("STRIPE_PRICE_PLANS must be a JSON object of price id to plan ({e})"))?;
        if let Some((price, plan)) = plans.iter().find(|(_, plan)| catalogue.plan(plan).is_none()) {
            return Err(format!("STRIPE_PRICE_PLANS maps {price} to {plan:?}, which is not in the plan catalogue"));
        }
        Ok(plans)
    }
}

/// A refund: reverses up to the refunded share of the purchase. Stripe
/// reports refunds cumulatively, so events may come in any order: the
/// decision reverses what the latest share asks for beyond what is already
/// reversed, and nothing for an older, smaller share.
struct Refund {
    user: UserId,
    event_id: Key,
    payment_id: Key,
    amount_cents: i64,
    refunded_cents: i64,
}

impl Command for Refund {
    const ROUTE: Route = Route::Reversal;
    const LOWERS_BALANCE: bool = true;

    fn user(&self) -> &UserId {
        &self.user
    }

    fn key(&self) -> &str {
        self.event_id.as_str()
    }

    fn canonical(&self) -> Canonical {
        Canonical::new(Route::Reversal)
            .text("user_id", self.user.as_str())
            .text("reversal_id", self.event_id.as_str())
            .text("payment_id", self.payment_id.as_str())
            .text("reason", "refund")
            .number("stripe_amount_cents", self.amount_cents)
            .number("stripe_refunded_cents", self.refunded_cents)
    }

    fn lookups(&self) -> Lookups {
        Lookups { purchase: Some(self.payment_id.as_str().to_owned()), ..Lookups::default() }
    }

    fn decide(&self, snapshot: &Snapshot, ctx: &Ctx<'_>) -> Result<Effect, ApiError> {
        let purchase = snapshot.purchase.as_ref().ok_or_else(ApiError::purchase_not_found)?;
        let share = i128::from(purchase.credits) * i128::from(self.refunded_cents.min(self.amount_cents).max(0))
            / i128::from(self.amount_cents.max(1));
        let credits = i64::try_from(share).unwrap_or(purchase.credits) - purchase.reversed;
        if credits <= 0 {
            let body = to_json(&json!({"reversal": null, "note": "nothing beyond what is already reversed"}))?;
            return Ok(Effect { reply: Reply::Ok(body), writes: Vec::new(), emails: Vec::new() });
        }
        Reversal::new(self.user.clone(), self.event_id.clone(), self.payment_id.clone(), "refund", Some(credits))
            .decide(snapshot, ctx)
    }
}

/// A subscription's event. The webhook keeps each user's active
/// subscriptions with their prices; the event updates its own entry (its
/// price, or gone where it ended), and the user's plan becomes the
/// highest-ranked of the plans those prices map to today, or the catalogue's
/// default plan where none does. So the order in which a user's
/// subscriptions report does not matter, only each one's own order: an
/// event older than one of its subscription already applied, any event of
/// one that ended for good, or the end of a subscription that never set a
/// plan, changes nothing. All of it is decided on one read and committed in
/// the plan change's own transaction, and the answer is the event's record:
/// delivered again, it replays.
struct SubscriptionEvent {
    /// The change the event names (its price's plan, or the default plan
    /// for an end): its user, key and request hash.
    change: ChangePlan,
    subscription_id: String,
    event_id: String,
    created: i64,
    /// Its price; `None` where it is not active.
    price: Option<String>,
    /// Whether it ended for good.
    done: bool,
    /// `STRIPE_PRICE_PLANS`: the user's other subscriptions' prices are
    /// resolved through today's map, not the one their events came under.
    price_plans: BTreeMap<String, String>,
}

/// What a subscription's event does.
enum Outcome {
    /// Nothing, and why; `seen`: it is still recorded as the subscription's
    /// latest event, so that its older events, delivered later, change
    /// nothing either.
    Ignored { why: String, seen: bool },
    /// The user's active subscriptions with their prices afterwards, the
    /// plan change they make, and the prices among them that no longer map
    /// to a plan of the catalogue.
    Apply { active: BTreeMap<String, String>, change: ChangePlan, unmapped: Vec<String> },
}

impl SubscriptionEvent {
    fn outcome(&self, facts: &SubscriptionFacts, catalogue: &Catalogue) -> Outcome {
        if facts.done {
            let why = "this subscription has ended for good".to_owned();
            return Outcome::Ignored { why, seen: false };
        }
        if facts.last_created.is_some_and(|last| last > self.created) {
            let why = "a newer event of this subscription was applied already".to_owned();
            return Outcome::Ignored { why, seen: false };
        }
        let mut active = facts.active.clone();
        match &self.price {
            Some(price) => {
                active.insert(self.subscription_id.clone(), price.clone());
            }
            // Not active and never applied (its first payment failed, say):
            // it gave the user no plan, so its end takes none away.
            None if active.remove(&self.subscription_id).is_none() && facts.last_created.is_none() => {
                let why = "this subscription never set the user's plan".to_owned();
                return Outcome::Ignored { why, seen: true };
            }
            None => {}
        }
        let mut unmapped = Vec::new();
        let mut best: Option<&crate::plans::Plan> = None;
        for price in active.values() {
            match self.price_plans.get(price).and_then(|name| catalogue.plan(name)) {
                Some(plan) if best.is_none_or(|b| plan.rank > b.rank) => best = Some(plan),
                Some(_) => {}
                None => unmapped.push(price.clone()),
            }
        }
        let plan = best.map_or(catalogue.default_plan(), |plan| plan.name.as_str());
        Outcome::Apply { change: self.change.to_plan(plan), active, unmapped }
    }
}

impl Command for SubscriptionEvent {
    const ROUTE: Route = ChangePlan::ROUTE;

    fn user(&self) -> &UserId {
        self.change.user()
    }

    fn key(&self) -> &str {
        self.change.key()
    }

    /// The plan change's own: events applied before subscriptions were read
    /// with them still replay.
    fn canonical(&self) -> Canonical {
        self.change.canonical()
    }

    fn lookups(&self) -> Lookups {
        Lookups { subscription: Some(self.subscription_id.clone()), ..self.change.lookups() }
    }

    fn related(&self, snapshot: &Snapshot, ctx: &Ctx<'_>) -> Result<Vec<String>, ApiError> {
        match self.outcome(&snapshot.subscription.clone().unwrap_or_default(), ctx.catalogue()) {
            Outcome::Apply { change, .. } => change.related(snapshot, ctx),
            Outcome::Ignored { .. } => Ok(Vec::new()),
        }
    }

    fn decide(&self, snapshot: &Snapshot, ctx: &Ctx<'_>) -> Result<Effect, ApiError> {
        let facts = snapshot.subscription.clone().unwrap_or_default();
        let seen = |active| Write::Subscription {
            subscription_id: self.subscription_id.clone(),
            user_id: self.change.user().to_string(),
            created: self.created,
            event_id: self.event_id.clone(),
            last_created: facts.last_created,
            done: self.done,
            active,
            version: facts.version,
        };
        match self.outcome(&facts, ctx.catalogue()) {
            Outcome::Ignored { why, seen: recorded } => {
                let body = to_json(&json!({"ignored": true, "note": why}))?;
                let writes = if recorded { vec![seen(None)] } else { Vec::new() };
                Ok(Effect { reply: Reply::Ok(body), writes, emails: Vec::new() })
            }
            Outcome::Apply { active, change, unmapped } => {
                if !unmapped.is_empty() {
                    tracing::warn!(user = %self.change.user().redacted(), prices = ?unmapped,
                        "active Stripe subscriptions whose price no longer maps to a plan (STRIPE_PRICE_PLANS) are left out of the user's plan");
                }
                let mut effect = change.decide(snapshot, ctx)?;
                effect.writes.push(seen(Some(active)));
                Ok(effect)
            }
        }
    }
}

fn user(id: &str) -> Result<UserId, ApiError> {
    UserId::parse(id).map_err(|e| ApiError::field("user_id", e))
}

fn key(id: &str, field: &str) -> Result<Key, ApiError> {
    Key::parse(id).map_err(|e| ApiError::field(field, e))
}

/// What an event did: the service's answer to the request it became.
async fn apply(app: &App, stripe: &StripeSettings, event: &Event) -> Result<(&'static str, Reply), ApiError> {
    match &event.action {
        Action::Purchase { user_id, payment_intent, amount_cents, currency } => {
            app.store.remember_payment(payment_intent, user_id).await?.map_err(ApiError::invalid)?;
            let request = json!({"user_id": user_id, "payment_id": payment_intent, "amount_cents": amount_cents, "currency": currency});
            let purchase = serde_json::from_value(request).map_err(|e| ApiError::invalid(e.to_string()));
            let outcome = match purchase.and_then(Purchase::parse) {
                Ok(purchase) => execute(app, &purchase).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(reply) => Ok(("purchase", reply)),
                // Refused for good (answered 200, so Stripe does not deliver
                // it again): a refund or dispute of the payment then knows
                // at once that there is no purchase to reverse.
                Err(e) if e.status < 500 => {
                    app.store.refuse_payment(payment_intent, user_id, e.code).await?;
                    Err(e)
                }
                Err(e) => Err(e),
            }
        }
        Action::Refund { payment_intent, amount_cents, refunded_cents } => {
            let owner = app.store.payment_owner(payment_intent).await?.ok_or_else(ApiError::purchase_not_found)?;
            let refund = Refund {
                user: user(&owner.user_id)?,
                event_id: key(&event.id, "id")?,
                payment_id: key(payment_intent, "payment_intent")?,
                amount_cents: *amount_cents,
                refunded_cents: *refunded_cents,
            };
            reversal(execute(app, &refund).await, &owner, payment_intent)
        }
        Action::Dispute { dispute_id, payment_intent } => {
            let owner = app.store.payment_owner(payment_intent).await?.ok_or_else(ApiError::purchase_not_found)?;
            let reversal_of = Reversal::new(
                user(&owner.user_id)?,
                key(dispute_id, "id")?,
                key(payment_intent, "payment_intent")?,
                "chargeback",
                None,
            );
            reversal(execute(app, &reversal_of).await, &owner, payment_intent)
        }
        Action::Subscription { subscription_id, user_id, state } => {
            let (price, named, done) = match state {
                SubscriptionState::Active { price, plan: Some(plan) } => (Some(price.clone()), plan.as_str(), false),
                // Counted, for no plan: a paying user would otherwise keep
                // the plan of the price they left. The deployer must map it.
                SubscriptionState::Active { price, plan: None } => {
                    tracing::error!(event = %event.id, price = %price,
                        "Stripe subscription on a price STRIPE_PRICE_PLANS does not map: it counts for no plan");
                    (Some(price.clone()), price.as_str(), false)
                }
                SubscriptionState::Ended { done } => (None, app.config.catalogue.default_plan(), *done),
            };
            let request = json!({"user_id": user_id, "change_id": event.id, "plan": named});
            let request = serde_json::from_value(request).map_err(|e| ApiError::invalid(e.to_string()))?;
            let command = SubscriptionEvent {
                change: ChangePlan::parse(request)?,
                subscription_id: subscription_id.clone(),
                event_id: event.id.clone(),
                created: event.created,
                price,
                done,
                price_plans: stripe.price_plans.clone(),
            };
            Ok(("plan_change", execute(app, &command).await?))
        }
        Action::Ignore(why) => Ok(("ignored", Reply::Ok(to_json(&json!({"note": why}))?))),
    }
}

/// What a refund or dispute did. Where there is no purchase to reverse
/// because the payment's checkout was refused, the event is acknowledged as
/// doing nothing (a deployer refunds such a payment), not answered 503 for a
/// day as a checkout that has not arrived yet is.
fn reversal(
    outcome: Result<Reply, ApiError>,
    owner: &PaymentOwner,
    payment_intent: &str,
) -> Result<(&'static str, Reply), ApiError> {
    match (outcome, &owner.refused) {
        (Err(e), Some(refused)) if e.code == "purchase_not_found" => {
            tracing::warn!(payment = %payment_intent, refused = %refused,
                "Stripe refund or dispute of a payment whose checkout was refused; nothing to reverse");
            let note =
                format!("the payment's checkout was refused ({refused}): it bought no credits, so nothing is reversed");
            Ok(("ignored", Reply::Ok(to_json(&json!({"note": note}))?)))
        }
        (outcome, _) => Ok(("reversal", outcome?)),
    }
}

/// How long after a refund or dispute naming a payment this service has not
/// seen it answers 503 (Stripe retries) instead of refusing it for good: a
/// day covers out-of-order deliveries and an outage of the checkout's own
/// delivery, and ends the retries of a refund of a payment that was never a
/// purchase of credits (one Stripe account may sell other things).
pub const UNSEEN_PAYMENT_RETRY_S: i64 = 24 * 3600;

/// Handles one webhook delivery: `signature` is the `Stripe-Signature`
/// header, `payload` the raw body, `now` seconds since the epoch.
pub async fn webhook(
    app: &App,
    stripe: &StripeSettings,
    signature: Option<&str>,
    payload: &[u8],
    now: i64,
) -> Result<Reply, ApiError> {
    verify(signature, payload, &stripe.secret, now).map_err(|e| ApiError::field("Stripe-Signature", e))?;
    let event = read_event(payload, &stripe.price_plans).map_err(ApiError::invalid)?;
    let answer = |applied: bool, action: &str, result: Value| {
        to_json(
            &json!({"received": true, "event": event.id, "type": event.kind, "applied": applied, "action": action, "result": result}),
        )
    };
    match apply(app, stripe, &event).await {
        Ok((action, reply)) => {
            let result: Value = serde_json::from_str(reply.body()).unwrap_or(Value::Null);
            // A command that decided to change nothing says so in its answer
            // (a subscription's stale event), which is also what it replays.
            let action = if result["ignored"] == true { "ignored" } else { action };
            Ok(Reply::Ok(answer(action != "ignored", action, result)?))
        }
        // Stripe retries what is not 2xx: right for what may pass later.
        Err(e) if e.status >= 500 => Err(e),
        // A refund or dispute can arrive before the checkout it follows
        // (Stripe does not order deliveries): while the checkout may still
        // come, answer 503 so Stripe delivers it again.
        Err(e) if e.code == "purchase_not_found" && now.saturating_sub(event.created) < UNSEEN_PAYMENT_RETRY_S => {
            tracing::warn!(event = %event.id, kind = %event.kind,
                "Stripe event names a payment not seen yet; answered 503 so Stripe delivers it again");
            Err(ApiError::unavailable(format!("{}: the payment's checkout has not arrived yet", event.kind)).expected())
        }
        Err(e) if e.code == "reversal_exceeds_purchase" => {
            Ok(Reply::Ok(answer(false, "reversal", json!({"note": "the purchase is reversed in full already"}))?))
        }
        Err(e) => {
            tracing::error!(event = %event.id, kind = %event.kind, code = e.code, error = %e.message,
                "Stripe event cannot be applied; answered 200 so Stripe stops retrying it");
            Ok(Reply::Ok(answer(false, "refused", json!({"error": {"code": e.code, "message": e.message}}))?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::fixtures::account;
    use crate::balance::Balance;
    use crate::config::Config;
    use crate::store::{PurchaseFacts, Write};

    fn refund(refunded_cents: i64) -> Refund {
        Refund {
            user: user("u").expect("user"),
            event_id: key("evt_1", "id").expect("key"),
            payment_id: key("pi_1", "payment_intent").expect("key"),
            amount_cents: 1_000,
            refunded_cents,
        }
    }

    /// Pinned like the routes' (`ops::pinned_request_hashes`): a refund
    /// redelivered after a change to this form must still replay.
    #[test]
    fn a_known_refund_has_a_known_hash() {
        assert_eq!(
            refund(250).canonical().hash().stored(),
            "v1:89de43b593cc91c302e5153d808e5266de02ed0d1d3e5362ee526d39f70f7d9f"
        );
    }

    fn decide(r: &Refund, reversed: i64) -> Effect {
        let config = Config::for_tests();
        let ctx = Ctx { config: &config, now: crate::cycle::now(), fresh_code: "ZZZZ2222" };
        let snapshot = Snapshot {
            account: Some(account(
                "u",
                "pro",
                "2026-01-31T10:00:00Z",
                Balance { flexible: 3_000, ..Balance::default() },
            )),
            purchase: Some(PurchaseFacts { payment_id: "pi_1".into(), credits: 3_000, reversed }),
            ..Snapshot::default()
        };
        r.decide(&snapshot, &ctx).expect("effect")
    }

    #[test]
    fn refunds_reverse_up_to_the_cumulative_refunded_share() {
        let quarter = decide(&refund(250), 0);
        assert!(
            matches!(quarter.writes.as_slice(), [Write::Change(c), Write::CountReversal { after: 750, .. }] if c.delta().flexible == -750)
        );
        let rest = decide(&refund(1_000), 750);
        assert!(matches!(rest.writes.as_slice(), [_, Write::CountReversal { after: 3_000, .. }]));
        let older = decide(&refund(250), 3_000);
        assert!(older.writes.is_empty(), "an older, smaller share after a larger one reverses nothing");
        // Amounts below zero (which the event reader refuses) reverse nothing and do not panic.
        assert!(decide(&Refund { amount_cents: -1, ..refund(250) }, 0).writes.is_empty());
        assert!(decide(&refund(-250), 0).writes.is_empty());
    }

    #[test]
    fn price_plans_must_name_plans_of_the_catalogue() {
        let c = crate::plans::Catalogue::default();
        assert_eq!(StripeSettings::price_plans(None, &c), Ok(BTreeMap::new()));
        assert!(StripeSettings::price_plans(Some(r#"{"price_1": "pro"}"#), &c).is_ok());
        assert!(StripeSettings::price_plans(Some(r#"{"price_1": "gold"}"#), &c).expect_err("gold").contains("gold"));
        assert!(StripeSettings::price_plans(Some("[1]"), &c).is_err());
    }
}
