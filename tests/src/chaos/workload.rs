//! The chaos workload: callers that retry with the same key like a payment
//! back end, concurrent duplicates, and scheduled runs, all at once.

use super::checks::{Kind, Op};
use crate::drivers::{outbox_at, rollover_at, send_to};
use crate::events::{service_event, Answer};
use credits::App;
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;

/// A caller gives up after this many tries (it never should: a 5xx is
/// always safe to retry, and the suite fails on a final 5xx).
const CALLER_TRIES: u32 = 60;

/// What the workload did, besides its operations.
#[derive(Debug, Default)]
pub struct Tally {
    /// Requests the callers sent (first tries and retries).
    pub attempts: u64,
    /// Retries after a 5xx.
    pub retries: u64,
    /// Operations sent by more than one caller at once.
    pub duplicated: u64,
    /// Scheduled runs (rollover and outbox) during the faults.
    pub scheduled: u64,
    /// Tasks that panicked.
    pub panics: usize,
}

/// Sends `body` to the route's handler as one caller would: again after
/// every 5xx, with backoff, with the same key and body.
async fn caller(app: App, kind: Kind, body: Value) -> (Answer, u32) {
    let fixture = match kind {
        Kind::Signup => "signup.json",
        Kind::Purchase => "purchase.json",
        Kind::Spend => "spend.json",
        Kind::PlanChange => "plan-change.json",
    };
    let event = service_event(fixture, &body.to_string());
    let mut pause = Duration::from_millis(20);
    let mut tries = 0;
    loop {
        tries += 1;
        let answer = send_to(&app, kind_function(kind), &event).await;
        if answer.status < 500 || tries >= CALLER_TRIES {
            return (answer, tries);
        }
        tokio::time::sleep(pause.mul_f64(0.5 + fastrand::f64() / 2.0)).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

fn kind_function(kind: Kind) -> &'static str {
    match kind {
        Kind::Signup => "referral-signup",
        Kind::Purchase => "purchase",
        Kind::Spend => "spend",
        Kind::PlanChange => "upgrade-bonus",
    }
}

/// Runs one operation: `copies` callers send it at the same time.
async fn operation(app: &App, kind: Kind, user: &str, key: &str, body: Value, copies: usize, tally: &mut Tally) -> Op {
    let tasks: Vec<_> = (0..copies).map(|_| tokio::spawn(caller(app.clone(), kind, body.clone()))).collect();
    let mut finals = Vec::new();
    let mut bodies = Vec::new();
    let mut reply = Value::Null;
    for task in tasks {
        match task.await {
            Ok((answer, tries)) => {
                tally.attempts += u64::from(tries);
                tally.retries += u64::from(tries - 1);
                if finals.is_empty() || ((200..300).contains(&answer.status) && bodies.is_empty()) {
                    reply = answer.json.clone();
                }
                finals.push(answer.status);
                if (200..300).contains(&answer.status) {
                    bodies.push(answer.text);
                }
            }
            Err(e) => {
                if e.is_panic() {
                    tally.panics += 1;
                }
                finals.push(0);
            }
        }
    }
    if copies > 1 {
        tally.duplicated += 1;
    }
    let same_body = bodies.windows(2).all(|w| w[0] == w[1]);
    Op { kind, user: user.to_owned(), key: key.to_owned(), body, finals, reply, same_body }
}

const PLANS: [&str; 4] = ["free", "basic", "pro", "business"];

/// Runs the workload on `app`: `users` signups (about half referred), then
/// `operations` purchases, spends and plan changes, `concurrency` at a
/// time, with rollover and outbox runs going on meanwhile.
pub async fn run(app: &App, seed: u64, users: usize, operations: usize, concurrency: usize) -> (Vec<Op>, Tally) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut tally = Tally::default();
    let mut ops = Vec::new();
    let run = format!("{}-s{seed}", crate::unique("chaos"));

    // Signups, in waves: the first few name no code; most later ones name
    // the code of someone signed up before. Half the accounts start about
    // eleven months ago: by the clock their cycles have ended, so the
    // requests on them roll them over first, racing the first rollover run
    // below. The other half start in the coming four weeks: not due by the
    // clock, so the later runs (two to seven months on) roll them over while
    // requests go on. Those runs find both halves a few cycles behind, not
    // hundreds: with the second half in 2096 and runs there, each account of
    // the first rolled 840 cycles, whose ledger entries made a full `make
    // chaos` take 10 minutes instead of 3.
    let today = credits::cycle::now();
    let days_on = |days: i64| credits::cycle::format_time(today + chrono::Duration::days(days));
    let mut codes: Vec<String> = Vec::new();
    let mut user_ids = Vec::new();
    let first_wave = (users / 4).max(2).min(users);
    let mut waves = vec![(0..first_wave).collect::<Vec<_>>()];
    waves.extend((first_wave..users).collect::<Vec<_>>().chunks(concurrency.max(1)).map(<[usize]>::to_vec));
    for wave in waves {
        let mut batch = Vec::new();
        for i in wave {
            let user = format!("{run}-u{i}");
            let mut body = json!({
                "user_id": user, "email": format!("{user}@example.com"), "plan": PLANS[rng.usize(..PLANS.len())],
                "signed_up_at": days_on(if i % 2 == 0 { -330 } else { 1 } + (i % 28) as i64),
            });
            if !codes.is_empty() && rng.f64() < 0.7 {
                body["referral_code"] = json!(codes[rng.usize(..codes.len())]);
            }
            let copies = if rng.f64() < 0.2 { 2 } else { 1 };
            batch.push((user, body, copies));
        }
        let done: Vec<(Op, Tally)> = stream::iter(batch)
            .map(|(user, body, copies)| async move {
                let mut t = Tally::default();
                let op = operation(app, Kind::Signup, &user, &user, body, copies, &mut t).await;
                (op, t)
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        for (op, t) in done {
            add(&mut tally, t);
            if let Some(code) = op.reply["account"]["referral_code"].as_str() {
                codes.push(code.to_owned());
                user_ids.push(op.user.clone());
            }
            ops.push(op);
        }
    }

    // Rollovers while the requests go on (two of them racing each other).
    let rollovers: Vec<_> = [days_on(-285), days_on(60), days_on(120), days_on(120), days_on(210)]
        .into_iter()
        .enumerate()
        .map(|(i, time)| {
            let app = app.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300 * i as u64)).await;
                rollover_at(&app, &time, 0).await
            })
        })
        .collect();

    let mut planned = Vec::new();
    for i in 0..operations {
        let Some(user) = (!user_ids.is_empty()).then(|| user_ids[rng.usize(..user_ids.len())].clone()) else { break };
        let roll = rng.f64();
        let (kind, key, body) = if roll < 0.4 {
            let key = format!("{run}-p{i}");
            let body =
                json!({"user_id": user, "payment_id": key, "amount_cents": rng.i64(100..=5_000), "currency": "USD"});
            (Kind::Purchase, key, body)
        } else if roll < 0.8 {
            let key = format!("{run}-s{i}");
            let body = json!({"user_id": user, "spend_id": key, "credits": rng.i64(1..=4_000), "feature": "chaos"});
            (Kind::Spend, key, body)
        } else {
            let key = format!("{run}-c{i}");
            let body = json!({"user_id": user, "change_id": key, "plan": PLANS[rng.usize(..PLANS.len())]});
            (Kind::PlanChange, key, body)
        };
        let copies = if rng.f64() < 0.15 { 2 + rng.usize(..2) } else { 1 };
        planned.push((kind, user, key, body, copies));
    }
    let done: Vec<(Op, Tally)> = stream::iter(planned)
        .map(|(kind, user, key, body, copies)| async move {
            let mut t = Tally::default();
            let op = operation(app, kind, &user, &key, body, copies, &mut t).await;
            (op, t)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    for (op, t) in done {
        add(&mut tally, t);
        ops.push(op);
    }
    for run in rollovers {
        tally.scheduled += 1;
        if run.await.is_err() {
            tally.panics += 1;
        }
    }

    // Then, faults still on, the email outbox as it runs after the requests:
    // at least its 2-minute grace later (a request function times out long
    // before that, so a request never sends an email the outbox also sends).
    // Two racing runs, then one half an hour on.
    let now = credits::cycle::now();
    let later = |minutes: i64| credits::cycle::format_time(now + chrono::Duration::minutes(minutes));
    for times in [vec![later(3), later(3)], vec![later(30)]] {
        let runs: Vec<_> = times
            .into_iter()
            .map(|time| {
                let app = app.clone();
                tokio::spawn(async move { outbox_at(&app, &time).await })
            })
            .collect();
        for run in runs {
            tally.scheduled += 1;
            if run.await.is_err() {
                tally.panics += 1;
            }
        }
    }
    (ops, tally)
}

fn add(total: &mut Tally, t: Tally) {
    total.attempts += t.attempts;
    total.retries += t.retries;
    total.duplicated += t.duplicated;
    total.panics += t.panics;
}
