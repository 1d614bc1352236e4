//! `POST /v1/spends`: credits drawn plan first, then bonus, then flexible.

use super::{after_failed_commit, replay, request_hash, Retry};
use crate::account::Entries;
use crate::balance::{draw, Balance, Delta};
use crate::cycle::{format_time, now};
use crate::http::{record_user, to_json, ApiError, Reply};
use crate::ledger::EntryKind;
use crate::store::{IdemRecord, ReceiptKey, Route};
use crate::types::{in_range, parse_label, Key, UserId};
use crate::App;
use serde::{Deserialize, Serialize};

/// The request body.
#[derive(Debug, Deserialize, Serialize)]
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

#[derive(Serialize)]
struct SpendView<'a> {
    spend_id: &'a str,
    credits: i64,
    from: Delta,
}

#[derive(Serialize)]
struct Spent<'a> {
    spend: SpendView<'a>,
    balance: Balance,
}

/// Handles a spend.
pub async fn spend(app: &App, request: SpendRequest) -> Result<Reply, ApiError> {
    let user = UserId::parse(&request.user_id).map_err(|e| ApiError::field("user_id", e))?;
    record_user(&user);
    let spend_id = Key::parse(&request.spend_id).map_err(|e| ApiError::field("spend_id", e))?;
    let credits = in_range(request.credits, SPEND_CREDITS).map_err(|e| ApiError::field("credits", e))?;
    if let Some(feature) = &request.feature {
        parse_label(feature, 64).map_err(|e| ApiError::field("feature", e))?;
    }
    let hash = request_hash(Route::Spend, &request)?;
    let key = ReceiptKey { route: Route::Spend, user_id: user.to_string(), key: spend_id.as_str().to_owned() };

    let mut retry = Retry::new();
    loop {
        let (account, receipt) = app.store.account_and_receipt(user.as_str(), &key).await?;
        if let Some(receipt) = receipt {
            return replay(&receipt, &hash, "spend_id");
        }
        let account = account.ok_or_else(ApiError::account_not_found)?;
        let from = draw(account.balance, credits).map_err(|_| {
            ApiError::insufficient_credits(format!(
                "this spend needs {credits} credits; the balance is {}",
                account.balance.total()
            ))
        })?;
        let at = now();
        let mut entries = Entries::on(&account, format_time(at));
        entries.push(EntryKind::Spend, from.negated(), spend_id.as_str()).map_err(|_| ApiError::internal())?;
        let balance = entries.balance();
        let body = to_json(&Spent { spend: SpendView { spend_id: spend_id.as_str(), credits, from }, balance })?;
        let record = IdemRecord { request_hash: hash.clone(), status: 201, body: body.clone(), at: format_time(at) };
        let mut tx = app.store.tx(&key, &record);
        tx.change_account(&account, &entries.finish());
        match app.store.commit(tx).await {
            Ok(()) => return Ok(Reply::Created(body)),
            Err(err) => {
                if let Some(answer) = after_failed_commit(err, &app.store, &key, &hash, "spend_id", &mut retry).await? {
                    return Ok(answer);
                }
            }
        }
    }
}
