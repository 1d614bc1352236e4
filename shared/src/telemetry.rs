//! Logging: `tracing` to stdout, JSON when Lambda's log format is JSON.

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the subscriber once per cold start. The level comes from
/// `RUST_LOG`, else `AWS_LAMBDA_LOG_LEVEL`, else `info` (one level for
/// everything: `error`, `warn`, `info`, `debug` or `off`, `trace` taken as
/// `debug`); the
/// format is JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`, each line with its
/// RFC 3339 `timestamp` (Lambda's log-level filter takes a line's `level`
/// only beside one: without it every line counts as INFO, and an
/// `ApplicationLogLevel` of WARN would drop the errors too). Text lines'
/// timestamps are left to CloudWatch.
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
        .with_target(false);
    if json {
        Box::new(builder.json().with_current_span(true).with_span_list(false).flatten_event(true).finish())
    } else {
        Box::new(builder.without_time().finish())
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
    fn json_lines_carry_an_rfc_3339_timestamp_beside_their_level() {
        #[derive(Clone, Default)]
        struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines::default();
        let sink = lines.clone();
        tracing::subscriber::with_default(subscriber(true, "warn", move || sink.clone()), || {
            tracing::warn!(answer = 42, "something to look at")
        });
        let text = String::from_utf8(lines.0.lock().expect("lines").clone()).expect("UTF-8");
        let line: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON line");
        assert_eq!((line["level"].as_str(), line["answer"].as_i64()), (Some("WARN"), Some(42)), "{line}");
        let at = line["timestamp"].as_str().expect("a timestamp");
        assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at} is not RFC 3339");
    }

    #[test]
    fn trace_is_taken_as_debug_so_no_whole_event_is_logged() {
        assert_eq!(level_filter("TRACE"), LevelFilter::DEBUG);
        assert_eq!(level_filter("trace"), LevelFilter::DEBUG);
    }
}
