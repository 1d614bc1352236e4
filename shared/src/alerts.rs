//! Low-balance alerts: which thresholds a change crosses, once per
//! threshold per billing cycle.
//!
//! A threshold `t > 0` is crossed when `total` goes from at least `t` to
//! below it. The threshold 0 means "you have run out": it is crossed when
//! `total` goes from above 0 to 0 (a total is never below 0). A threshold
//! alerted in a cycle stays quiet until the rollover re-arms it.

/// The thresholds a change of `total` from `before` to `after` crosses,
/// leaving out those already alerted this cycle; highest first.
pub fn crossed(thresholds: &[i64], before: i64, after: i64, alerted: &[i64]) -> Vec<i64> {
    let mut hit: Vec<i64> = thresholds
        .iter()
        .copied()
        .filter(|t| if *t > 0 { before >= *t && after < *t } else { before > 0 && after <= 0 })
        .filter(|t| !alerted.contains(t))
        .collect();
    hit.sort_unstable_by(|a, b| b.cmp(a));
    hit.dedup();
    hit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossing_downward_alerts_and_staying_above_or_below_does_not() {
        let t = [500, 0];
        assert_eq!(crossed(&t, 600, 499, &[]), [500]);
        assert_eq!(crossed(&t, 500, 499, &[]), [500], "from at the threshold counts");
        assert!(crossed(&t, 600, 500, &[]).is_empty(), "at the threshold is not below it");
        assert!(crossed(&t, 499, 100, &[]).is_empty(), "already below");
        assert!(crossed(&t, 100, 600, &[]).is_empty(), "upward");
        assert_eq!(crossed(&t, 800, 0, &[]), [500, 0], "one change may cross two");
        assert_eq!(crossed(&t, 1, 0, &[]), [0], "running out");
        assert!(crossed(&t, 0, 0, &[]).is_empty());
    }

    #[test]
    fn a_threshold_alerted_this_cycle_stays_quiet() {
        assert!(crossed(&[500, 0], 600, 400, &[500]).is_empty());
        assert_eq!(crossed(&[500, 0], 600, 0, &[500]), [0]);
    }
}
