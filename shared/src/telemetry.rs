//! Logging: `tracing` to stdout, JSON when Lambda's log format is JSON.

use tracing_subscriber::EnvFilter;

/// Installs the subscriber once per cold start. The level comes from
/// `RUST_LOG`, else `AWS_LAMBDA_LOG_LEVEL`, else `info`; the format is JSON
/// when `AWS_LAMBDA_LOG_FORMAT=JSON`. Timestamps are left to CloudWatch.
pub fn init() {
    let level = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL"))
        .unwrap_or_else(|_| "info".to_owned())
        .to_lowercase();
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).without_time().with_target(false);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    // try_init: a second call (tests) keeps the first subscriber.
    let _ = if json {
        builder.json().with_current_span(true).with_span_list(false).flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
