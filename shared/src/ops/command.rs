//! The shape of a route's rules: a [`Command`] is a validated mutating
//! request whose [`Command::decide`] is a pure function of the request, what
//! was read ([`Snapshot`]), the configuration and the time ([`Ctx`]), and
//! whose result is an [`Effect`]. `super::execute` runs every command through
//! one protocol; `super::alerts` adds to the effect of those that lower a
//! balance.

use crate::account::Account;
use crate::config::Config;
use crate::cycle::Time;
use crate::email::OutboxEmail;
use crate::hold::Hold;
use crate::http::{ApiError, Reply};
use crate::idempotency::{Canonical, Route};
use crate::letters::Letters;
use crate::plans::{Catalogue, Plan};
use crate::store::{Lookups, PurchaseFacts, SubscriptionFacts, Write};
use crate::types::UserId;

/// What a decision may use besides the request and the snapshot.
#[derive(Clone, Copy, Debug)]
pub struct Ctx<'a> {
    /// Plans, bonuses, the brand and its email templates, referral links.
    pub config: &'a Config,
    /// The time of this attempt, whole seconds.
    pub now: Time,
    /// A referral code drawn for this attempt (a new account claims it; a
    /// collision makes the next attempt draw another).
    pub fresh_code: &'a str,
}

impl<'a> Ctx<'a> {
    /// Plans and bonuses.
    pub fn catalogue(&self) -> &'a Catalogue {
        &self.config.catalogue
    }

    /// The brand and email templates.
    pub fn letters(&self) -> &'a Letters {
        &self.config.letters
    }

    /// The plan a request names, looked up when it is decided (after its
    /// record is read, so that a request answered before replays its answer
    /// even if its plan has left the catalogue since); 400 naming the
    /// choices where there is no such plan.
    pub fn requested_plan(&self, name: &str) -> Result<&'a Plan, ApiError> {
        let catalogue = self.catalogue();
        catalogue
            .plan(name)
            .ok_or_else(|| ApiError::field("plan", format!("unknown plan; expected one of {}", catalogue.plan_names())))
    }
}

/// What was read for a request.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The account of the request's user.
    pub account: Option<Account>,
    /// The owner of the referral code the request names, if anyone owns it.
    pub code_owner: Option<String>,
    /// The purchase the request names, if the user made it.
    pub purchase: Option<PurchaseFacts>,
    /// The hold the request names, if the user has it.
    pub hold: Option<Hold>,
    /// What the Stripe webhook knows of the subscription the request names.
    pub subscription: Option<SubscriptionFacts>,
    /// The accounts [`Command::related`] asked for that exist.
    pub related: Vec<Account>,
}

impl Snapshot {
    /// The user's account; 404 `account_not_found` where there is none.
    pub fn account(&self) -> Result<&Account, ApiError> {
        self.account.as_ref().ok_or_else(ApiError::account_not_found)
    }

    /// A related account, if it exists.
    pub fn related(&self, user_id: &str) -> Option<&Account> {
        self.related.iter().find(|a| a.user_id == user_id)
    }
}

/// What a request does: its answer, and what commits with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effect {
    /// The answer, which the idempotency record keeps for replays.
    pub reply: Reply,
    /// The writes, each under its condition.
    pub writes: Vec<Write>,
    /// Emails queued in the outbox by the same transaction.
    pub emails: Vec<OutboxEmail>,
}

/// A validated mutating request: what the executor needs to know of it,
/// and its rules.
pub trait Command {
    /// The route, which scopes the key.
    const ROUTE: Route;

    /// Whether the route can take a balance below a low-balance threshold
    /// (see [`super::alerts`]).
    const LOWERS_BALANCE: bool = false;

    /// The user the request is about.
    fn user(&self) -> &UserId;

    /// The request's idempotency key.
    fn key(&self) -> &str;

    /// The request as its hash sees it (fields as sent, in a fixed order).
    fn canonical(&self) -> Canonical;

    /// The answer when the key was used before with another request: 409
    /// `idempotency_conflict` unless the route's contract says otherwise.
    fn mismatch(&self) -> ApiError {
        ApiError::idempotency_conflict(Self::ROUTE.key_field())
    }

    /// What the first read looks up besides the user's account and the
    /// request's record: a referral code's owner, a purchase.
    fn lookups(&self) -> Lookups {
        Lookups::default()
    }

    /// Other accounts the decision needs, by id, once the first read is in.
    fn related(&self, _snapshot: &Snapshot, _ctx: &Ctx<'_>) -> Result<Vec<String>, ApiError> {
        Ok(Vec::new())
    }

    /// The rules: what the request does, given what was read. Pure.
    fn decide(&self, snapshot: &Snapshot, ctx: &Ctx<'_>) -> Result<Effect, ApiError>;
}
