//! `POST /v1/purchases`: flexible credits at the plan's rate, with a receipt.

use super::{after_failed_commit, replay, request_hash, Retry};
use crate::account::Entries;
use crate::balance::{Balance, Delta};
use crate::cycle::{format_time, now};
use crate::email::{deliver, purchase_receipt, Receipt};
use crate::http::{record_user, to_json, ApiError, Reply};
use crate::ledger::EntryKind;
use crate::store::{IdemRecord, ReceiptKey, Route};
use crate::types::{in_range, Key, UserId};
use crate::App;
use serde::{Deserialize, Serialize};

/// The request body.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PurchaseRequest {
    user_id: String,
    payment_id: String,
    amount_cents: i64,
    currency: String,
}

/// Smallest and largest purchase, in cents.
pub const AMOUNT_CENTS: std::ops::RangeInclusive<i64> = 100..=1_000_000;

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

/// Handles a purchase.
pub async fn purchase(app: &App, request: PurchaseRequest) -> Result<Reply, ApiError> {
    let user = UserId::parse(&request.user_id).map_err(|e| ApiError::field("user_id", e))?;
    record_user(&user);
    let payment_id = Key::parse(&request.payment_id).map_err(|e| ApiError::field("payment_id", e))?;
    let amount_cents = in_range(request.amount_cents, AMOUNT_CENTS).map_err(|e| ApiError::field("amount_cents", e))?;
    if request.currency != "USD" {
        return Err(ApiError::field("currency", "unsupported currency; only \"USD\" is accepted"));
    }
    let hash = request_hash(Route::Purchase, &request)?;
    let key = ReceiptKey { route: Route::Purchase, user_id: user.to_string(), key: payment_id.as_str().to_owned() };
    let catalogue = &app.config.catalogue;

    let mut retry = Retry::new();
    loop {
        let (account, receipt) = app.store.account_and_receipt(user.as_str(), &key).await?;
        if let Some(receipt) = receipt {
            return replay(&receipt, &hash, "payment_id");
        }
        let account = account.ok_or_else(ApiError::account_not_found)?;
        let plan = catalogue.plan(&account.plan);
        let (plan, rate, credits) =
            match plan.and_then(|p| Some((p, p.rate_per_dollar?, catalogue.purchase_credits(p, amount_cents)?))) {
                Some(found) => found,
                None => {
                    return Err(ApiError::plan_not_eligible(format!(
                        "the {} plan cannot buy credits; upgrade to a plan with a purchase rate",
                        account.plan
                    )))
                }
            };
        let at = now();
        let mut entries = Entries::on(&account, format_time(at));
        entries
            .push(EntryKind::Purchase, Delta::flexible(credits), payment_id.as_str())
            .map_err(|_| ApiError::field("amount_cents", "the balance cannot hold that many credits"))?;
        let balance = entries.balance();
        let body = to_json(&Created {
            purchase: PurchaseView {
                payment_id: payment_id.as_str(),
                amount_cents,
                credits,
                rate_per_dollar: rate,
                plan: &plan.name,
            },
            balance,
        })?;
        let email = purchase_receipt(
            &Receipt {
                user_id: user.as_str(),
                payment_id: payment_id.as_str(),
                amount_cents,
                credits,
                rate_per_dollar: rate,
                plan: &plan.name,
                balance,
            },
            &account.email,
            at,
        );
        let record = IdemRecord { request_hash: hash.clone(), status: 201, body: body.clone(), at: format_time(at) };
        let mut tx = app.store.tx(&key, &record);
        tx.change_account(&account, &entries.finish());
        tx.queue_email(&email);
        match app.store.commit(tx).await {
            Ok(()) => {
                if let Some(mailer) = &app.mailer {
                    deliver(&app.store, mailer, std::slice::from_ref(&email), at).await;
                }
                return Ok(Reply::Created(body));
            }
            Err(err) => {
                if let Some(answer) =
                    after_failed_commit(err, &app.store, &key, &hash, "payment_id", &mut retry).await?
                {
                    return Ok(answer);
                }
            }
        }
    }
}
