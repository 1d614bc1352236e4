//! Holds: `POST /v1/holds`, `/v1/holds/{hold_id}/capture` and `/release`,
//! and the scheduled expiry of open holds past `expires_at`.
//!
//! Settling a hold writes up to three entries on the account, each for what
//! happened to part of the held credits: `capture` (spent), `expire` (plan
//! credits whose cycle ended while held) and `release` (given back to the
//! buckets they came from, repaying debt first).

use super::command::{Command, Ctx, Effect, Snapshot};
use super::execute::{execute, Retry};
use super::rollover::CatchUp;
use super::schedule::{persist, Budget};
use crate::account::{Account, Change, Entries, LedgerError};
use crate::balance::{draw, Balance, Delta};
use crate::cycle::Time;
use crate::hold::{give_back, settle, Hold, HoldStatus, HoldView};
use crate::http::{record_user, to_json, ApiError, Reply};
use crate::idempotency::{Canonical, Route};
use crate::ledger::EntryKind;
use crate::plans::Catalogue;
use crate::store::{CommitError, Lookups, Queue, Store, Write, SCHEDULE_SHARDS};
use crate::types::{in_range, parse_label, redact, Key, UserId};
use crate::App;
use serde::{Deserialize, Serialize};

/// Smallest and largest hold.
pub const HOLD_CREDITS: std::ops::RangeInclusive<i64> = 1..=10_000_000;
/// Shortest and longest life of a hold, in seconds.
pub const EXPIRES_IN_S: std::ops::RangeInclusive<i64> = 60..=86_400;
/// A hold's life when the request names none.
pub const DEFAULT_EXPIRES_IN_S: i64 = 3_600;

#[derive(Serialize)]
struct Held<'a> {
    hold: HoldView<'a>,
    balance: Balance,
}

// ---- placing a hold --------------------------------------------------------

/// The body of `POST /v1/holds`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    user_id: String,
    hold_id: String,
    credits: i64,
    #[serde(default)]
    feature: Option<String>,
    #[serde(default)]
    expires_in_s: Option<i64>,
}

/// A valid hold request.
#[derive(Debug)]
pub struct PlaceHold {
    user: UserId,
    hold_id: Key,
    credits: i64,
    feature: Option<String>,
    expires_in_s: Option<i64>,
}

impl PlaceHold {
    /// Validates a request; 400 naming the field.
    pub fn parse(request: HoldRequest) -> Result<PlaceHold, ApiError> {
        let user = UserId::parse(&request.user_id).map_err(|e| ApiError::field("user_id", e))?;
        record_user(&user);
        let hold_id = Key::parse(&request.hold_id)
            .and_then(|key| match key.as_str() {
                // A path segment clients and signers remove: the hold's
                // capture and release routes could never be reached.
                "." | ".." => Err("must not be \".\" or \"..\" (it goes in the capture and release paths)".to_owned()),
                _ => Ok(key),
            })
            .map_err(|e| ApiError::field("hold_id", e))?;
        let credits = in_range(request.credits, HOLD_CREDITS).map_err(|e| ApiError::field("credits", e))?;
        let feature = match request.feature {
            Some(f) => {
                Some(parse_label(&f, super::spend::FEATURE_MAX_CHARS).map_err(|e| ApiError::field("feature", e))?)
            }
            None => None,
        };
        if let Some(s) = request.expires_in_s {
            in_range(s, EXPIRES_IN_S).map_err(|e| ApiError::field("expires_in_s", e))?;
        }
        Ok(PlaceHold { user, hold_id, credits, feature, expires_in_s: request.expires_in_s })
    }
}

impl Command for PlaceHold {
    const ROUTE: Route = Route::Hold;
    const LOWERS_BALANCE: bool = true;

    fn user(&self) -> &UserId {
        &self.user
    }

    fn key(&self) -> &str {
        self.hold_id.as_str()
    }

    fn canonical(&self) -> Canonical {
        Canonical::new(Route::Hold)
            .text("user_id", self.user.as_str())
            .text("hold_id", self.hold_id.as_str())
            .number("credits", self.credits)
            .optional_text("feature", self.feature.as_deref())
            .optional_number("expires_in_s", self.expires_in_s)
    }

