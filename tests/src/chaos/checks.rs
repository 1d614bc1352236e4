//! The invariants a chaos run must leave behind, checked from the table
//! itself once the faults are off, and the planted defects that show each
//! check can fail.

use crate::invariants::FIGURES;
use crate::table::{attr, attr_n, attr_n_or, Item};
use credits::email::{email_id, EmailKind};
use credits::plans::Catalogue;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// A mutating route of the workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `POST /v1/signups`.
    Signup,
    /// `POST /v1/purchases`.
    Purchase,
    /// `POST /v1/spends`.
    Spend,
    /// `POST /v1/plan-changes`.
    PlanChange,
}

impl Kind {
    /// The route's part of a record's sort key.
    pub fn record_name(self) -> &'static str {
        match self {
            Kind::Signup => "signup",
            Kind::Purchase => "purchase",
            Kind::Spend => "spend",
            Kind::PlanChange => "plan-change",
        }
    }
}

/// One logical operation of the workload and how it ended for each of the
/// callers that sent it (concurrent duplicates send the same key and body).
#[derive(Clone, Debug)]
pub struct Op {
    /// The route.
    pub kind: Kind,
    /// The user it is about.
    pub user: String,
    /// Its idempotency key.
    pub key: String,
    /// The body every caller sent.
    pub body: Value,
    /// Each caller's final status, after its retries.
    pub finals: Vec<u16>,
    /// The final body of a caller that got a 2xx, else of the first caller.
    pub reply: Value,
    /// Whether every 2xx caller got the same body.
    pub same_body: bool,
}

impl Op {
    /// How the operation ended: 2xx if any caller got one. A 4xx is not
    /// recorded, so a duplicate still retrying may later succeed with the
    /// same key (a spend refused with 402 goes through once affordable);
    /// the key then took effect once, and the earlier 402 changed nothing.
    pub fn status(&self) -> u16 {
        self.finals.iter().copied().find(|s| (200..300).contains(s)).or(self.finals.first().copied()).unwrap_or(0)
    }
}

/// What a run left behind.
#[derive(Clone, Debug, Default)]
pub struct World {
    /// Every item of the run's table.
    pub items: Vec<Item>,
    /// The workload's operations.
    pub ops: Vec<Op>,
    /// Messages the emulated SES accepted for this run's users.
    pub ses: Vec<Value>,
    /// Handler or scheduled-run tasks that panicked.
    pub panics: usize,
    /// SendEmail requests SES accepted but whose answer the proxy cut.
    pub lost_ses_answers: usize,
}

/// An invariant: its name and its check, which returns the violations.
pub struct Check {
    /// What it asserts, as printed.
    pub name: &'static str,
    /// The check.
    pub run: fn(&World) -> Vec<String>,
}

/// Every invariant, in the order they are printed.
pub fn checks() -> Vec<Check> {
    vec![
        Check { name: "every 2xx took effect exactly once", run: two_xx_took_effect_once },
        Check { name: "every 4xx took no effect", run: four_xx_took_none },
        Check { name: "no final 5xx", run: no_final_5xx },
        Check { name: "every account's ledger explains its balance", run: ledgers_explain_balances },
        Check { name: "each referral and upgrade bonus paid once", run: bonuses_paid_once },
        Check { name: "each cycle granted once", run: cycles_granted_once },
        Check { name: "no email pending or lost", run: no_email_pending_or_lost },
        Check { name: "every duplicate email is explained by a lost SES answer", run: duplicates_explained },
        Check { name: "no handler or run died", run: nothing_died },
    ]
}

fn sk(item: &Item) -> &str {
    attr(item, "sk")
}

fn pk(item: &Item) -> &str {
    attr(item, "pk")
}

impl World {
    fn user_items(&self, user: &str) -> impl Iterator<Item = &Item> + '_ {
        let pk = format!("USER#{user}");
        self.items.iter().filter(move |i| attr(i, "pk") == pk)
    }

    /// A user's ledger entries, in entry order.
    pub fn entries(&self, user: &str) -> Vec<&Item> {
        let mut entries: Vec<&Item> = self.user_items(user).filter(|i| sk(i).starts_with("LEDGER#")).collect();
        entries.sort_by_key(|e| attr_n(e, "seq"));
        entries
    }

    /// A user's account item.
    pub fn account(&self, user: &str) -> Option<&Item> {
        self.user_items(user).find(|i| sk(i) == "ACCOUNT")
    }

    /// Every account item.
    pub fn accounts(&self) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(|i| sk(i) == "ACCOUNT")
    }

    fn record(&self, op: &Op) -> Option<&Item> {
        let sk_wanted = format!("IDEM#{}#{}", op.kind.record_name(), op.key);
        self.user_items(&op.user).find(|i| sk(i) == sk_wanted)
    }

    fn entries_with_ref(&self, op: &Op) -> usize {
        self.user_items(&op.user).filter(|i| sk(i).starts_with("LEDGER#") && attr(i, "ref") == op.key).count()
    }

    fn signup_of(&self, user: &str) -> Option<&Op> {
        self.ops.iter().find(|o| o.kind == Kind::Signup && o.user == user && (200..300).contains(&o.status()))
    }
}

