//! The credits service's shared library.
//!
//! Every rule of the credit system lives in one module here, and its DynamoDB
//! encoding in one other place ([`store`]):
//!
//! | rule | module |
//! |---|---|
//! | plan catalogue, purchase rates, bonuses | [`plans`] |
//! | billing cycles (calendar months on an anchor day) | [`cycle`] |
//! | buckets, ledger entries | [`balance`], [`ledger`] |
//! | request types and their validation | [`types`] |
//! | referral codes and email normalisation | [`referral`] |
//! | what each route does | [`ops`] |
//! | emails and the outbox | [`email`] |
//! | API Gateway glue: auth, bodies, errors | [`http`] |

pub mod account;
pub mod app;
pub mod balance;
pub mod config;
pub mod cycle;
pub mod email;
pub mod http;
pub mod ledger;
pub mod ops;
pub mod plans;
pub mod referral;
pub mod rollover;
pub mod store;
pub mod telemetry;
pub mod types;

pub use app::{App, Mail};
pub use config::Config;