    fn decide(&self, snapshot: &Snapshot, ctx: &Ctx<'_>) -> Result<Effect, ApiError> {
        let account = snapshot.account()?;
        let from = draw(account.balance, self.credits).map_err(|_| {
            ApiError::insufficient_credits(format!(
                "this hold needs {} credits; the balance is {}",
                self.credits,
                account.balance.total()
            ))
        })?;
        let hold = Hold {
            user_id: account.user_id.clone(),
            hold_id: self.hold_id.as_str().to_owned(),
            credits: self.credits,
            from,
            status: HoldStatus::Open,
            expires_at: ctx.now + chrono::Duration::seconds(self.expires_in_s.unwrap_or(DEFAULT_EXPIRES_IN_S)),
            captured: None,
            cycle_end: account.cycle.end,
            feature: self.feature.clone(),
            created_at: ctx.now,
        };
        let mut entries = Entries::on(account, ctx.now);
        let delta = Delta { held: self.credits, ..Delta::out_of(from) };
        entries.push(EntryKind::Hold, delta, self.hold_id.as_str())?;
        let body = to_json(&Held { hold: hold.view(), balance: entries.balance() })?;
        Ok(Effect {
            reply: Reply::Created(body),
            writes: vec![Write::Change(entries.finish()), Write::OpenHold(hold)],
            emails: Vec::new(),
        })
    }
}

/// Handles `POST /v1/holds`.
pub async fn place(app: &App, request: HoldRequest) -> Result<Reply, ApiError> {
    execute(app, &PlaceHold::parse(request)?).await
}

// ---- settling a hold -------------------------------------------------------

/// What settling a hold writes: the account's change, the closed hold, and
/// the balance afterwards.
pub fn settlement(
    account: &Account,
    hold: &Hold,
    capture: Option<i64>,
    status: HoldStatus,
    now: Time,
) -> Result<(Change, Hold, Balance), LedgerError> {
    let s = settle(hold, capture.unwrap_or(0), account.cycle.end);
    let mut entries = Entries::on(account, now);
    let held = |n: i64| Delta { held: -n, ..Delta::default() };
    if s.captured.total() > 0 {
        entries.push(EntryKind::Capture, held(s.captured.total()), &hold.hold_id)?;
    }
    if s.expired > 0 {
        entries.push(EntryKind::Expire, held(s.expired), &hold.hold_id)?;
    }
    if s.back.total() > 0 {
        let delta = Delta { held: -s.back.total(), ..give_back(entries.balance(), s.back) };
        entries.push(EntryKind::Release, delta, &hold.hold_id)?;
    }
    let balance = entries.balance();
    let closed = Hold { status, captured: capture, ..hold.clone() };
    Ok((entries.finish(), closed, balance))
}

/// Why a hold can no longer be settled, as the caller sees it.
fn closed(hold: &Hold) -> ApiError {
    ApiError::hold_closed(match (hold.status, hold.captured) {
        (HoldStatus::Captured, Some(n)) => format!("this hold was already captured ({n} credits)"),
        (HoldStatus::Expired, _) => {
            format!("this hold expired at {} and its credits were released", crate::cycle::format_time(hold.expires_at))
        }
        _ => "this hold was already released".to_owned(),
    })
}

/// The body of `POST /v1/holds/{hold_id}/capture`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureRequest {
    user_id: String,
    credits: i64,
}

/// The body of `POST /v1/holds/{hold_id}/release`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    user_id: String,
}

/// A valid capture (`capture: Some`) or release of a hold.
#[derive(Debug)]
pub struct Settle<const CAPTURE: bool> {
    user: UserId,
    hold_id: Key,
    credits: i64,
}

/// `POST /v1/holds/{hold_id}/capture`.
pub type Capture = Settle<true>;
/// `POST /v1/holds/{hold_id}/release`.
pub type Release = Settle<false>;

fn parse_hold_id(hold_id: &str) -> Result<Key, ApiError> {
    Key::parse(hold_id).map_err(|e| ApiError::field("hold_id (in the path)", e))
}

impl Capture {
    /// Validates a request for the hold in the path; 400 naming the field.
    pub fn parse(hold_id: &str, request: CaptureRequest) -> Result<Capture, ApiError> {
        let user = UserId::parse(&request.user_id).map_err(|e| ApiError::field("user_id", e))?;
        record_user(&user);
        let credits = in_range(request.credits, 0..=*HOLD_CREDITS.end()).map_err(|e| ApiError::field("credits", e))?;
        Ok(Settle { user, hold_id: parse_hold_id(hold_id)?, credits })
    }
}

