//! Ledger entries: one per balance change, immutable, numbered per account.

use crate::balance::{Balance, Delta};
use crate::cycle::{serialize_time, Time};
use serde::Serialize;

/// Why a balance changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// The plan's allowance at signup.
    SignupGrant,
    /// Flexible credits bought.
    Purchase,
    /// A referrer's reward for a signup.
    ReferralBonus,
    /// A referrer's reward for a referred user's upgrade.
    UpgradeBonus,
    /// The plan bucket topped up by an upgrade (`plan_change`).
    PlanChange,
    /// Credits consumed.
    Spend,
    /// The plan bucket's remainder expiring at cycle end.
    Expire,
    /// The plan's allowance for a new cycle.
    CycleGrant,
    /// A purchase refunded or charged back.
    Reversal,
    /// A support correction or goodwill grant.
    Adjustment,
    /// A fraudulent referral's bonuses taken back from the referrer.
    Clawback,
    /// Credits moved from the buckets into `held`.
    Hold,
    /// Held credits spent.
    Capture,
    /// Held credits given back to the buckets.
    Release,
}

impl EntryKind {
    /// Every kind, for decoding.
    pub const ALL: [EntryKind; 14] = [
        EntryKind::SignupGrant,
        EntryKind::Purchase,
        EntryKind::ReferralBonus,
        EntryKind::UpgradeBonus,
        EntryKind::PlanChange,
        EntryKind::Spend,
        EntryKind::Expire,
        EntryKind::CycleGrant,
        EntryKind::Reversal,
        EntryKind::Adjustment,
        EntryKind::Clawback,
        EntryKind::Hold,
        EntryKind::Capture,
        EntryKind::Release,
    ];

    /// The contract's name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::SignupGrant => "signup_grant",
            EntryKind::Purchase => "purchase",
            EntryKind::ReferralBonus => "referral_bonus",
            EntryKind::UpgradeBonus => "upgrade_bonus",
            EntryKind::PlanChange => "plan_change",
            EntryKind::Spend => "spend",
            EntryKind::Expire => "expire",
            EntryKind::CycleGrant => "cycle_grant",
            EntryKind::Reversal => "reversal",
            EntryKind::Adjustment => "adjustment",
            EntryKind::Clawback => "clawback",
            EntryKind::Hold => "hold",
            EntryKind::Capture => "capture",
            EntryKind::Release => "release",
        }
    }

    /// The kind with this name.
    pub fn from_name(name: &str) -> Option<EntryKind> {
        EntryKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// One ledger entry, as the contract shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LedgerEntry {
    /// The entry's number within its account, from 1; newer entries have
    /// larger numbers.
    #[serde(rename = "entry_id", serialize_with = "as_string")]
    pub seq: u64,
    /// When it was written.
    #[serde(serialize_with = "serialize_time")]
    pub at: Time,
    /// Why the balance changed.
    pub kind: EntryKind,
    /// The change to each bucket.
    pub delta: Delta,
    /// The balance right after this entry.
    pub balance_after: Balance,
    /// The key or event that caused it.
    #[serde(rename = "ref")]
    pub reference: String,
    /// What a correction records besides its key.
    #[serde(flatten)]
    pub context: EntryContext,
}

/// What a correction records on its ledger entry besides its key: absent
/// fields are left out of the entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EntryContext {
    /// The purchase a reversal reverses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// The referred user whose referral a clawback revokes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referred_user_id: Option<String>,
    /// Why (`refund`, `chargeback`, `goodwill`, `fraud`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Support's note on an adjustment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn as_string<S: serde::Serializer>(seq: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in EntryKind::ALL {
            assert_eq!(EntryKind::from_name(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).expect("serialises"), kind.as_str());
        }
        assert_eq!(EntryKind::from_name("gift"), None);
    }
}
