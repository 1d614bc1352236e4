//! `POST /v1/purchases`: flexible credits at the plan's rate, with a receipt.

use super::command::{Command, Ctx, Effect, Snapshot};
use super::execute::execute;
use crate::account::Entries;
use crate::balance::{Balance, Bucket};
use crate::email::{purchase_receipt, Receipt};
use crate::http::{record_user, to_json, ApiError, Reply};
use crate::idempotency::{Canonical, Route};
use crate::ledger::EntryKind;
use crate::store::Write;
use crate::types::{in_range, Key, UserId};
use crate::App;
use serde::{Deserialize, Serialize};

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurchaseRequest {
    user_id: String,
    payment_id: String,
    amount_cents: i64,
    currency: String,
}

/// Smallest and largest purchase, in cents.
pub const AMOUNT_CENTS: std::ops::RangeInclusive<i64> = 100..=1_000_000;

/// A valid purchase.
#[derive(Debug)]
pub struct Purchase {
    user: UserId,
    payment_id: Key,
    amount_cents: i64,
}

impl Purchase {
    /// Validates a request; 400 naming the field.
    pub fn parse(request: PurchaseRequest) -> Result<Purchase, ApiError> {
        let user = UserId::parse(&request.user_id).map_err(|e| ApiError::field("user_id", e))?;
        record_user(&user);
        let payment_id = Key::parse(&request.payment_id).map_err(|e| ApiError::field("payment_id", e))?;
        let amount_cents =
            in_range(request.amount_cents, AMOUNT_CENTS).map_err(|e| ApiError::field("amount_cents", e))?;
        if request.currency != "USD" {
            return Err(ApiError::field("currency", "unsupported currency; only \"USD\" is accepted"));
        }
        Ok(Purchase { user, payment_id, amount_cents })
    }
}

#[derive(Serialize)]
struct PurchaseView<'a> {
    payment_id: &'a str,
    amount_cents: i64,
    credits: i64,
    rate_per_dollar: i64,
    plan: &'a str,
}

#[derive(Serialize)]
struct Created<'a> {
    purchase: PurchaseView<'a>,
    balance: Balance,
}

impl Command for Purchase {
    const ROUTE: Route = Route::Purchase;

    fn user(&self) -> &UserId {
        &self.user
    }

    fn key(&self) -> &str {
        self.payment_id.as_str()
    }

    fn canonical(&self) -> Canonical {
        Canonical::new(Route::Purchase)
            .text("user_id", self.user.as_str())
            .text("payment_id", self.payment_id.as_str())
            .number("amount_cents", self.amount_cents)
            .text("currency", "USD")
    }

    fn decide(&self, snapshot: &Snapshot, ctx: &Ctx<'_>) -> Result<Effect, ApiError> {
        let account = snapshot.account()?;
        let plan = account.current_plan(ctx.catalogue())?;
        let (Some(rate), Some(credits)) =
            (plan.rate_per_dollar, ctx.catalogue().purchase_credits(plan, self.amount_cents))
        else {
            return Err(ApiError::plan_not_eligible(format!(
                "the {} plan cannot buy credits; upgrade to a plan with a purchase rate",
                plan.name
            )));
        };
        let mut entries = Entries::on(account, ctx.now);
        let delta = entries
            .credit(EntryKind::Purchase, Bucket::Flexible, credits, self.payment_id.as_str())
            .map_err(|_| ApiError::field("amount_cents", "the balance cannot hold that many credits"))?;
        let balance = entries.balance();
        let body = to_json(&Created {
            purchase: PurchaseView {
                payment_id: self.payment_id.as_str(),
                amount_cents: self.amount_cents,
                credits,
                rate_per_dollar: rate,
                plan: &plan.name,
            },
            balance,
        })?;
        let receipt = Receipt {
            user_id: self.user.as_str(),
            payment_id: self.payment_id.as_str(),
            amount_cents: self.amount_cents,
            credits,
            rate_per_dollar: rate,
            plan: &plan.name,
            debt_repaid: -delta.debt,
            balance,
        };
        Ok(Effect {
            reply: Reply::Created(body),
            writes: vec![Write::Change(entries.finish())],
            emails: vec![purchase_receipt(ctx.letters(), &receipt, &account.email, ctx.now)],
        })
    }
}