impl Release {
    /// Validates a request for the hold in the path; 400 naming the field.
    pub fn parse(hold_id: &str, request: ReleaseRequest) -> Result<Release, ApiError> {
        let user = UserId::parse(&request.user_id).map_err(|e| ApiError::field("user_id", e))?;
        record_user(&user);
        Ok(Settle { user, hold_id: parse_hold_id(hold_id)?, credits: 0 })
    }
}

impl<const CAPTURE: bool> Command for Settle<CAPTURE> {
    const ROUTE: Route = if CAPTURE { Route::Capture } else { Route::Release };
    const LOWERS_BALANCE: bool = true;

    fn user(&self) -> &UserId {
        &self.user
    }

    fn key(&self) -> &str {
        self.hold_id.as_str()
    }

    fn canonical(&self) -> Canonical {
        let canonical =
            Canonical::new(Self::ROUTE).text("user_id", self.user.as_str()).text("hold_id", self.hold_id.as_str());
        if CAPTURE {
            canonical.number("credits", self.credits)
        } else {
            canonical
        }
    }

    /// A capture of the same hold with another amount.
    fn mismatch(&self) -> ApiError {
        ApiError::hold_closed("this hold was already captured with another amount")
    }

    fn lookups(&self) -> Lookups {
        Lookups { hold: Some(self.hold_id.as_str().to_owned()), ..Lookups::default() }
    }

    fn decide(&self, snapshot: &Snapshot, ctx: &Ctx<'_>) -> Result<Effect, ApiError> {
        let account = snapshot.account()?;
        let hold = snapshot.hold.as_ref().ok_or_else(ApiError::hold_not_found)?;
        if hold.status != HoldStatus::Open {
            return Err(closed(hold));
        }
        // Past its time the hold is the expiry's, whether or not the sweep has
        // run: the same capture gets the same answer. A release still may.
        if CAPTURE && hold.expires_at <= ctx.now {
            return Err(ApiError::hold_closed(format!(
                "this hold expired at {}; its credits are being released",
                crate::cycle::format_time(hold.expires_at)
            )));
        }
        if self.credits > hold.credits {
            return Err(ApiError::field("credits", format!("must be at most the hold's {} credits", hold.credits)));
        }
        let (capture, status) =
            if CAPTURE { (Some(self.credits), HoldStatus::Captured) } else { (None, HoldStatus::Released) };
        let (change, closed, balance) = settlement(account, hold, capture, status, ctx.now)?;
        let body = to_json(&Held { hold: closed.view(), balance })?;
        Ok(Effect {
            reply: Reply::Ok(body),
            writes: vec![Write::Change(change), Write::CloseHold(closed)],
            emails: Vec::new(),
        })
    }
}

/// Handles `POST /v1/holds/{hold_id}/capture`.
pub async fn capture(app: &App, hold_id: &str, request: CaptureRequest) -> Result<Reply, ApiError> {
    execute(app, &Capture::parse(hold_id, request)?).await
}

/// Handles `POST /v1/holds/{hold_id}/release`.
pub async fn release(app: &App, hold_id: &str, request: ReleaseRequest) -> Result<Reply, ApiError> {
    execute(app, &Release::parse(hold_id, request)?).await
}

// ---- listing ---------------------------------------------------------------

#[derive(Serialize)]
struct Holds<'a> {
    holds: Vec<HoldView<'a>>,
}

/// `GET /v1/me/holds`: the signed-in user's open holds, oldest first.
pub async fn list(app: &App, user: &UserId) -> Result<Reply, ApiError> {
    let account = app.store.account(user.as_str()).await?.ok_or_else(ApiError::account_not_found)?;
    // Every open hold holds at least one credit, and `held` is their sum
    // (written in the same transactions, read consistently): with nothing
    // held there is no open hold to read.
    if account.balance.held == 0 {
        return Ok(Reply::Ok(to_json(&Holds { holds: Vec::new() })?));
    }
    let holds = app.store.open_holds(user.as_str(), account.balance.held).await?;
    Ok(Reply::Ok(to_json(&Holds { holds: holds.iter().map(Hold::view).collect() })?))
}

// ---- expiry ----------------------------------------------------------------

/// Holds read per page of the schedule index.
pub const PAGE: i32 = 100;

/// What one expiry run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExpiryReport {
    /// Holds this run released as expired.
    pub expired: u64,
    /// Holds (or pages of them) that could not be expired; each is logged.
    pub errors: u64,
    /// Whether expired holds were left for the next run.
    pub remaining: bool,
}

