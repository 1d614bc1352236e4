//! The credits service's shared library.
//!
//! Every rule of the credit system lives in one module here, and its DynamoDB
//! encoding in one other place ([`store`]):
//!
//! | rule | module |
//! |---|---|
//! | plan catalogue, purchase rates, bonuses | [`plans`] |
//! | billing cycles (calendar months on an anchor day) | [`cycle`] |
//! | balances, drawdown, debt; ledger entries | [`balance`], [`ledger`] |
//! | holds and their settlement | [`hold`] |
//! | validated values of the contract | [`types`] |
//! | idempotency keys and the request hash | [`idempotency`] |
//! | referral codes and email normalisation | [`referral`] |
//! | the rollover rule | [`rollover`] |
//! | how to get more credits; low-balance alerts | [`options`], [`alerts`] |
//! | what each route and schedule does | [`ops`] |
//! | email messages and the SES adapter | [`email`] |
//! | the deployer's brand and email templates | [`letters`] |
//! | API Gateway glue: auth, bodies, errors | [`http`] |
//! | serving an HTTP function, its events repaired | [`runtime`] |
//! | the AWS SDK's configuration from the environment | [`sdk`] |
//! | Stripe webhook signatures and events | [`stripe`] |

pub mod account;
pub mod alerts;
pub mod app;
pub mod balance;
pub mod config;
pub mod cycle;
pub mod email;
pub mod hold;
pub mod http;
pub mod idempotency;
pub mod ledger;
pub mod letters;
pub mod ops;
pub mod options;
pub mod plans;
pub mod referral;
pub mod rollover;
pub mod runtime;
pub mod sdk;
pub mod store;
pub mod stripe;
pub mod telemetry;
pub mod types;

pub use app::{App, Mail};
pub use config::Config;
