//! Test harness: real API Gateway v2 events (from `fixtures/`) through the
//! handlers, with the real AWS SDK clients, against the local emulator that
//! `make test` starts (`AWS_ENDPOINT_URL`, `TABLE_NAME`, `SENDER_EMAIL`).
//!
//! | module | what |
//! |---|---|
//! | [`events`] | API Gateway events from the fixtures, and decoded answers |
//! | [`drivers`] | the app under test, and each function driven by an event |
//! | [`table`] | the table behind the handlers' backs: items, partitions, fresh tables |
//! | [`emulator`] | what only the emulator can tell (the emails SES accepted), and fault proxies |
//! | [`invariants`] | checks that hold for every account, read from the table |
//! | [`logs`] | the log lines the functions write |
//! | [`chaos`] | the fault-injection suite: workload, invariants, self-test |
//! | [`runtime_api`] | a Lambda runtime API for the benchmarks: release binaries run as on Lambda |
//! | [`template`] | what template.yaml grants each function's role |

pub mod chaos;
pub mod drivers;
pub mod emulator;
pub mod events;
pub mod invariants;
pub mod logs;
pub mod runtime_api;
pub mod table;
pub mod template;

pub use drivers::*;
pub use emulator::*;
pub use events::*;
pub use invariants::*;
pub use logs::*;
pub use table::*;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// A unique id for this test run and call, so tests share one table safely.
pub fn unique(prefix: &str) -> String {
    static RUN: OnceLock<String> = OnceLock::new();
    static N: AtomicUsize = AtomicUsize::new(0);
    let run = RUN.get_or_init(|| (0..6).map(|_| fastrand::alphanumeric()).collect());
    format!("{prefix}-{run}-{}", N.fetch_add(1, Ordering::Relaxed))
}
