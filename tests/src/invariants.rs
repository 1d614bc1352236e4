//! Checks that hold for every account at every moment, read straight from
//! the table.

use crate::table::{attr, attr_n, attr_n_or, partition};
use credits::App;

/// The five figures of a balance, as the ledger items and accounts name them.
pub const FIGURES: [&str; 5] = ["plan", "bonus", "flexible", "held", "debt"];

/// Checks that an account's ledger explains its balance: for each of the
/// five figures the deltas sum to the stored figure, entries are numbered
/// 1..=n without gaps, each `balance_after` follows from the one before,
/// none negative.
pub async fn assert_ledger_explains_balance(app: &App, user: &str) {
    let items = partition(app, &format!("USER#{user}")).await;
    let account = items.iter().find(|i| attr(i, "sk") == "ACCOUNT").unwrap_or_else(|| panic!("no account {user}"));
    let mut entries: Vec<_> = items.iter().filter(|i| attr(i, "sk").starts_with("LEDGER#")).collect();
    entries.sort_by_key(|e| attr_n(e, "seq"));
    let mut running = [0_i64; 5];
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(attr_n(e, "seq"), i as i64 + 1, "{user}: ledger numbering");
        for (b, bucket) in FIGURES.iter().enumerate() {
            running[b] += attr_n_or(e, &format!("d_{bucket}"), 0);
            assert_eq!(
                attr_n_or(e, &format!("after_{bucket}"), 0),
                running[b],
                "{user}: balance_after.{bucket} of entry {}",
                i + 1
            );
            assert!(running[b] >= 0, "{user}: {bucket} went negative");
        }
    }
    assert_eq!(attr_n(account, "ledger_seq"), entries.len() as i64, "{user}: ledger_seq");
    assert_eq!(
        FIGURES.map(|f| attr_n_or(account, &format!("bal_{f}"), 0)),
        running,
        "{user}: balance vs sum of ledger deltas"
    );
}
