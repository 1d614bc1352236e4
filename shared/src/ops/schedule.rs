//! What the scheduled functions share: the time an event is about, the
//! invocation's deadline and time budget, and retrying a store call within it.

use crate::cycle::{now, parse_time, Time};
use crate::store::{StoreError, SCHEDULE_SHARDS};
use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The time a scheduled event is about: its `time` (an EventBridge rule's
/// event or a Scheduler payload `{"time": ...}`), or the clock where none is
/// given.
pub fn event_time(payload: &serde_json::Value) -> Result<Time, String> {
    match payload.get("time") {
        None | Some(serde_json::Value::Null) => Ok(now()),
        Some(serde_json::Value::String(text)) => {
            parse_time(text).ok_or_else(|| format!("event time {text:?} is not an RFC 3339 time"))
        }
        Some(other) => Err(format!("event time must be a string, got {other}")),
    }
}

/// Which of the schedule index's shards a run works on: group `group` of
/// `of`, the shards `s` with `s % of == group`. Several invocations on
/// disjoint groups share a backlog; each shard is still walked by one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardGroup {
    /// This run's group, `0..of`.
    pub group: u32,
    /// How many groups the shards are split into, `1..=SCHEDULE_SHARDS`.
    pub of: u32,
}

impl ShardGroup {
    /// Every shard.
    pub const ALL: ShardGroup = ShardGroup { group: 0, of: 1 };

    /// The group an event names (`{"shard_group": 1, "shard_groups": 4}`), or
    /// every shard where it names none.
    pub fn of_event(payload: &serde_json::Value) -> Result<ShardGroup, String> {
        let field = |name: &str| match payload.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => {
                v.as_u64().and_then(|n| u32::try_from(n).ok()).map(Some).ok_or(format!("{name} must be a whole number"))
            }
        };
        match (field("shard_group")?, field("shard_groups")?) {
            (None, None) => Ok(ShardGroup::ALL),
            (Some(group), Some(of)) if (1..=SCHEDULE_SHARDS).contains(&of) && group < of => {
                Ok(ShardGroup { group, of })
            }
            _ => Err(format!("shard_group must be below shard_groups, which must be 1 to {SCHEDULE_SHARDS}")),
        }
    }

    /// The shards of the group.
    pub fn shards(self) -> impl Iterator<Item = u32> {
        (0..SCHEDULE_SHARDS).filter(move |s| s % self.of == self.group)
    }
}

/// When an invocation must be done, as the Lambda context gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deadline {
    /// A point in time: Lambda's `Lambda-Runtime-Deadline-Ms`, milliseconds
    /// since the epoch.
    At(SystemTime),
    /// A span from the start of the invocation: `cargo lambda watch` sends
    /// a fixed [`Deadline::CARGO_LAMBDA_WATCH_MS`] in place of an epoch time.
    After(Duration),
    /// None given (a context built by hand, as the tests do).
    None,
}

impl Deadline {
    /// What `cargo lambda watch` (1.x) always sends as the deadline: its
    /// 10-minute timeout in milliseconds, not an epoch time. As an epoch
    /// time it would be 00:10 on 1 January 1970, so no real deadline is it.
    pub const CARGO_LAMBDA_WATCH_MS: u64 = 600_000;

    /// The deadline of a Lambda context's `deadline` field.
    pub fn from_context_ms(deadline_ms: u64) -> Deadline {
        match deadline_ms {
            0 => Deadline::None,
            Deadline::CARGO_LAMBDA_WATCH_MS => Deadline::After(Duration::from_millis(deadline_ms)),
            ms => Deadline::At(UNIX_EPOCH + Duration::from_millis(ms)),
        }
    }

    /// The deadline as an instant, for an invocation that started now.
    pub fn instant(self) -> Option<Instant> {
        match self {
            Deadline::None => None,
            Deadline::After(span) => Some(Instant::now() + span),
            Deadline::At(at) => Some(Instant::now() + at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO)),
        }
    }
}

/// A scheduled invocation's time budget: work stops being started once less
/// than [`Budget::MARGIN`] is left, so a call that starts always finishes (or
/// times out) before Lambda ends the invocation.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    deadline: Option<Instant>,
}

impl Budget {
    /// Time kept in hand at the end of an invocation: the longest one AWS
    /// call may take ([`crate::sdk::OPERATION_TIMEOUT`], retries included),
    /// and 2 s to report.
    pub const MARGIN: Duration = Duration::from_secs(crate::sdk::OPERATION_TIMEOUT.as_secs() + 2);

    /// The budget of an invocation that started now, with `deadline`.
    pub fn new(deadline: Deadline) -> Budget {
        Budget { deadline: deadline.instant() }
    }

    /// A budget that stops work being started once `span` has passed.
    pub fn lasting(span: Duration) -> Budget {
        Budget::new(Deadline::After(span + Budget::MARGIN))
    }

    /// No deadline.
    pub fn unbounded() -> Budget {
        Budget { deadline: None }
    }

    /// Whether it is time to stop starting work.
    pub fn exhausted(&self) -> bool {
        !self.allows(Duration::ZERO)
    }

    /// Whether `wait` can be spent and still leave the margin.
    pub fn allows(&self, wait: Duration) -> bool {
        self.deadline.is_none_or(|d| d.saturating_duration_since(Instant::now()) >= Budget::MARGIN + wait)
    }
}

/// First pause before a store call is tried again; it doubles each time.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// Longest pause between two tries.
const MAX_PAUSE: Duration = Duration::from_secs(5);
/// Tries of one store call: with the pauses, about 3 s of DynamoDB
/// throttling on top of the SDK's own retries.
pub const PERSIST_TRIES: u32 = 6;

