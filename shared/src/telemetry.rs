//! Logging: `tracing` to stdout, JSON when Lambda's log format is JSON.

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the subscriber once per cold start. The level comes from
/// `RUST_LOG`, else `AWS_LAMBDA_LOG_LEVEL`, else `info` (one level for
/// everything: `error`, `warn`, `info`, `debug` or `off`, `trace` taken as
/// `debug`); the
/// format is JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`. Timestamps are left to
/// CloudWatch.
pub fn init() {
    let level = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL"))
        .unwrap_or_else(|_| "info".to_owned());
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    // A second install (tests) keeps the first subscriber.
    let _ = tracing::subscriber::set_global_default(subscriber(json, &level, std::io::stdout));
}

/// The subscriber `init` installs, writing to `writer`: JSON lines with the
/// request span's fields (route, request id, user) on every event, or text.
pub fn subscriber<W>(json: bool, level: &str, writer: W) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_max_level(level_filter(level))
        .with_writer(writer)
        .with_ansi(false)
        .without_time()
        .with_target(false);
    if json {
        Box::new(builder.json().with_current_span(true).with_span_list(false).flatten_event(true).finish())
    } else {
        Box::new(builder.finish())
    }
}

/// A level name (any case; Lambda's `WARN`, `INFO`, ...); `info` for anything
/// else. `trace` is taken as `debug`: at trace the Lambda runtime logs each
/// whole event (the caller's token, a Stripe signature, the body) and the
/// SDK's signer each request it signs.
fn level_filter(level: &str) -> LevelFilter {
    match level.trim().parse().unwrap_or(LevelFilter::INFO) {
        LevelFilter::TRACE => LevelFilter::DEBUG,
        level => level,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_read_in_any_case_and_default_to_info() {
        assert_eq!(level_filter("WARN"), LevelFilter::WARN);
        assert_eq!(level_filter("debug"), LevelFilter::DEBUG);
        assert_eq!(level_filter("off"), LevelFilter::OFF);
        assert_eq!(level_filter("credits=debug"), LevelFilter::INFO);
    }

    #[test]
    fn trace_is_taken_as_debug_so_no_whole_event_is_logged() {
        assert_eq!(level_filter("TRACE"), LevelFilter::DEBUG);
        assert_eq!(level_filter("trace"), LevelFilter::DEBUG);
    }
}