fn two_xx_took_effect_once(world: &World) -> Vec<String> {
    let mut out = Vec::new();
    for op in world.ops.iter().filter(|o| (200..300).contains(&o.status())) {
        if world.record(op).is_none() {
            out.push(format!("{:?} {}: answered {} but left no idempotency record", op.kind, op.key, op.status()));
        }
        let n = world.entries_with_ref(op);
        let expected_one = op.kind != Kind::PlanChange;
        if (expected_one && n != 1) || n > 1 {
            out.push(format!("{:?} {}: answered {} and has {n} ledger entries", op.kind, op.key, op.status()));
        }
        if !op.same_body {
            out.push(format!("{:?} {}: concurrent duplicates got different bodies", op.kind, op.key));
        }
    }
    out
}

fn four_xx_took_none(world: &World) -> Vec<String> {
    let mut out = Vec::new();
    for op in world.ops.iter().filter(|o| (400..500).contains(&o.status())) {
        if world.record(op).is_some() {
            out.push(format!("{:?} {}: answered {} but its key is recorded", op.kind, op.key, op.status()));
        }
        let n = world.entries_with_ref(op);
        if n > 0 {
            out.push(format!("{:?} {}: answered {} but wrote {n} ledger entries", op.kind, op.key, op.status()));
        }
    }
    out
}

fn no_final_5xx(world: &World) -> Vec<String> {
    world
        .ops
        .iter()
        .filter(|o| o.finals.iter().any(|s| *s >= 500 || *s < 200))
        .map(|o| format!("{:?} {}: a caller ended with {:?}", o.kind, o.key, o.finals))
        .collect()
}

fn ledgers_explain_balances(world: &World) -> Vec<String> {
    let mut out = Vec::new();
    for account in world.accounts() {
        let user = attr(account, "user_id");
        let mut running = [0_i64; 5];
        let entries = world.entries(user);
        for (i, e) in entries.iter().enumerate() {
            if attr_n(e, "seq") != i as i64 + 1 {
                out.push(format!("{user}: entry {} is numbered {}", i + 1, attr_n(e, "seq")));
            }
            for (b, figure) in FIGURES.iter().enumerate() {
                running[b] += attr_n_or(e, &format!("d_{figure}"), 0);
                if attr_n_or(e, &format!("after_{figure}"), 0) != running[b] {
                    out.push(format!("{user}: entry {} balance_after.{figure} disagrees with its deltas", i + 1));
                }
                if running[b] < 0 {
                    out.push(format!("{user}: {figure} negative after entry {}", i + 1));
                }
            }
        }
        let stored = FIGURES.map(|f| attr_n_or(account, &format!("bal_{f}"), 0));
        if stored != running {
            out.push(format!("{user}: balance {stored:?} but the deltas sum to {running:?}"));
        }
        if attr_n(account, "ledger_seq") != entries.len() as i64 {
            out.push(format!("{user}: ledger_seq {} with {} entries", attr_n(account, "ledger_seq"), entries.len()));
        }
    }
    out
}

