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

/// Captures this thread's log lines, as the functions write them in Lambda
/// (JSON), until the guard is dropped. Use in a current-thread test.
pub fn capture_logs() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let sink = captured.clone();
    let guard = tracing::subscriber::set_default(credits::telemetry::subscriber(true, "info", move || sink.clone()));
    (captured, guard)
}