/// Handles a purchase.
pub async fn purchase(app: &App, request: PurchaseRequest) -> Result<Reply, ApiError> {
    execute(app, &Purchase::parse(request)?).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::fixtures::account;

    fn purchase(user: &str, cents: i64) -> Purchase {
        let body =
            serde_json::json!({"user_id": user, "payment_id": "pay-1", "amount_cents": cents, "currency": "USD"});
        Purchase::parse(serde_json::from_value(body).expect("body")).expect("valid")
    }

    fn decide(plan: &str, balance: Balance, cents: i64) -> Result<Effect, ApiError> {
        let config = crate::config::Config::for_tests();
        let account = account("u", plan, "2026-01-31T10:00:00Z", balance);
        let ctx = Ctx { config: &config, now: account.cycle.start, fresh_code: "ZZZZ2222" };
        purchase("u", cents).decide(&Snapshot { account: Some(account), ..Snapshot::default() }, &ctx)
    }

    #[test]
    fn a_pro_purchase_credits_three_per_cent_with_a_receipt() {
        let effect =
            decide("pro", Balance { plan: 5_000, bonus: 0, flexible: 0, ..Balance::default() }, 1_000).expect("effect");
        let body: serde_json::Value = serde_json::from_str(effect.reply.body()).expect("json");
        assert_eq!(effect.reply.status(), 201);
        assert_eq!(body["purchase"]["credits"], 3_000);
        assert_eq!(body["balance"]["total"], 8_000);
        let [Write::Change(change)] = effect.writes.as_slice() else { panic!("{:?}", effect.writes) };
        assert_eq!(change.entries.len(), 1);
        let entry = &change.entries[0];
        assert_eq!(
            (entry.kind, entry.delta),
            (EntryKind::Purchase, crate::balance::Delta::to(Bucket::Flexible, 3_000))
        );
        assert_eq!(effect.emails.len(), 1);
        assert!(effect.emails[0].text.contains("$10.00 USD for 3,000 flexible credits"));
    }

    #[test]
    fn a_purchase_repays_debt_first_and_its_entry_shows_it() {
        let effect = decide("pro", Balance { debt: 1_000, ..Balance::default() }, 1_000).expect("effect");
        let body: serde_json::Value = serde_json::from_str(effect.reply.body()).expect("json");
        assert_eq!(body["purchase"]["credits"], 3_000, "the purchase's credits, repayment included");
        assert_eq!(
            body["balance"],
            serde_json::json!({"plan": 0, "bonus": 0, "flexible": 2000, "held": 0, "debt": 0, "total": 2000})
        );
        let [Write::Change(change)] = effect.writes.as_slice() else { panic!("{:?}", effect.writes) };
        let delta = change.entries[0].delta;
        assert_eq!((delta.flexible, delta.debt), (2_000, -1_000));
        assert!(effect.emails[0].text.contains("1,000 of them repaid"), "{}", effect.emails[0].text);
    }

    #[test]
    fn business_buys_at_two_per_cent_and_rounds_down() {
        let effect = decide("business", Balance::default(), 1_999).expect("effect");
        let body: serde_json::Value = serde_json::from_str(effect.reply.body()).expect("json");
        assert_eq!(body["purchase"]["credits"], 3_998);
    }

    #[test]
    fn plans_without_a_rate_are_refused_with_403() {
        for plan in ["free", "basic"] {
            let err = decide(plan, Balance::default(), 1_000).expect_err("not eligible");
            assert_eq!((err.status, err.code), (403, "plan_not_eligible"));
        }
    }

    #[test]
    fn an_account_on_a_plan_the_catalogue_lost_gets_a_clear_500_not_a_guess() {
        let err = decide("legacy", Balance::default(), 1_000).expect_err("unknown plan");
        assert_eq!((err.status, err.code), (500, "internal"));
        assert!(err.message.contains("\"legacy\"") && !err.message.contains("CREDITS_CONFIG"), "{}", err.message);
        assert!(err.detail.is_some_and(|d| d.contains("legacy") && d.contains("CREDITS_CONFIG")));
    }

    #[test]
    fn a_balance_that_cannot_hold_the_credits_is_400() {
        let err = decide("pro", Balance { flexible: i64::MAX - 10, ..Balance::default() }, 1_000).expect_err("full");
        assert_eq!((err.status, err.code), (400, "invalid_request"));
    }

    #[test]
    fn no_account_is_404() {
        let config = crate::config::Config::for_tests();
        let ctx = Ctx { config: &config, now: crate::cycle::now(), fresh_code: "ZZZZ2222" };
        let err = purchase("u", 1_000).decide(&Snapshot::default(), &ctx).expect_err("no account");
        assert_eq!(err.code, "account_not_found");
    }

    #[test]
    fn bad_fields_are_named() {
        let parse = |body: serde_json::Value| Purchase::parse(serde_json::from_value(body).expect("shape"));
        let ok = serde_json::json!({"user_id": "u", "payment_id": "p", "amount_cents": 100, "currency": "USD"});
        for (field, value) in [
            ("amount_cents", serde_json::json!(99)),
            ("currency", serde_json::json!("EUR")),
            ("payment_id", serde_json::json!("a b")),
        ] {
            let mut body = ok.clone();
            body[field] = value;
            let err = parse(body).expect_err("invalid");
            assert!(err.message.starts_with(field), "{}", err.message);
        }
    }
}
