//! A bad configuration fails the cold start, with a message that says why,
//! before any request is taken.

#![allow(clippy::expect_used)] // a test asserts by panicking

use std::process::Command;

/// What Lambda sets for every function: region and credentials.
const LAMBDA: &[(&str, &str)] =
    &[("AWS_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")];

/// Starts the binary with Lambda's variables and `env`, and nothing else.
fn start(env: &[(&str, &str)]) -> (bool, String) {
    start_without_lambdas(&[LAMBDA, env].concat())
}

fn start_without_lambdas(env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_purchase"));
    cmd.env_clear().envs(env.iter().copied());
    let out = cmd.output().expect("the binary runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn a_missing_table_name_fails_the_cold_start() {
    let (ok, text) = start(&[("SENDER_EMAIL", "credits@example.com")]);
    assert!(!ok);
    assert!(text.contains("Error: TABLE_NAME is not set"), "{text}");
}

#[test]
fn missing_aws_credentials_fail_the_cold_start_naming_the_variable() {
    let (ok, text) = start_without_lambdas(&[
        ("AWS_REGION", "us-east-1"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("TABLE_NAME", "credits"),
        ("SENDER_EMAIL", "credits@example.com"),
    ]);
    assert!(!ok);
    assert!(text.contains("Error: AWS_ACCESS_KEY_ID is not set"), "{text}");
}

#[test]
fn a_bad_retry_setting_fails_the_cold_start_naming_the_variable() {
    let (ok, text) =
        start(&[("TABLE_NAME", "credits"), ("SENDER_EMAIL", "credits@example.com"), ("AWS_MAX_ATTEMPTS", "0")]);
    assert!(!ok);
    assert!(text.contains("Error: AWS_MAX_ATTEMPTS is invalid"), "{text}");
}

#[test]
fn a_bad_credits_config_fails_the_cold_start_naming_the_field() {
    let (ok, text) = start(&[
        ("TABLE_NAME", "credits"),
        ("SENDER_EMAIL", "credits@example.com"),
        ("CREDITS_CONFIG", r#"{"plans": [{"name": "pro", "rank": 0, "monthly_allowance": "lots"}]}"#),
    ]);
    assert!(!ok);
    assert!(text.contains("invalid CREDITS_CONFIG: plans[0].monthly_allowance: invalid type"), "{text}");
}

#[test]
fn a_function_that_sends_email_needs_a_sender() {
    let (ok, text) = start(&[("TABLE_NAME", "credits")]);
    assert!(!ok);
    assert!(text.contains("SENDER_EMAIL is not set"), "{text}");
}

#[test]
fn an_email_template_with_an_unknown_placeholder_fails_the_cold_start_naming_it() {
    let (ok, text) = start(&[
        ("TABLE_NAME", "credits"),
        ("SENDER_EMAIL", "credits@example.com"),
        (
            "CREDITS_CONFIG",
            r#"{"email": {"templates": {"purchase_receipt": {"subject": "{{credits}}", "text": "{{credit}}", "html": "h"}}}}"#,
        ),
    ]);
    assert!(!ok);
    assert!(text.contains("email.templates.purchase_receipt.text: unknown placeholder {{credit}}"), "{text}");
}
