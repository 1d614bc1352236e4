//! `POST /v1/spends`: credits drawn plan first, then bonus, then flexible.

use super::command::{Command, Ctx, Effect, Snapshot};
use super::execute::execute;
use crate::account::Entries;
use crate::balance::{draw, Balance, Delta, Parts};
use crate::http::{record_user, to_json, ApiError, Reply};
use crate::idempotency::{Canonical, Route};
use crate::ledger::EntryKind;
use crate::store::Write;
use crate::types::{in_range, parse_label, Key, UserId};
use crate::App;
use serde::{Deserialize, Serialize};

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpendRequest {
    user_id: String,
    spend_id: String,
    credits: i64,
    #[serde(default)]
    feature: Option<String>,
}

/// Smallest and largest spend.
pub const SPEND_CREDITS: std::ops::RangeInclusive<i64> = 1..=10_000_000;

/// Longest `feature` label, in characters.
pub const FEATURE_MAX_CHARS: usize = 64;

/// A valid spend.
#[derive(Debug)]
pub struct Spend {
    user: UserId,
    spend_id: Key,
    credits: i64,
    feature: Option<String>,
}

impl Spend {
    /// Validates a request; 400 naming the field.
    pub fn parse(request: SpendRequest) -> Result<Spend, ApiError> {
        let user = UserId::parse(&request.user_id).map_err(|e| ApiError::field("user_id", e))?;
        record_user(&user);
        let spend_id = Key::parse(&request.spend_id).map_err(|e| ApiError::field("spend_id", e))?;
        let credits = in_range(request.credits, SPEND_CREDITS).map_err(|e| ApiError::field("credits", e))?;
        let feature = match request.feature {
            Some(feature) => Some(parse_label(&feature, FEATURE_MAX_CHARS).map_err(|e| ApiError::field("feature", e))?),
            None => None,
        };
        Ok(Spend { user, spend_id, credits, feature })
    }
}

#[derive(Serialize)]
struct SpendView<'a> {
    spend_id: &'a str,
    credits: i64,
    from: Parts,
}

#[derive(Serialize)]
struct Spent<'a> {
    spend: SpendView<'a>,
    balance: Balance,
}

impl Command for Spend {
    const ROUTE: Route = Route::Spend;
    const LOWERS_BALANCE: bool = true;

    fn user(&self) -> &UserId {
        &self.user
    }

    fn key(&self) -> &str {
        self.spend_id.as_str()
    }

    fn canonical(&self) -> Canonical {
        Canonical::new(Route::Spend)
            .text("user_id", self.user.as_str())
            .text("spend_id", self.spend_id.as_str())
            .number("credits", self.credits)
            .optional_text("feature", self.feature.as_deref())
    }

    fn decide(&self, snapshot: &Snapshot, ctx: &Ctx<'_>) -> Result<Effect, ApiError> {
        let account = snapshot.account()?;
        let from = draw(account.balance, self.credits).map_err(|_| {
            ApiError::insufficient_credits(format!(
                "this spend needs {} credits; the balance is {}",
                self.credits,
                account.balance.total()
            ))
        })?;
        let mut entries = Entries::on(account, ctx.now);
        entries.push(EntryKind::Spend, Delta::out_of(from), self.spend_id.as_str())?;
        let body = to_json(&Spent {
            spend: SpendView { spend_id: self.spend_id.as_str(), credits: self.credits, from },
            balance: entries.balance(),
        })?;
        Ok(Effect { reply: Reply::Created(body), writes: vec![Write::Change(entries.finish())], emails: Vec::new() })
    }
}

/// Handles a spend.
pub async fn spend(app: &App, request: SpendRequest) -> Result<Reply, ApiError> {
    execute(app, &Spend::parse(request)?).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::fixtures::account;

    fn decide(balance: Balance, credits: i64) -> Result<Effect, ApiError> {
        let config = crate::config::Config::for_tests();
        let account = account("u", "free", "2026-01-31T10:00:00Z", balance);
        let ctx = Ctx { config: &config, now: account.cycle.start, fresh_code: "ZZZZ2222" };
        let body = serde_json::json!({"user_id": "u", "spend_id": "s-1", "credits": credits, "feature": "export"});
        let spend = Spend::parse(serde_json::from_value(body).expect("body")).expect("valid");
        spend.decide(&Snapshot { account: Some(account), ..Snapshot::default() }, &ctx)
    }

    #[test]
    fn a_spend_draws_plan_then_bonus_then_flexible() {
        let effect =
            decide(Balance { plan: 5_000, bonus: 250, flexible: 300, ..Balance::default() }, 5_100).expect("effect");
        let body: serde_json::Value = serde_json::from_str(effect.reply.body()).expect("json");
        assert_eq!(body["spend"]["from"], serde_json::json!({"plan": 5000, "bonus": 100, "flexible": 0}));
        assert_eq!(body["balance"]["total"], 450);
        let [Write::Change(change)] = effect.writes.as_slice() else { panic!("{:?}", effect.writes) };
        assert_eq!(change.delta(), Delta { plan: -5_000, bonus: -100, ..Delta::default() });
        assert!(effect.emails.is_empty());
    }

    #[test]
    fn a_spend_beyond_the_total_is_402_and_writes_nothing() {
        let err =
            decide(Balance { plan: 10, bonus: 20, flexible: 30, ..Balance::default() }, 61).expect_err("too much");
        assert_eq!((err.status, err.code), (402, "insufficient_credits"));
        assert!(err.message.contains("60"), "{}", err.message);
        assert!(decide(Balance { plan: 10, bonus: 20, flexible: 30, ..Balance::default() }, 60).is_ok());
    }

    #[test]
    fn an_absent_feature_and_a_null_one_are_the_same_request() {
        let parse = |body: serde_json::Value| Spend::parse(serde_json::from_value(body).expect("shape")).expect("ok");
        let absent = parse(serde_json::json!({"user_id": "u", "spend_id": "s", "credits": 5}));
        let null = parse(serde_json::json!({"user_id": "u", "spend_id": "s", "credits": 5, "feature": null}));
        assert_eq!(absent.canonical().hash(), null.canonical().hash());
        let named = parse(serde_json::json!({"user_id": "u", "spend_id": "s", "credits": 5, "feature": "x"}));
        assert_ne!(absent.canonical().hash(), named.canonical().hash());
    }
}
