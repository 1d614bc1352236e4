//! `GET /v1/me/balance`, `/v1/me/ledger`, `/v1/me/referral`.

use crate::account::Account;
use crate::http::{to_json, ApiError, Reply};
use crate::ledger::LedgerEntry;
use crate::types::UserId;
use crate::App;
use serde::Serialize;

/// Ledger entries per page when the query gives no `limit`.
pub const LEDGER_LIMIT_DEFAULT: usize = 25;
/// Largest page of the ledger.
pub const LEDGER_LIMIT_MAX: usize = 100;

/// The account of the signed-in user.
pub async fn balance(app: &App, user: &UserId) -> Result<Reply, ApiError> {
    let account = current_account(app, user).await?;
    Ok(Reply::Ok(to_json(&account.view())?))
}

/// The signed-in user's account as a request now finds it: an ended cycle
/// the hourly run has not reached yet shown rolled over, since a spend or
/// hold would roll it over first (the ledger shows the rollover's entries
/// once they are written).
async fn current_account(app: &App, user: &UserId) -> Result<Account, ApiError> {
    let account = app.store.account(user.as_str()).await?.ok_or_else(ApiError::account_not_found)?;
    Ok(crate::rollover::as_of(&account, &app.config.catalogue, crate::cycle::now()))
}

/// Parses a ledger query: `limit` (1..=100, default 25) and `cursor` (the
/// `next_cursor` of the previous page). Other parameters are refused.
pub fn ledger_query<'a>(params: impl Iterator<Item = (&'a str, &'a str)>) -> Result<(usize, Option<u64>), ApiError> {
    let mut limit = LEDGER_LIMIT_DEFAULT;
    let mut cursor = None;
    for (name, value) in params {
        let digits = !value.is_empty() && value.len() <= 20 && value.bytes().all(|b| b.is_ascii_digit());
        match name {
            "limit" => {
                limit =
                    value.parse().ok().filter(|n| digits && (1..=LEDGER_LIMIT_MAX).contains(n)).ok_or_else(|| {
                        ApiError::field("limit", format!("must be a whole number from 1 to {LEDGER_LIMIT_MAX}"))
                    })?;
            }
            "cursor" => {
                cursor = Some(
                    value
                        .parse()
                        .ok()
                        .filter(|n| digits && *n >= 1)
                        .ok_or_else(|| ApiError::field("cursor", "is not a cursor this API returned"))?,
                );
            }
            other => {
                let name: String = other.chars().take(32).collect();
                return Err(ApiError::invalid(format!("unknown query parameter {name:?}; expected limit or cursor")));
            }
        }
    }
    Ok((limit, cursor))
}

#[derive(Serialize)]
struct Page {
    entries: Vec<LedgerEntry>,
    next_cursor: Option<String>,
}

/// A page of the signed-in user's ledger, newest first.
pub async fn ledger(app: &App, user: &UserId, limit: usize, cursor: Option<u64>) -> Result<Reply, ApiError> {
    // Every account has at least its signup entry, and a cursor this API
    // returned names an entry with another below it: no page, or an empty
    // one, means no account, or a cursor that was never returned.
    let Some((entries, more)) = app.store.ledger(user.as_str(), cursor, limit).await?.filter(|(e, _)| !e.is_empty())
    else {
        if cursor.is_none() || app.store.account(user.as_str()).await?.is_none() {
            return Err(ApiError::account_not_found());
        }
        return Err(ApiError::field("cursor", "is not a cursor this API returned"));
    };
    let next_cursor = if more { entries.last().map(|e| e.seq.to_string()) } else { None };
    Ok(Reply::Ok(to_json(&Page { entries, next_cursor })?))
}

#[derive(Serialize)]
struct Referral<'a> {
    code: &'a str,
    link: String,
    signups: i64,
    rewarded_credits: i64,
}

/// `GET /v1/me/credit-options`: how the signed-in user can get more credits.
pub async fn credit_options(app: &App, user: &UserId) -> Result<Reply, ApiError> {
    let account = current_account(app, user).await?;
    let options = crate::options::credit_options(&account, &app.config.catalogue, &app.config.referral_base_url)?;
    Ok(Reply::Ok(to_json(&options)?))
}

/// The signed-in user's referral code, link and earnings.
pub async fn referral(app: &App, user: &UserId) -> Result<Reply, ApiError> {
    let account = app.store.account(user.as_str()).await?.ok_or_else(ApiError::account_not_found)?;
    Ok(Reply::Ok(to_json(&Referral {
        code: &account.referral_code,
        link: format!("{}?ref={}", app.config.referral_base_url, account.referral_code),
        signups: account.referral_signups,
        rewarded_credits: account.rewarded_credits,
    })?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&'static str, &'static str)]) -> Result<(usize, Option<u64>), ApiError> {
        ledger_query(pairs.iter().copied())
    }

    #[test]
    fn ledger_queries_default_and_bound_the_limit() {
        assert_eq!(parse(&[]), Ok((25, None)));
        assert_eq!(parse(&[("limit", "100"), ("cursor", "42")]), Ok((100, Some(42))));
        for bad in
            [&[("limit", "0")][..], &[("limit", "101")], &[("limit", "1.5")], &[("limit", "+5")], &[("limit", "")]]
        {
            assert_eq!(parse(bad).map_err(|e| e.status), Err(400), "{bad:?}");
        }
    }

    #[test]
    fn bad_cursors_and_unknown_parameters_are_refused() {
        for bad in [&[("cursor", "0")][..], &[("cursor", "abc")], &[("cursor", "-1")], &[("page", "2")]] {
            assert_eq!(parse(bad).map_err(|e| e.status), Err(400), "{bad:?}");
        }
    }
}
