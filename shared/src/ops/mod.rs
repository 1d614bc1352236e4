//! What each route and schedule does.
//!
//! Every mutating route is a [`Command`](command::Command): its file holds
//! the request's validation and its rules as a pure decision, and
//! [`execute`](execute::execute) runs every one of them through the same
//! read, replay, decide, commit and retry protocol. The scheduled functions
//! ([`rollover`], [`outbox`]) share [`schedule`]'s time budget.

pub mod account;
pub mod alerts;
pub mod command;
pub mod corrections;
pub mod execute;
pub mod holds;
pub mod outbox;
pub mod plan_change;
pub mod purchase;
pub mod rollover;
pub mod schedule;
pub mod signup;
pub mod spend;
pub mod stripe;