/// Calls `call` until it succeeds, a non-transient error comes back, it was
/// tried [`PERSIST_TRIES`] times, or the budget leaves no time for another
/// pause: for store calls a scheduled run cannot do without (a page of the
/// schedule, a batch of accounts, an email's sent mark), where giving up
/// early would leave the backlog to the next run. Each transient failure is
/// logged.
pub async fn persist<T, F, Fut>(budget: &Budget, what: &str, mut call: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut pause = FIRST_PAUSE;
    let mut tries = 0;
    loop {
        tries += 1;
        match call().await {
            Ok(value) => return Ok(value),
            Err(e) if e.is_transient() && tries < PERSIST_TRIES && budget.allows(pause) => {
                tracing::warn!(error = %e, pause_ms = pause.as_millis() as u64, "{what} failed; trying again");
                tokio::time::sleep(pause.mul_f64(0.5 + fastrand::f64() / 2.0)).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch_ms_in(ahead: Duration) -> u64 {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        now + ahead.as_millis() as u64
    }

    #[test]
    fn scheduled_events_give_their_time() {
        let rule = serde_json::json!({"source": "aws.events", "detail-type": "Scheduled Event", "time": "2026-02-28T10:00:00Z"});
        assert_eq!(event_time(&rule).map(crate::cycle::format_time), Ok("2026-02-28T10:00:00Z".to_owned()));
        assert!(event_time(&serde_json::json!({"time": "soon"})).is_err());
        assert!(event_time(&serde_json::json!({"time": 5})).is_err());
        let before = now();
        assert!(event_time(&serde_json::json!({})).is_ok_and(|t| t >= before));
    }

    #[test]
    fn shard_groups_split_the_shards_without_overlap() {
        let group = |v| ShardGroup::of_event(&v);
        assert_eq!(group(serde_json::json!({"time": "x"})), Ok(ShardGroup::ALL));
        assert_eq!(ShardGroup::ALL.shards().count(), 16);
        let groups: Vec<Vec<u32>> = (0..4)
            .map(|g| group(serde_json::json!({"shard_group": g, "shard_groups": 4})).expect("valid").shards().collect())
            .collect();
        assert_eq!(groups[1], [1, 5, 9, 13]);
        let mut all: Vec<u32> = groups.concat();
        all.sort_unstable();
        assert_eq!(all, (0..16).collect::<Vec<_>>());
        for bad in [
            serde_json::json!({"shard_group": 4, "shard_groups": 4}),
            serde_json::json!({"shard_group": 0, "shard_groups": 17}),
            serde_json::json!({"shard_group": 0}),
            serde_json::json!({"shard_group": "a", "shard_groups": 2}),
        ] {
            assert!(group(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_context_deadline_is_an_epoch_time_except_from_cargo_lambda_watch() {
        assert_eq!(Deadline::from_context_ms(0), Deadline::None);
        assert_eq!(Deadline::from_context_ms(600_000), Deadline::After(Duration::from_secs(600)));
        assert_eq!(
            Deadline::from_context_ms(1_764_000_000_000),
            Deadline::At(UNIX_EPOCH + Duration::from_millis(1_764_000_000_000))
        );
        // 601 seconds after the epoch is an epoch time: long past.
        assert_eq!(Deadline::from_context_ms(601_000), Deadline::At(UNIX_EPOCH + Duration::from_secs(601)));
    }

    #[test]
    fn budgets_stop_work_before_the_deadline() {
        let budget = |ms| Budget::new(Deadline::from_context_ms(ms));
        assert!(!budget(0).exhausted());
        assert!(budget(epoch_ms_in(Duration::from_millis(5))).exhausted());
        assert!(!budget(epoch_ms_in(Duration::from_secs(60))).exhausted());
        assert!(!budget(epoch_ms_in(Duration::from_secs(3))).allows(Duration::from_secs(5)));
        assert!(
            budget(epoch_ms_in(crate::sdk::OPERATION_TIMEOUT + Duration::from_secs(1))).exhausted(),
            "too little time left for one more AWS call, its retries included"
        );
        assert!(!Budget::lasting(Duration::from_secs(3)).exhausted());
        assert!(!budget(Deadline::CARGO_LAMBDA_WATCH_MS).exhausted(), "ten minutes from now");
        assert!(budget(1_000).exhausted(), "a deadline in 1970 has passed");
    }

    #[tokio::test]
    async fn persist_retries_transient_errors_only() {
        let mut calls = 0;
        let result = persist(&Budget::unbounded(), "test", || {
            calls += 1;
            let n = calls;
            async move {
                if n < 3 {
                    Err(StoreError::Unavailable("slow down".into()))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(result.ok(), Some(3));
        let mut calls = 0;
        let result: Result<(), _> = persist(&Budget::unbounded(), "test", || {
            calls += 1;
            async { Err(StoreError::Internal("no such table".into())) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls, 1);
    }

    #[tokio::test]
    async fn persist_gives_up_after_its_tries() {
        let mut calls = 0;
        let result: Result<(), _> = persist(&Budget::unbounded(), "test", || {
            calls += 1;
            async { Err(StoreError::Unavailable("slow down".into())) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls, PERSIST_TRIES);
    }

    #[tokio::test]
    async fn persist_gives_up_when_the_budget_runs_out() {
        let budget = Budget::new(Deadline::After(Duration::from_millis(2_300)));
        let started = Instant::now();
        let result: Result<(), _> =
            persist(&budget, "test", || async { Err(StoreError::Unavailable("slow down".into())) }).await;
        assert!(result.is_err());
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    }
}
