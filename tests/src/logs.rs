//! The log lines a test's own requests write.

use serde_json::Value;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Log output captured in memory.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut out) = self.0.lock() {
            out.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Every line so far, as JSON.
    pub fn lines(&self) -> Vec<Value> {
        let text = self.0.lock().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
    }

    /// The lines at `level` (`"ERROR"`, `"WARN"`, ...).
    pub fn at_level(&self, level: &str) -> Vec<Value> {
        self.lines().into_iter().filter(|l| l["level"] == level).collect()
    }
}

/// The log lines of this test process, as the functions write them in
/// Lambda (JSON), from every thread. A process-wide subscriber, installed
/// once: thread-local ones miss events when tests run side by side, because
/// tracing caches each call site's interest across threads. Tests that run
/// side by side share it, so each looks for its own lines (its user ids).
pub fn capture_logs() -> Captured {
    static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            let sink = captured.clone();
            let subscriber = credits::telemetry::subscriber(true, "info", move || sink.clone());
            tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber of the tests");
            captured
        })
        .clone()
}
