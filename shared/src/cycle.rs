//! Billing cycles: calendar months anchored on the signup day, clamped to month end.
//!
//! Signed up on Jan 31, an account's cycles end on Feb 28 (29 in leap years),
//! Mar 31, Apr 30, ...: each end is the anchor day of the next month, or that
//! month's last day where the month is shorter. The time of day is kept.

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, TimeZone, Timelike, Utc};

/// A point in time, UTC, whole seconds.
pub type Time = DateTime<Utc>;

/// The years a time may fall in: those [`format_time`] writes with four
/// digits. Outside them it writes a sign and more digits (`+10000-01-15...`),
/// which RFC 3339 parsing refuses and which sorts before every real date, so
/// an item holding one could never be read again.
pub const YEARS: std::ops::RangeInclusive<i32> = 0..=9999;

/// One billing cycle: `[start, end)`, and the day of month cycles end on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cycle {
    /// When this cycle began.
    pub start: Time,
    /// When it ends and the next begins.
    pub end: Time,
    /// Day of month (1..=31) the account's cycles are anchored on.
    pub anchor_day: u32,
}

impl Cycle {
    /// The first cycle of an account that signed up at `at`, or `None` when
    /// one month later falls outside [`YEARS`].
    pub fn first(at: Time) -> Option<Cycle> {
        let anchor_day = at.day();
        Some(Cycle { start: at, end: add_month(at, anchor_day)?, anchor_day })
    }

    /// The cycle that follows this one; `None` when it would end after [`YEARS`].
    pub fn next(&self) -> Option<Cycle> {
        Some(Cycle { start: self.end, end: add_month(self.end, self.anchor_day)?, anchor_day: self.anchor_day })
    }
}

/// Number of days in `month` (1..=12) of `year`.
pub fn days_in_month(year: i32, month: u32) -> u32 {
    let (next_year, next_month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    NaiveDate::from_ymd_opt(next_year, next_month, 1)
        .and_then(|first_of_next| first_of_next.pred_opt())
        .map_or(28, |last| last.day())
}

/// `at` moved to the next calendar month, on `anchor_day` clamped to that
/// month's length, at the same time of day; `None` past the end of [`YEARS`].
pub fn add_month(at: Time, anchor_day: u32) -> Option<Time> {
    let (year, month) = if at.month() == 12 { (at.year().checked_add(1)?, 1) } else { (at.year(), at.month() + 1) };
    if !YEARS.contains(&year) {
        return None;
    }
    let day = anchor_day.min(days_in_month(year, month));
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let naive = date.and_hms_opt(at.hour(), at.minute(), at.second())?;
    Some(Utc.from_utc_datetime(&naive))
}

/// Parses an RFC 3339 time (any offset) into UTC, dropping fractions of a
/// second; `None` when it is not one, or falls outside [`YEARS`] in UTC
/// (`0000-01-01T00:00:00+01:00` is in the year -1).
pub fn parse_time(text: &str) -> Option<Time> {
    let parsed = DateTime::parse_from_rfc3339(text).ok()?.with_timezone(&Utc);
    parsed.with_nanosecond(0).filter(|at| YEARS.contains(&at.year()))
}

/// Formats a time as the contract writes it: `2026-01-31T10:00:00Z`.
///
/// The format has a fixed width for the years of [`YEARS`], so these strings
/// sort in time order, which the table's sort keys rely on; [`parse_time`] and
/// [`add_month`] give no time outside them.
pub fn format_time(at: Time) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Serialises a time as [`format_time`] writes it (for `#[serde(serialize_with)]`).
pub fn serialize_time<S: serde::Serializer>(at: &Time, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&format_time(*at))
}

