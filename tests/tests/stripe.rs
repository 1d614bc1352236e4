//! `POST /v1/webhooks/stripe` through `stripe-webhook`, with real-shaped
//! Stripe events (tests/fixtures/stripe/) signed here with a test secret.

use credits::ops::stripe::StripeSettings;
use integration_tests::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const SECRET: &[u8] = b"whsec_test_0123456789abcdef";

fn settings() -> StripeSettings {
    let price_plans = BTreeMap::from([
        ("price_1QcProMonthly".to_owned(), "pro".to_owned()),
        ("price_1QcBusinessMonthly".to_owned(), "business".to_owned()),
    ]);
    StripeSettings { secret: SECRET.to_vec(), price_plans }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A fixture event with its ids made unique to this test and `edit` applied.
fn stripe_event(name: &str, edit: impl FnOnce(&mut Value)) -> Value {
    let mut event = fixture(&format!("stripe/{name}.json"));
    event["id"] = json!(unique("evt"));
    edit(&mut event);
    event
}

/// The API Gateway event of a delivery of `payload` with `signature`.
fn delivery(payload: &str, signature: Option<String>) -> Value {
    let mut event = service_event("stripe-webhook.json", payload);
    match signature {
        Some(sig) => event["headers"]["stripe-signature"] = json!(sig),
        None => {
            if let Some(h) = event["headers"].as_object_mut() {
                h.remove("stripe-signature");
            }
        }
    }
    event
}

async fn handle(app: &credits::App, delivery: &Value) -> Answer {
    answer(stripe_webhook::handle(app, &settings(), request(delivery)).await.expect("handlers never fail"))
}

async fn deliver_signed(app: &credits::App, payload: &str, signature: Option<String>) -> Answer {
    handle(app, &delivery(payload, signature)).await
}

/// The delivery of `event`, signed now.
fn signed(event: &Value) -> Value {
    let payload = event.to_string();
    let signature = credits::stripe::sign(payload.as_bytes(), SECRET, now());
    delivery(&payload, Some(signature))
}

async fn deliver(app: &credits::App, event: &Value) -> Answer {
    handle(app, &signed(event)).await
}

/// A paid Checkout session of $10 for `user` (`client_reference_id`), under payment intent `pi`.
fn checkout(user: &str, pi: &str) -> Value {
    stripe_event("checkout.session.completed", |e| {
        e["data"]["object"]["client_reference_id"] = json!(user);
        e["data"]["object"]["payment_intent"] = json!(pi);
    })
}

/// Delivers `user`'s Checkout payment under `pi` and checks it became a purchase.
async fn pay(app: &credits::App, user: &str, pi: &str) {
    let a = deliver(app, &checkout(user, pi)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!((a.json["applied"].as_bool(), a.json["action"].as_str()), (Some(true), Some("purchase")), "{}", a.text);
}

/// A pro user, a Checkout payment of $10 (3,000 credits) and its payment intent.
async fn paid(app: &credits::App) -> (String, String) {
    let (user, _) = new_user(app, "pro").await;
    let pi = unique("pi");
    pay(app, &user, &pi).await;
    (user, pi)
}

#[tokio::test]
async fn a_paid_checkout_becomes_one_purchase_however_often_stripe_delivers_it() {
    let app = app().await;
    let (user, _) = new_user(&app, "pro").await;
    let pi = unique("pi");
    let checkout = stripe_event("checkout.session.completed", |e| {
        e["data"]["object"]["client_reference_id"] = Value::Null;
        e["data"]["object"]["metadata"] = json!({"user_id": user});
        e["data"]["object"]["payment_intent"] = json!(pi);
    });
    let first = deliver(&app, &checkout).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(
        first.json["result"]["purchase"],
        json!({"payment_id": pi, "amount_cents": 1000, "credits": 3000, "rate_per_dollar": 300, "plan": "pro"})
    );
    let again = deliver(&app, &checkout).await;
    assert_eq!((again.status, again.json["result"].clone()), (200, first.json["result"].clone()));
    assert_eq!(balance(&app, &user).await["flexible"], 3_000, "credited once");
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn bad_stale_and_missing_signatures_are_400_and_touch_nothing() {
    let app = app().await;
    let (user, _) = new_user(&app, "pro").await;
    let session = checkout(&user, &unique("pi"));
    let payload = session.to_string();
    let forged = credits::stripe::sign(payload.as_bytes(), b"whsec_not_ours", now());
    let stale = credits::stripe::sign(payload.as_bytes(), SECRET, now() - 301);
    let tampered = credits::stripe::sign(b"{}", SECRET, now());
    for signature in [Some(forged), Some(stale), Some(tampered), Some("t=1,v1=zz".to_owned()), None] {
        let a = deliver_signed(&app, &payload, signature.clone()).await;
        assert_eq!((a.status, a.code()), (400, "invalid_request"), "{signature:?}: {}", a.text);
        assert!(a.json["error"]["message"].as_str().unwrap_or("").starts_with("Stripe-Signature"), "{}", a.text);
    }
    assert_eq!(balance(&app, &user).await["flexible"], 0);
}

#[tokio::test]
async fn refunds_reverse_the_refunded_share_once_in_any_order() {
    let app = app().await;
    let (user, pi) = paid(&app).await; // 3,000 flexible
    let refund = |refunded: i64| {
        stripe_event("charge.refunded", |e| {
            e["data"]["object"]["payment_intent"] = json!(pi);
            e["data"]["object"]["amount_refunded"] = json!(refunded);
        })
    };
    let (quarter, all) = (refund(250), refund(1_000));
    // Out of order: the full refund first, then the older partial one.
    let a = deliver(&app, &all).await;
    assert_eq!((a.status, a.json["result"]["reversal"]["credits"].as_i64()), (200, Some(3_000)), "{}", a.text);
    let b = deliver(&app, &quarter).await;
    assert_eq!(b.status, 200, "{}", b.text);
    assert!(b.json["result"]["reversal"].is_null(), "nothing beyond what is reversed: {}", b.text);
    assert_eq!(deliver(&app, &all).await.json["result"], a.json["result"], "a duplicate replays");
    assert_eq!(balance(&app, &user).await["flexible"], 0);
    assert_ledger_explains_balance(&app, &user).await;

    let (other, pi2) = paid(&app).await;
    let partial = stripe_event("charge.refunded", |e| {
        e["data"]["object"]["payment_intent"] = json!(pi2);
        e["data"]["object"]["amount_refunded"] = json!(250);
    });
    assert_eq!(deliver(&app, &partial).await.json["result"]["reversal"]["credits"], 750);
    let dispute = stripe_event("charge.dispute.created", |e| e["data"]["object"]["payment_intent"] = json!(pi2));
    let d = deliver(&app, &dispute).await;
    assert_eq!(
        (d.status, d.json["result"]["reversal"]["credits"].as_i64()),
        (200, Some(2_250)),
        "the rest: {}",
        d.text
    );
    let again = stripe_event("charge.dispute.created", |e| {
        e["data"]["object"]["payment_intent"] = json!(pi2);
        e["data"]["object"]["id"] = json!(unique("dp"));
    });
    let nothing = deliver(&app, &again).await;
    assert_eq!((nothing.status, nothing.json["applied"].as_bool()), (200, Some(false)), "{}", nothing.text);
    assert_eq!(balance(&app, &other).await["flexible"], 0);
    assert_ledger_explains_balance(&app, &other).await;
}

/// An update of `user`'s subscription `sub` to `price`, stamped `created`.
fn subscription_update(sub: &str, user: &str, price: &str, created: i64) -> Value {
    stripe_event("customer.subscription.updated", |e| {
        e["created"] = json!(created);
        e["data"]["object"]["id"] = json!(sub);
        e["data"]["object"]["metadata"]["user_id"] = json!(user);
        e["data"]["object"]["items"]["data"][0]["price"]["id"] = json!(price);
    })
}

#[tokio::test]
async fn subscription_updates_change_the_plan_and_an_older_one_is_ignored() {
    let app = app().await;
    let (user, _) = new_user(&app, "free").await;
    let sub = unique("sub");
    let update = |price: &str, created: i64| subscription_update(&sub, &user, price, created);
    let (to_pro, to_business) = (update("price_1QcProMonthly", 1_000), update("price_1QcBusinessMonthly", 2_000));
    let a = deliver(&app, &to_business).await;
    assert_eq!((a.status, a.json["action"].as_str()), (200, Some("plan_change")), "{}", a.text);
    assert_eq!(a.json["result"]["account"]["plan"], "business");
    let late = deliver(&app, &to_pro).await;
    assert_eq!((late.status, late.json["action"].as_str()), (200, Some("ignored")), "{}", late.text);
    let again = deliver(&app, &to_business).await;
    assert_eq!(
        (again.json["action"].as_str(), again.json["result"].clone()),
        (Some("plan_change"), a.json["result"].clone())
    );
    assert_eq!(account_event(&app, &user_event("balance.json", Some(&user), "")).await.json["plan"], "business");
    // Moved to a price STRIPE_PRICE_PLANS does not map: it counts for no plan (the user does not
    // keep business for a price that is not), and the deployer is told.
    let logs = capture_logs();
    let unknown = deliver(&app, &update("price_unknown", 3_000)).await;
    assert_eq!(
        (unknown.status, unknown.json["result"]["account"]["plan"].as_str()),
        (200, Some("free")),
        "{}",
        unknown.text
    );
    assert!(logs.at_level("ERROR").iter().any(|l| l["price"] == "price_unknown"), "an error names the price");
}

#[tokio::test]
async fn an_end_for_good_outranks_an_activation_of_the_same_second() {
    let app = app().await;
    let (user, _) = new_user(&app, "free").await;
    let sub = unique("sub");
    let end =
        subscription_event("customer.subscription.deleted", &sub, &user, "price_1QcProMonthly", "canceled", 5_000);
    assert_eq!(deliver(&app, &end).await.json["action"], "ignored");
    let same_second =
        subscription_event("customer.subscription.created", &sub, &user, "price_1QcProMonthly", "active", 5_000);
    let a = deliver(&app, &same_second).await;
    assert_eq!((a.json["applied"].as_bool(), a.json["action"].as_str()), (Some(false), Some("ignored")), "{}", a.text);
    assert_eq!(plan_of(&app, &user).await, "free");
}

#[tokio::test]
async fn updates_in_the_same_second_apply_in_arrival_order_and_a_redelivery_answers_as_before() {
    let app = app().await;
    let (user, _) = new_user(&app, "free").await;
    let sub = unique("sub");
    let update = |price: &str, created: i64| subscription_update(&sub, &user, price, created);
    let plan =
        || async { account_event(&app, &user_event("balance.json", Some(&user), "")).await.json["plan"].clone() };
    let (to_pro, to_business) = (update("price_1QcProMonthly", 1_000), update("price_1QcBusinessMonthly", 1_000));
    let first = deliver(&app, &to_pro).await;
    assert_eq!(
        (first.json["action"].as_str(), first.json["result"]["account"]["plan"].as_str()),
        (Some("plan_change"), Some("pro"))
    );
    let second = deliver(&app, &to_business).await;
    assert_eq!(
        (second.json["action"].as_str(), second.json["result"]["account"]["plan"].as_str()),
        (Some("plan_change"), Some("business")),
        "the same second is not older: {}",
        second.text
    );
    // Delivered again, each answers as it did the first time, and changes nothing,
    // before and after a newer update.
    for round in ["same second", "after a newer one"] {
        for (event, answer) in [(&to_pro, &first), (&to_business, &second)] {
            let again = deliver(&app, event).await;
            assert_eq!(
                (again.status, again.json["action"].as_str()),
                (200, Some("plan_change")),
                "{round}: {}",
                again.text
            );
            assert_eq!(again.json["result"], answer.json["result"], "{round}");
        }
        let expected = if round == "same second" { "business" } else { "pro" };
        assert_eq!(plan().await, expected, "{round}");
        let newer = deliver(&app, &update("price_1QcProMonthly", 2_000)).await;
        assert_eq!(newer.json["applied"].as_bool(), Some(true), "{}", newer.text);
    }
    let older = deliver(&app, &update("price_1QcBusinessMonthly", 1_500)).await;
    assert_eq!((older.status, older.json["action"].as_str()), (200, Some("ignored")), "{}", older.text);
    assert_eq!(plan().await, "pro");
}

/// `sub`'s event `kind` (`customer.subscription.updated`, `.deleted`) with `status`, stamped `created`.
fn subscription_event(kind: &str, sub: &str, user: &str, price: &str, status: &str, created: i64) -> Value {
    let mut event = subscription_update(sub, user, price, created);
    event["type"] = json!(kind);
    event["data"]["object"]["status"] = json!(status);
    event
}

async fn plan_of(app: &credits::App, user: &str) -> Value {
    account_event(app, &user_event("balance.json", Some(user), "")).await.json["plan"].clone()
}

#[tokio::test]
async fn a_deleted_subscription_moves_the_user_to_the_default_plan_and_older_updates_stay_ignored() {
    let app = app().await;
    let (user, _) = new_user(&app, "free").await;
    let sub = unique("sub");
    let up = deliver(&app, &subscription_update(&sub, &user, "price_1QcProMonthly", 1_000)).await;
    assert_eq!(up.json["result"]["account"]["plan"], "pro", "{}", up.text);
    let deleted =
        subscription_event("customer.subscription.deleted", &sub, &user, "price_1QcProMonthly", "canceled", 2_000);
    let end = deliver(&app, &deleted).await;
    assert_eq!(
        (end.status, end.json["applied"].as_bool(), end.json["action"].as_str()),
        (200, Some(true), Some("plan_change")),
        "{}",
        end.text
    );
    assert_eq!(end.json["result"]["account"]["plan"], "free");
    assert_eq!(plan_of(&app, &user).await, "free");
    let again = deliver(&app, &deleted).await;
    assert_eq!((again.status, again.json["result"].clone()), (200, end.json["result"].clone()));
    // An update older than the deletion, delivered late, changes nothing, and answers so again.
    let late = subscription_update(&sub, &user, "price_1QcBusinessMonthly", 1_500);
    for _ in 0..2 {
        let a = deliver(&app, &late).await;
        assert_eq!(
            (a.status, a.json["applied"].as_bool(), a.json["action"].as_str()),
            (200, Some(false), Some("ignored")),
            "{}",
            a.text
        );
    }
    assert_eq!(plan_of(&app, &user).await, "free");
    // Another one cancelled before its activation was delivered (Stripe retrying it): the end
    // comes first and sets no plan, and the activation, older, then changes nothing either.
    let other = unique("sub");
    let early_end =
        subscription_event("customer.subscription.deleted", &other, &user, "price_1QcProMonthly", "canceled", 3_000);
    let e = deliver(&app, &early_end).await;
    assert_eq!((e.json["applied"].as_bool(), e.json["action"].as_str()), (Some(false), Some("ignored")), "{}", e.text);
    let created =
        subscription_event("customer.subscription.created", &other, &user, "price_1QcProMonthly", "active", 2_900);
    let c = deliver(&app, &created).await;
    assert_eq!((c.json["applied"].as_bool(), c.json["action"].as_str()), (Some(false), Some("ignored")), "{}", c.text);
    assert_eq!(plan_of(&app, &user).await, "free");
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn a_user_with_several_subscriptions_gets_the_best_plan_among_the_active_ones_in_any_order() {
    let app = app().await;
    let (user, _) = new_user(&app, "free").await;
    let (old, new) = (unique("sub"), unique("sub"));
    let event = |kind: &str, sub: &str, price: &str, status: &str, created: i64| {
        subscription_event(kind, sub, &user, price, status, created)
    };
    let updated = "customer.subscription.updated";
    let deliver_plan = |event: Value| {
        let app = app.clone();
        async move {
            let a = deliver(&app, &event).await;
            assert_eq!(a.status, 200, "{}", a.text);
            a
        }
    };
    deliver_plan(event(updated, &old, "price_1QcProMonthly", "active", 1_000)).await;
    let b =
        deliver_plan(event("customer.subscription.created", &new, "price_1QcBusinessMonthly", "active", 1_100)).await;
    assert_eq!(b.json["result"]["account"]["plan"], "business", "{}", b.text);
    // The old one, delivered late or set to cancel, does not take the plan back.
    let late = deliver_plan(event(updated, &old, "price_1QcProMonthly", "active", 1_050)).await;
    assert_eq!(late.json["result"]["account"]["plan"], "business", "{}", late.text);
    let mut cancelling = event(updated, &old, "price_1QcProMonthly", "active", 1_200);
    cancelling["data"]["object"]["cancel_at_period_end"] = json!(true);
    assert_eq!(deliver_plan(cancelling).await.json["result"]["account"]["plan"], "business");
    let gone =
        deliver_plan(event("customer.subscription.deleted", &old, "price_1QcProMonthly", "canceled", 2_000)).await;
    assert_eq!(gone.json["result"]["account"]["plan"], "business", "{}", gone.text);
    // A third one whose first payment never came (incomplete, then incomplete_expired) changes nothing.
    let failed = unique("sub");
    let pending = deliver_plan(event(updated, &failed, "price_1QcProMonthly", "incomplete", 2_100)).await;
    assert_eq!(pending.json["applied"], false, "{}", pending.text);
    let expired = deliver_plan(event(updated, &failed, "price_1QcProMonthly", "incomplete_expired", 2_200)).await;
    assert_eq!(
        (expired.json["applied"].as_bool(), expired.json["action"].as_str()),
        (Some(false), Some("ignored")),
        "{}",
        expired.text
    );
    assert_eq!(plan_of(&app, &user).await, "business");
    // A renewal still being retried (past_due) is not decided yet; one that failed for good (unpaid) ends it.
    let retrying = deliver_plan(event(updated, &new, "price_1QcBusinessMonthly", "past_due", 2_500)).await;
    assert_eq!(retrying.json["applied"], false, "{}", retrying.text);
    let unpaid = deliver_plan(event(updated, &new, "price_1QcBusinessMonthly", "unpaid", 3_000)).await;
    assert_eq!(unpaid.json["result"]["account"]["plan"], "free", "{}", unpaid.text);
    assert_eq!(plan_of(&app, &user).await, "free");
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn the_other_subscriptions_prices_are_read_through_todays_price_map() {
    let app = app().await;
    let (user, _) = new_user(&app, "free").await;
    let (a, b) = (unique("sub"), unique("sub"));
    deliver(&app, &subscription_update(&a, &user, "price_1QcProMonthly", 1_000)).await;
    deliver(&app, &subscription_update(&b, &user, "price_1QcBusinessMonthly", 1_100)).await;
    assert_eq!(plan_of(&app, &user).await, "business");
    // The deployer maps the pro price to basic from now on; b ends: a counts as basic, not pro.
    let mut remapped = settings();
    remapped.price_plans.insert("price_1QcProMonthly".into(), "basic".into());
    let end =
        subscription_event("customer.subscription.deleted", &b, &user, "price_1QcBusinessMonthly", "canceled", 2_000);
    let a_end = answer(stripe_webhook::handle(&app, &remapped, request(&signed(&end))).await.expect("handled"));
    assert_eq!(a_end.json["result"]["account"]["plan"], "basic", "{}", a_end.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_updates_of_a_subscription_leave_the_newest_ones_plan() {
    let app = app().await;
    for round in 0..3 {
        let (user, _) = new_user(&app, "free").await;
        let sub = unique("sub");
        // Eight updates at once, alternating plans, the newest (created 1,007) last or first by round.
        let mut updates: Vec<(i64, &str)> = (0..8)
            .map(|i| (1_000 + i, if i % 2 == 0 { "price_1QcProMonthly" } else { "price_1QcBusinessMonthly" }))
            .collect();
        if round % 2 == 1 {
            updates.reverse();
        }
        let runs: Vec<_> = updates
            .into_iter()
            .map(|(created, price)| {
                let (app, event) = (app.clone(), subscription_update(&sub, &user, price, created));
                tokio::spawn(async move { deliver(&app, &event).await.status })
            })
            .collect();
        for run in runs {
            assert_eq!(run.await.expect("delivery"), 200);
        }
        assert_eq!(plan_of(&app, &user).await, "business", "round {round}: the update created last wins");
        assert_ledger_explains_balance(&app, &user).await;
    }
}

#[tokio::test]
async fn a_checkout_paid_by_a_delayed_method_is_credited_when_the_payment_succeeds() {
    let app = app().await;
    let (user, _) = new_user(&app, "pro").await;
    let pi = unique("pi");
    let mut completed = checkout(&user, &pi);
    completed["data"]["object"]["payment_status"] = json!("unpaid");
    let waiting = deliver(&app, &completed).await;
    assert_eq!((waiting.status, waiting.json["applied"].as_bool()), (200, Some(false)), "{}", waiting.text);
    assert_eq!(balance(&app, &user).await["flexible"], 0);
    let succeeded = stripe_event("checkout.session.completed", |e| {
        e["type"] = json!("checkout.session.async_payment_succeeded");
        e["data"]["object"]["client_reference_id"] = json!(user);
        e["data"]["object"]["payment_intent"] = json!(pi);
    });
    let paid = deliver(&app, &succeeded).await;
    assert_eq!(
        (paid.json["applied"].as_bool(), paid.json["action"].as_str()),
        (Some(true), Some("purchase")),
        "{}",
        paid.text
    );
    assert_eq!(balance(&app, &user).await["flexible"], 3_000);
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn an_event_that_can_never_apply_is_acknowledged_and_logged() {
    let logs = capture_logs();
    let app = app().await;
    let (free, _) = new_user(&app, "free").await;
    let session = checkout(&free, &unique("pi"));
    let a = deliver(&app, &session).await;
    assert_eq!((a.status, a.json["applied"].as_bool(), a.json["action"].as_str()), (200, Some(false), Some("refused")));
    assert_eq!(a.json["result"]["error"]["code"], "plan_not_eligible");
    let id = session["id"].as_str().unwrap_or("");
    assert!(logs.at_level("ERROR").iter().any(|l| l["event"] == id), "an error line names the event");
    let other = deliver(&app, &stripe_event("invoice.paid", |_| {})).await;
    assert_eq!((other.status, other.json["action"].as_str()), (200, Some("ignored")));
}

#[tokio::test]
async fn a_refund_or_dispute_of_a_refused_checkout_is_acknowledged_at_once() {
    let app = app().await;
    let (free, _) = new_user(&app, "free").await;
    let pi = unique("pi");
    let refused = deliver(&app, &checkout(&free, &pi)).await;
    assert_eq!((refused.status, refused.json["action"].as_str()), (200, Some("refused")), "{}", refused.text);
    // The deployer refunds the payment that bought nothing; the customer disputes it too.
    let refund = stripe_event("charge.refunded", |e| {
        e["created"] = json!(now());
        e["data"]["object"]["payment_intent"] = json!(pi);
        e["data"]["object"]["amount_refunded"] = json!(1_000);
    });
    let dispute = stripe_event("charge.dispute.created", |e| {
        e["created"] = json!(now());
        e["data"]["object"]["payment_intent"] = json!(pi);
    });
    for event in [&refund, &dispute, &refund] {
        let a = deliver(&app, event).await;
        assert_eq!(
            (a.status, a.json["applied"].as_bool(), a.json["action"].as_str()),
            (200, Some(false), Some("ignored")),
            "{}",
            a.text
        );
        let note = a.json["result"]["note"].as_str().unwrap_or("");
        assert!(note.contains("refused (plan_not_eligible)"), "{note}");
    }
    assert_eq!(balance(&app, &free).await["total"], 1_000, "nothing bought, nothing taken");
    assert_ledger_explains_balance(&app, &free).await;

    // The same checkout delivered again once the user may buy becomes the purchase, and its refund a reversal.
    let upgraded = change_plan(&app, json!({"user_id": free, "change_id": "up", "plan": "pro"})).await;
    assert_eq!(upgraded.status, 200, "{}", upgraded.text);
    pay(&app, &free, &pi).await;
    let reversed = deliver(
        &app,
        &stripe_event("charge.refunded", |e| {
            e["data"]["object"]["payment_intent"] = json!(pi);
            e["data"]["object"]["amount_refunded"] = json!(1_000);
        }),
    )
    .await;
    assert_eq!((reversed.status, reversed.json["action"].as_str()), (200, Some("reversal")), "{}", reversed.text);
    assert_eq!(reversed.json["result"]["reversal"]["credits"], 3_000, "{}", reversed.text);
}

#[tokio::test]
async fn the_signing_secret_is_read_from_ssm_parameter_store() {
    let ssm = aws_sdk_ssm::Client::new(&sdk_config());
    let stored = |value: &'static str| {
        let ssm = ssm.clone();
        async move {
            let name = format!("/credits/{}/stripe-secret", unique("t"));
            ssm.put_parameter()
                .name(&name)
                .value(value)
                .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
                .send()
                .await
                .expect("parameter stored");
            name
        }
    };
    let name = stored("whsec_from_ssm").await;
    assert_eq!(stripe_webhook::load_secret(&ssm, &name).await.expect("secret"), b"whsec_from_ssm");
    // Stored from a file, with its line break: the secret is the line.
    let name = stored("whsec_from_a_file\n").await;
    assert_eq!(stripe_webhook::load_secret(&ssm, &name).await.expect("secret"), b"whsec_from_a_file");
    for value in ["whsec_", "whsec_two words", "sk_live_123", "whsec_abc\u{7}"] {
        let name = stored(value).await;
        let refused = stripe_webhook::load_secret(&ssm, &name).await.expect_err(value);
        assert!(refused.to_string().contains("does not hold a Stripe signing secret"), "{value:?}: {refused}");
        assert!(!refused.to_string().contains(value.trim_start_matches("whsec_")) || value == "whsec_", "{refused}");
    }
    let missing = stripe_webhook::load_secret(&ssm, "/credits/nope").await.expect_err("missing");
    assert!(
        missing.to_string().contains("STRIPE_SECRET_PARAMETER") && missing.to_string().contains("/credits/nope"),
        "{missing}"
    );
}

#[tokio::test]
async fn a_refund_before_its_checkout_is_answered_503_until_the_checkout_has_come() {
    let app = app().await;
    let (user, _) = new_user(&app, "pro").await;
    let pi = unique("pi");
    let refund = stripe_event("charge.refunded", |e| {
        e["created"] = json!(now());
        e["data"]["object"]["payment_intent"] = json!(pi);
        e["data"]["object"]["amount_refunded"] = json!(1_000);
    });
    let logs = capture_logs();
    let mut early_delivery = signed(&refund);
    let request_id = unique("req");
    early_delivery["requestContext"]["requestId"] = json!(request_id);
    let early = handle(&app, &early_delivery).await;
    assert_eq!((early.status, early.code()), (503, "unavailable"), "Stripe delivers it again: {}", early.text);
    // Expected, so a warning: the error alarm is for failures.
    let own: Vec<_> = logs.lines().into_iter().filter(|l| l["span"]["request_id"] == request_id.as_str()).collect();
    assert!(own.iter().any(|l| l["level"] == "WARN" && l["status"] == 503), "{own:?}");
    assert!(own.iter().all(|l| l["level"] != "ERROR"), "{own:?}");

    pay(&app, &user, &pi).await;
    let later = deliver(&app, &refund).await;
    assert_eq!(
        (later.status, later.json["result"]["reversal"]["credits"].as_i64()),
        (200, Some(3_000)),
        "{}",
        later.text
    );
    assert_eq!(balance(&app, &user).await["flexible"], 0);
    assert_ledger_explains_balance(&app, &user).await;

    // A day on, a payment still unknown was not a purchase of credits: refused for good.
    let stranger = stripe_event("charge.refunded", |e| {
        e["created"] = json!(now() - credits::ops::stripe::UNSEEN_PAYMENT_RETRY_S - 60);
        e["data"]["object"]["payment_intent"] = json!(unique("pi"));
    });
    let old = deliver(&app, &stranger).await;
    assert_eq!((old.status, old.json["action"].as_str()), (200, Some("refused")), "{}", old.text);
}

/// Stripe retries what is not 2xx: a store that fails must not be answered
/// 200, or the payment's credits are lost.
#[tokio::test]
async fn a_store_failure_is_answered_5xx_so_stripe_retries() {
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_sdk_dynamodb::types::error::InternalServerError;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    let down = mock!(aws_sdk_dynamodb::Client::put_item)
        .then_error(|| PutItemError::InternalServerError(InternalServerError::builder().message("down").build()));
    let db = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&down]);
    let send = mock!(aws_sdk_sesv2::Client::send_email)
        .then_output(|| aws_sdk_sesv2::operation::send_email::SendEmailOutput::builder().message_id("m").build());
    let ses = mock_client!(aws_sdk_sesv2, RuleMode::MatchAny, [&send]);
    let app = mocked_app(db, ses);
    let session = checkout("someone", &unique("pi"));
    let a = deliver(&app, &session).await;
    assert!(a.status >= 500, "not acknowledged: {} {}", a.status, a.text);
    assert!(down.num_calls() >= 1);
    assert_eq!(send.num_calls(), 0, "no email for what did not commit");
}

/// stripe-webhook's role allows every DynamoDB action its events need (the
/// other functions' are checked in template.rs).
#[tokio::test]
async fn the_role_allows_what_the_webhook_sends() {
    let setup = app().await;
    let log = RequestLog::default();
    let app = app_with(&[], Some(log.clone())).await;
    let (user, _) = new_user(&setup, "pro").await;
    let pi = unique("pi");
    log.clear();
    pay(&app, &user, &pi).await;
    let refund = stripe_event("charge.refunded", |e| {
        e["data"]["object"]["payment_intent"] = json!(pi);
        e["data"]["object"]["amount_refunded"] = json!(250);
    });
    let refunded = deliver(&app, &refund).await;
    assert_eq!((refunded.status, refunded.json["action"].as_str()), (200, Some("reversal")), "{}", refunded.text);
    let sub = unique("sub");
    let up = deliver(&app, &subscription_update(&sub, &user, "price_1QcBusinessMonthly", now())).await;
    assert_eq!((up.status, up.json["action"].as_str()), (200, Some("plan_change")), "{}", up.text);
    let end = subscription_event(
        "customer.subscription.deleted",
        &sub,
        &user,
        "price_1QcBusinessMonthly",
        "canceled",
        now() + 1,
    );
    let ended = deliver(&app, &end).await;
    assert_eq!((ended.status, ended.json["action"].as_str()), (200, Some("plan_change")), "{}", ended.text);
    integration_tests::template::assert_role_allows("StripeWebhookFunction", &log.actions());
}

/// A payment intent stays its first user's: recording it for another is an
/// answer (the webhook refuses that checkout), not an error, and marking it
/// refused for another changes nothing.
#[tokio::test]
async fn a_payment_intent_stays_its_first_users() {
    let app = app().await;
    let pi = unique("pi");
    assert_eq!(app.store.remember_payment(&pi, "alice").await.expect("recorded"), Ok(()));
    let other = app.store.remember_payment(&pi, "bob").await.expect("no error");
    assert!(other.as_ref().is_err_and(|why| why.contains("another user")), "{other:?}");
    app.store.refuse_payment(&pi, "bob", "plan_not_eligible").await.expect("no error: not bob's");
    let owner = app.store.payment_owner(&pi).await.expect("read").expect("recorded");
    assert_eq!((owner.user_id.as_str(), owner.refused), ("alice", None));
}