fn bonuses_paid_once(world: &World) -> Vec<String> {
    let catalogue = Catalogue::default();
    let mut out = Vec::new();
    for account in world.accounts().filter(|a| a.contains_key("referrer_id")) {
        let user = attr(account, "user_id");
        let referrer = attr(account, "referrer_id");
        let paid = world.entries(referrer);
        let signup_bonuses = paid
            .iter()
            .filter(|e| attr(e, "entry_kind") == "referral_bonus" && attr(e, "ref") == format!("signup:{user}"))
            .count();
        let rewarded = world.signup_of(user).is_some_and(|o| o.reply["referral"]["status"] == "rewarded");
        if signup_bonuses != usize::from(rewarded) {
            out.push(format!("{user}: signup bonus paid {signup_bonuses} times (rewarded: {rewarded})"));
        }
        let upgrade_paid: i64 = paid
            .iter()
            .filter(|e| {
                attr(e, "entry_kind") == "upgrade_bonus" && attr(e, "ref").starts_with(&format!("plan-change:{user}:"))
            })
            .map(|e| attr_n(e, "d_bonus"))
            .sum();
        let initial = world
            .signup_of(user)
            .and_then(|o| o.body["plan"].as_str())
            .and_then(|p| catalogue.plan(p))
            .map_or(0, |p| p.rank);
        let highest = u32::try_from(attr_n(account, "max_rank")).unwrap_or(0);
        let expected: i64 =
            catalogue.plans().iter().filter(|p| p.rank > initial && p.rank <= highest).map(|p| p.upgrade_bonus).sum();
        if upgrade_paid != expected {
            out.push(format!("{user}: upgrade bonuses paid {upgrade_paid}, the highest plan reached earns {expected}"));
        }
    }
    out
}

fn cycles_granted_once(world: &World) -> Vec<String> {
    let mut out = Vec::new();
    for account in world.accounts() {
        let user = attr(account, "user_id");
        let grants: Vec<String> = world
            .entries(user)
            .iter()
            .filter(|e| attr(e, "entry_kind") == "cycle_grant")
            .map(|e| attr(e, "ref").to_owned())
            .collect();
        let distinct: HashSet<&String> = grants.iter().collect();
        if distinct.len() != grants.len() {
            out.push(format!("{user}: a cycle granted twice ({grants:?})"));
        }
        let Some(start) =
            world.signup_of(user).and_then(|o| o.body["signed_up_at"].as_str()).and_then(credits::cycle::parse_time)
        else {
            continue;
        };
        let end = attr(account, "cycle_end");
        let mut cycle = credits::cycle::Cycle::first(start);
        let mut elapsed = 0;
        while let Some(c) = cycle.filter(|c| credits::cycle::format_time(c.end) != end) {
            elapsed += 1;
            cycle = c.next();
            if elapsed > 1_000 {
                break;
            }
        }
        if elapsed != grants.len() {
            out.push(format!("{user}: {elapsed} cycles elapsed, {} granted", grants.len()));
        }
    }
    out
}

fn no_email_pending_or_lost(world: &World) -> Vec<String> {
    let mut out = Vec::new();
    let emails: HashMap<&str, &Item> =
        world.items.iter().filter(|i| sk(i) == "EMAIL").map(|i| (attr(i, "email_id"), i)).collect();
    let accepted: HashSet<&str> = world.ses.iter().filter_map(|m| m["id"].as_str()).collect();
    for (id, item) in &emails {
        if attr(item, "status") != "sent" {
            out.push(format!("email {id}: {} after the drain", attr(item, "status")));
        } else if !accepted.contains(attr(item, "message_id")) {
            out.push(format!("email {id}: marked sent, but SES never accepted message {}", attr(item, "message_id")));
        }
    }
    for op in world.ops.iter().filter(|o| (200..300).contains(&o.status())) {
        let expected = match op.kind {
            Kind::Purchase => Some(email_id(EmailKind::PurchaseReceipt, &[&op.user, &op.key])),
            Kind::Signup if op.reply["referral"]["status"] == "rewarded" => {
                Some(email_id(EmailKind::ReferralSignupBonus, &[&op.user]))
            }
            Kind::PlanChange if !op.reply["upgrade_bonus"].is_null() => {
                Some(email_id(EmailKind::ReferralUpgradeBonus, &[&op.user, &op.key]))
            }
            _ => None,
        };
        if let Some(id) = expected {
            if !emails.contains_key(id.as_str()) {
                out.push(format!("{:?} {}: its email {id} is not in the outbox", op.kind, op.key));
            }
        }
    }
    out
}

/// SES has no idempotency token: when its answer is lost, the SDK's retry
/// sends a second copy. That is the only way a copy may be added; the
/// outbox's own retries must add none.
fn duplicates_explained(world: &World) -> Vec<String> {
    let queued = world.items.iter().filter(|i| sk(i) == "EMAIL").count();
    let duplicates = world.ses.len().saturating_sub(queued);
    if duplicates <= world.lost_ses_answers {
        Vec::new()
    } else {
        vec![format!("{duplicates} duplicate emails, {} lost SES answers", world.lost_ses_answers)]
    }
}

fn nothing_died(world: &World) -> Vec<String> {
    if world.panics == 0 {
        Vec::new()
    } else {
        vec![format!("{} task(s) panicked", world.panics)]
    }
}