/// The current time, whole seconds.
pub fn now() -> Time {
    let now = Utc::now();
    now.with_nanosecond(0).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Time {
        parse_time(s).expect("test time")
    }

    fn ends(start: &str, n: usize) -> Vec<String> {
        let mut cycle = Cycle::first(t(start)).expect("first cycle");
        let mut out = vec![format_time(cycle.end)];
        for _ in 1..n {
            cycle = cycle.next().expect("next cycle");
            out.push(format_time(cycle.end));
        }
        out
    }

    #[test]
    fn jan_31_clamps_to_february_and_returns_to_the_31st() {
        assert_eq!(
            ends("2026-01-31T10:00:00Z", 4),
            ["2026-02-28T10:00:00Z", "2026-03-31T10:00:00Z", "2026-04-30T10:00:00Z", "2026-05-31T10:00:00Z"]
        );
    }

    #[test]
    fn leap_years_end_february_on_the_29th() {
        assert_eq!(ends("2028-01-31T00:00:00Z", 2), ["2028-02-29T00:00:00Z", "2028-03-31T00:00:00Z"]);
        assert_eq!(ends("2028-01-29T00:00:00Z", 1), ["2028-02-29T00:00:00Z"]);
        // 2100 is not a leap year, 2000 was.
        assert_eq!(ends("2100-01-30T00:00:00Z", 1), ["2100-02-28T00:00:00Z"]);
        assert_eq!(ends("2000-01-30T00:00:00Z", 1), ["2000-02-29T00:00:00Z"]);
    }

    #[test]
    fn february_29_signup_anchors_on_the_29th() {
        assert_eq!(
            ends("2028-02-29T08:30:00Z", 3),
            ["2028-03-29T08:30:00Z", "2028-04-29T08:30:00Z", "2028-05-29T08:30:00Z"]
        );
    }

    #[test]
    fn december_rolls_into_january_of_the_next_year() {
        assert_eq!(ends("2026-12-31T23:59:59Z", 2), ["2027-01-31T23:59:59Z", "2027-02-28T23:59:59Z"]);
    }

    #[test]
    fn days_in_month_knows_the_calendar() {
        assert_eq!(days_in_month(2026, 2), 28);
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2026, 4), 30);
        assert_eq!(days_in_month(2026, 12), 31);
    }

    #[test]
    fn times_are_normalised_to_utc_seconds() {
        assert_eq!(format_time(t("2026-01-31T12:00:00.75+02:00")), "2026-01-31T10:00:00Z");
        assert!(parse_time("2026-01-31").is_none());
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn the_last_representable_month_has_no_successor() {
        let end_of_time = Utc.from_utc_datetime(&NaiveDate::MAX.and_hms_opt(0, 0, 0).expect("midnight"));
        assert!(add_month(end_of_time, 1).is_none());
    }

    #[test]
    fn times_stay_within_four_digit_years() {
        // The last cycle that ends in 9999, and the first that would not.
        assert_eq!(ends("9999-11-15T00:00:00Z", 1), ["9999-12-15T00:00:00Z"]);
        assert!(Cycle::first(t("9999-12-15T00:00:00Z")).is_none());
        assert!(Cycle::first(t("9999-11-15T00:00:00Z")).and_then(|c| c.next()).is_none());
        // Times that would be written with a sign are not times here.
        assert!(parse_time("9999-12-31T23:00:00-05:00").is_none());
        assert!(parse_time("0000-01-01T00:00:00+01:00").is_none());
        assert_eq!(parse_time("0000-01-01T00:00:00Z").map(format_time).as_deref(), Some("0000-01-01T00:00:00Z"));
        assert_eq!(parse_time("9999-12-31T23:59:59Z").map(format_time).as_deref(), Some("9999-12-31T23:59:59Z"));
        // What a year past 9999 would have been written as, and why it is refused.
        let past = Utc.from_utc_datetime(
            &NaiveDate::from_ymd_opt(10_000, 1, 15).and_then(|d| d.and_hms_opt(0, 0, 0)).expect("date"),
        );
        assert_eq!(format_time(past), "+10000-01-15T00:00:00Z");
        assert!(parse_time(&format_time(past)).is_none());
    }
}