/// Releases every open hold past its `expires_at` at `now`, found through
/// the schedule index, within `budget`. Exactly once: each write is
/// conditioned on the hold still being open and the account's version, so a
/// racing capture or another run either commits first (and this one finds
/// the hold closed) or finds this one's write.
pub async fn expire_due(store: &Store, catalogue: &Catalogue, now: Time, budget: &Budget) -> ExpiryReport {
    let mut report = ExpiryReport::default();
    for shard in 0..SCHEDULE_SHARDS {
        let mut start = None;
        loop {
            if budget.exhausted() {
                report.remaining = true;
                return report;
            }
            let page =
                persist(budget, "hold expiry query", || store.due(Queue::Holds, shard, now, PAGE, start.clone())).await;
            let page = match page {
                Ok(page) => page,
                Err(e) => {
                    tracing::error!(shard, error = %e, "hold expiry query failed; the shard is left for the next run");
                    report.errors += 1;
                    report.remaining = true;
                    break;
                }
            };
            for (user_id, hold_id) in &page.holds {
                if budget.exhausted() {
                    report.remaining = true;
                    return report;
                }
                match expire_one(store, catalogue, user_id, hold_id, now, budget).await {
                    Ok(true) => report.expired += 1,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(user = %redact(user_id), hold_id, error = %e, "hold could not be expired; left for the next run");
                        report.errors += 1;
                        report.remaining = true;
                    }
                }
            }
            start = page.next;
            if start.is_none() {
                break;
            }
        }
    }
    report
}

