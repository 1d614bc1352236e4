//! Every black-box test, one module per file of this directory, in one
//! test binary: the SDKs are linked once, not once per file. Run one file's
//! tests with `cargo test -p integration-tests --test integration <module>::`.
//! The chaos suite (`chaos.rs`) is its own binary, with its own harness.

mod account;
mod alerts;
mod api_reference;
mod bad_input;
mod corrections;
mod dev_identity;
mod email_outbox;
mod holds;
mod logs;
mod no_silent_failures;
mod openapi;
mod plan_change;
mod purchase;
mod rollover;
mod sdk_errors;
mod signup;
mod spend;
mod stripe;
mod template;