/// A defect planted into a copy of a clean world, and the check that must
/// catch it.
pub struct Plant {
    /// What was planted.
    pub name: &'static str,
    /// The check that must report it.
    pub check: &'static str,
    /// Plants it; `None` where the run gave nothing to plant it on.
    pub plant: fn(&mut World) -> Option<()>,
}

fn entry_position(world: &World, wanted: impl Fn(&Item) -> bool) -> Option<usize> {
    world.items.iter().position(|i| sk(i).starts_with("LEDGER#") && wanted(i))
}

/// Appends a copy of the entry at `at` as its account's next entry.
fn append_copy(world: &mut World, at: usize) -> Option<()> {
    let copy = world.items.get(at)?.clone();
    let user_pk = pk(&copy).to_owned();
    let next = world.items.iter().filter(|i| pk(i) == user_pk && sk(i).starts_with("LEDGER#")).count() as i64 + 1;
    let mut copy = copy;
    copy.insert("seq".into(), aws_sdk_dynamodb::types::AttributeValue::N(next.to_string()));
    copy.insert("sk".into(), aws_sdk_dynamodb::types::AttributeValue::S(format!("LEDGER#{next:020}")));
    world.items.push(copy);
    Some(())
}

/// One planted defect per check.
pub fn plants() -> Vec<Plant> {
    vec![
        Plant {
            name: "a committed purchase loses its ledger entry",
            check: "every 2xx took effect exactly once",
            plant: |w| {
                let op = w.ops.iter().find(|o| o.kind == Kind::Purchase && (200..300).contains(&o.status()))?.clone();
                let at = entry_position(w, |i| attr(i, "ref") == op.key)?;
                w.items.remove(at);
                Some(())
            },
        },
        Plant {
            name: "a refused request leaves its key recorded",
            check: "every 4xx took no effect",
            plant: |w| {
                let mut op = w.ops.iter().find(|o| (200..300).contains(&o.status()))?.clone();
                op.finals = vec![402];
                w.ops.push(op);
                Some(())
            },
        },
        Plant {
            name: "a caller gives up on a 503",
            check: "no final 5xx",
            plant: |w| {
                let mut op = w.ops.first()?.clone();
                op.finals.push(503);
                w.ops[0] = op;
                Some(())
            },
        },
        Plant {
            name: "a bonus bucket one credit off its ledger",
            check: "every account's ledger explains its balance",
            plant: |w| {
                let at = w.items.iter().position(|i| sk(i) == "ACCOUNT")?;
                let item = w.items.get_mut(at)?;
                let bonus = attr_n(item, "bal_bonus") + 1;
                item.insert("bal_bonus".into(), aws_sdk_dynamodb::types::AttributeValue::N(bonus.to_string()));
                Some(())
            },
        },
        Plant {
            name: "a referral bonus paid twice",
            check: "each referral and upgrade bonus paid once",
            plant: |w| {
                let at = entry_position(w, |i| ["referral_bonus", "upgrade_bonus"].contains(&attr(i, "entry_kind")))?;
                append_copy(w, at)
            },
        },
        Plant {
            name: "a cycle granted twice",
            check: "each cycle granted once",
            plant: |w| {
                let at = entry_position(w, |i| attr(i, "entry_kind") == "cycle_grant")?;
                append_copy(w, at)
            },
        },
        Plant {
            name: "an email left pending",
            check: "no email pending or lost",
            plant: |w| {
                let item = w.items.iter_mut().find(|i| sk(i) == "EMAIL")?;
                item.insert("status".into(), aws_sdk_dynamodb::types::AttributeValue::S("pending".into()));
                Some(())
            },
        },
        Plant {
            name: "an email marked sent that SES never had",
            check: "no email pending or lost",
            plant: |w| {
                let id = w.items.iter().find(|i| sk(i) == "EMAIL").map(|i| attr(i, "message_id").to_owned())?;
                w.ses.retain(|m| m["id"] != id.as_str());
                Some(())
            },
        },
        Plant {
            name: "the outbox sends an email a second time",
            check: "every duplicate email is explained by a lost SES answer",
            plant: |w| {
                let copy = w.ses.first()?.clone();
                w.ses.extend(std::iter::repeat_n(copy, w.lost_ses_answers + 1));
                Some(())
            },
        },
        Plant {
            name: "a handler panics",
            check: "no handler or run died",
            plant: |w| {
                w.panics += 1;
                Some(())
            },
        },
    ]
}