/// Expires one hold if it is still open and due; `false` when another run
/// or a capture or release closed it first. An account whose cycle has ended
/// is rolled over first, as a request would do, so the hold's plan part of
/// an ended cycle expires instead of coming back.
async fn expire_one(
    store: &Store,
    catalogue: &Catalogue,
    user_id: &str,
    hold_id: &str,
    now: Time,
    budget: &Budget,
) -> Result<bool, String> {
    let mut retry = Retry::new();
    loop {
        let (account, hold) = persist(budget, "hold expiry read", || store.account_and_hold(user_id, hold_id))
            .await
            .map_err(|e| e.to_string())?;
        let (Some(account), Some(hold)) = (account, hold) else { return Ok(false) };
        if hold.status != HoldStatus::Open || hold.expires_at > now {
            return Ok(false);
        }
        if account.cycle.end <= now {
            match super::rollover::catch_up(store, catalogue, account.clone(), now, budget).await {
                CatchUp::Current => continue,
                CatchUp::Behind => return Err("out of time rolling the account over first".into()),
                CatchUp::Unavailable => return Err("the account's ended cycle could not be rolled over first".into()),
                CatchUp::Failed => {}
            }
        }
        let (change, closed, _) =
            settlement(&account, &hold, None, HoldStatus::Expired, now).map_err(|e| e.to_string())?;
        let mut tx = store.tx_unkeyed();
        tx.write(&Write::Change(change));
        tx.write(&Write::CloseHold(closed));
        match store.commit(tx).await {
            Ok(()) => return Ok(true),
            Err(CommitError::Stale(_)) => retry.again("hold or account changed since read").await,
            Err(CommitError::Conflict) => retry.again("transaction conflict").await,
            Err(e) => return Err(e.to_string()),
        }
        .map_err(|e| e.detail.unwrap_or_default())?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::fixtures::account;
    use serde_json::{json, Value};

    fn ctx_at(config: &crate::config::Config, now: Time) -> Ctx<'_> {
        Ctx { config, now, fresh_code: "ZZZZ2222" }
    }

    fn body(effect: &Effect) -> Value {
        serde_json::from_str(effect.reply.body()).expect("json")
    }

    fn place(credits: i64, balance: Balance) -> Result<Effect, ApiError> {
        let request = json!({"user_id": "u", "hold_id": "render-1", "credits": credits, "expires_in_s": 600});
        let command = PlaceHold::parse(serde_json::from_value(request).expect("body")).expect("valid");
        let acct = account("u", "pro", "2026-01-31T10:00:00Z", balance);
        let config = crate::config::Config::for_tests();
        let now = acct.cycle.start;
        command.decide(&Snapshot { account: Some(acct), ..Snapshot::default() }, &ctx_at(&config, now))
    }

    fn open_hold(from: crate::balance::Parts) -> Hold {
        let acct = account("u", "pro", "2026-01-31T10:00:00Z", Balance::default());
        Hold {
            user_id: "u".into(),
            hold_id: "render-1".into(),
            credits: from.total(),
            from,
            status: HoldStatus::Open,
            expires_at: acct.cycle.start + chrono::Duration::hours(1),
            captured: None,
            cycle_end: acct.cycle.end,
            feature: None,
            created_at: acct.cycle.start,
        }
    }

    #[test]
    fn a_hold_moves_credits_in_spend_order_into_held() {
        let effect =
            place(8_500, Balance { plan: 5_000, bonus: 500, flexible: 3_000, ..Balance::default() }).expect("held");
        let b = body(&effect);
        assert_eq!(b["hold"]["from"], json!({"plan": 5000, "bonus": 500, "flexible": 3000}));
        assert_eq!((b["hold"]["status"].as_str(), b["hold"]["captured"].is_null()), (Some("open"), true));
        assert_eq!(b["hold"]["expires_at"], "2026-01-31T10:10:00Z");
        assert_eq!(b["balance"], json!({"plan": 0, "bonus": 0, "flexible": 0, "held": 8500, "debt": 0, "total": 0}));
        assert!(
            matches!(effect.writes.as_slice(), [Write::Change(_), Write::OpenHold(h)] if h.cycle_end.to_rfc3339().starts_with("2026-02-28"))
        );
        let err = place(8_501, Balance { plan: 5_000, bonus: 500, flexible: 3_000, ..Balance::default() })
            .expect_err("too much");
        assert_eq!((err.status, err.code), (402, "insufficient_credits"));
    }

    fn settle_with(
        command: &impl Command,
        hold: Option<Hold>,
        balance: Balance,
        now: Time,
    ) -> Result<Effect, ApiError> {
        let acct = account("u", "pro", "2026-01-31T10:00:00Z", balance);
        let config = crate::config::Config::for_tests();
        command.decide(&Snapshot { account: Some(acct), hold, ..Snapshot::default() }, &ctx_at(&config, now))
    }

    fn capture(credits: i64) -> Capture {
        Capture::parse("render-1", serde_json::from_value(json!({"user_id": "u", "credits": credits})).expect("body"))
            .expect("valid")
    }

    fn release() -> Release {
        Release::parse("render-1", serde_json::from_value(json!({"user_id": "u"})).expect("body")).expect("valid")
    }

    #[test]
    fn capturing_7900_of_8500_spends_the_plan_part_first_and_returns_the_rest() {
        let hold = open_hold(crate::balance::Parts { plan: 5_000, bonus: 500, flexible: 3_000 });
        let held = Balance { held: 8_500, ..Balance::default() };
        let now = hold.created_at;
        let effect = settle_with(&capture(7_900), Some(hold), held, now).expect("captured");
        let b = body(&effect);
        assert_eq!((b["hold"]["status"].as_str(), b["hold"]["captured"].as_i64()), (Some("captured"), Some(7_900)));
        assert_eq!(b["balance"], json!({"plan": 0, "bonus": 0, "flexible": 600, "held": 0, "debt": 0, "total": 600}));
        let [Write::Change(change), Write::CloseHold(closed)] = effect.writes.as_slice() else {
            panic!("{:?}", effect.writes)
        };
        let kinds: Vec<_> = change.entries.iter().map(|e| (e.kind, e.delta.held, e.delta.flexible)).collect();
        assert_eq!(kinds, [(EntryKind::Capture, -7_900, 0), (EntryKind::Release, -600, 600)]);
        assert_eq!(closed.status, HoldStatus::Captured);
    }

    #[test]
    fn after_a_rollover_the_held_plan_part_expires_instead_of_coming_back() {
        let hold = open_hold(crate::balance::Parts { plan: 1_000, bonus: 0, flexible: 500 });
        let mut acct_after =
            account("u", "pro", "2026-01-31T10:00:00Z", Balance { plan: 5_000, held: 1_500, ..Balance::default() });
        acct_after.cycle = acct_after.cycle.next().expect("next cycle");
        let config = crate::config::Config::for_tests();
        let effect = release()
            .decide(
                &Snapshot { account: Some(acct_after), hold: Some(hold), ..Snapshot::default() },
                &ctx_at(&config, crate::cycle::now()),
            )
            .expect("released");
        let [Write::Change(change), _] = effect.writes.as_slice() else { panic!("{:?}", effect.writes) };
        let kinds: Vec<_> =
            change.entries.iter().map(|e| (e.kind, e.delta.held, e.delta.plan, e.delta.flexible)).collect();
        assert_eq!(kinds, [(EntryKind::Expire, -1_000, 0, 0), (EntryKind::Release, -500, 0, 500)]);
        assert_eq!(body(&effect)["balance"]["plan"], 5_000, "this cycle's plan credits untouched");
    }

    #[test]
    fn a_release_repays_debt_first() {
        let hold = open_hold(crate::balance::Parts { plan: 0, bonus: 0, flexible: 500 });
        let now = hold.created_at;
        let effect = settle_with(&release(), Some(hold), Balance { held: 500, debt: 200, ..Balance::default() }, now)
            .expect("released");
        assert_eq!(
            body(&effect)["balance"],
            json!({"plan": 0, "bonus": 0, "flexible": 300, "held": 0, "debt": 0, "total": 300})
        );
    }

    #[test]
    fn closed_unknown_and_oversized_settlements_get_the_contracts_answers() {
        // Within the open hold's hour (it is placed at its cycle's start, 2026-01-31T10:00:00Z).
        let now = crate::cycle::parse_time("2026-01-31T10:30:00Z").expect("time");
        let err = settle_with(&capture(10), None, Balance::default(), now).expect_err("unknown");
        assert_eq!((err.status, err.code), (404, "hold_not_found"));
        let mut released = open_hold(crate::balance::Parts { plan: 0, bonus: 0, flexible: 100 });
        released.status = HoldStatus::Released;
        let err = settle_with(&capture(10), Some(released.clone()), Balance::default(), now).expect_err("released");
        assert_eq!((err.status, err.code), (409, "hold_closed"));
        let mut captured = released.clone();
        captured.status = HoldStatus::Captured;
        captured.captured = Some(40);
        let err = settle_with(&release(), Some(captured), Balance::default(), now).expect_err("captured");
        assert!(err.message.contains("captured (40 credits)"), "{}", err.message);
        let open = open_hold(crate::balance::Parts { plan: 0, bonus: 0, flexible: 100 });
        let err = settle_with(&capture(101), Some(open), Balance { held: 100, ..Balance::default() }, now)
            .expect_err("too much");
        assert_eq!((err.status, err.code), (400, "invalid_request"));
        assert_eq!(capture(5).mismatch().code, "hold_closed");
        assert_eq!(release().mismatch().code, "hold_closed");
    }

    #[test]
    fn past_its_expiry_a_hold_can_be_released_but_not_captured() {
        let open = open_hold(crate::balance::Parts { plan: 0, bonus: 0, flexible: 100 });
        let held = Balance { held: 100, ..Balance::default() };
        let before = open.expires_at - chrono::Duration::seconds(1);
        assert!(settle_with(&capture(10), Some(open.clone()), held, before).is_ok());
        for late in [open.expires_at, open.expires_at + chrono::Duration::minutes(1)] {
            let err = settle_with(&capture(10), Some(open.clone()), held, late).expect_err("expired");
            assert_eq!((err.status, err.code), (409, "hold_closed"));
            assert!(err.message.contains("expired at 2026-01-31T11:00:00Z"), "{}", err.message);
            let released = settle_with(&release(), Some(open.clone()), held, late).expect("released");
            assert!(released.reply.body().contains("\"status\":\"released\""), "{}", released.reply.body());
        }
        // Once the sweep has released it, it is closed: a release is 409 like a capture.
        let swept = Hold { status: HoldStatus::Expired, ..open.clone() };
        let err = settle_with(&release(), Some(swept), Balance::default(), open.expires_at).expect_err("closed");
        assert_eq!((err.status, err.code), (409, "hold_closed"));
        assert!(
            err.message.contains("expired at 2026-01-31T11:00:00Z and its credits were released"),
            "{}",
            err.message
        );
    }

    #[test]
    fn holds_refuse_what_the_contract_does_not_allow() {
        let parse = |v: Value| PlaceHold::parse(serde_json::from_value(v).expect("shape"));
        let ok = json!({"user_id": "u", "hold_id": "h", "credits": 5});
        for (field, value) in [
            ("credits", json!(0)),
            ("credits", json!(10_000_001)),
            ("expires_in_s", json!(59)),
            ("expires_in_s", json!(86_401)),
            ("feature", json!("f".repeat(65))),
            ("hold_id", json!("a b")),
        ] {
            let mut body = ok.clone();
            body[field] = value;
            assert!(parse(body).expect_err("invalid").message.starts_with(field), "{field}");
        }
        assert!(Capture::parse("a/b", serde_json::from_value(json!({"user_id": "u", "credits": 1})).expect("body"))
            .is_err());
    }
}
