//! `POST /v1/signups` through `referral-signup`, against the emulator.

use credits::email::{email_id, EmailKind};
use integration_tests::*;
use serde_json::json;

#[tokio::test]
async fn signup_creates_the_account_with_its_allowance_cycle_and_code() {
    let app = app().await;
    let user = unique("alice");
    let body =
        json!({"user_id": user, "email": "Alice@Example.com", "plan": "pro", "signed_up_at": "2026-01-31T10:00:00Z"});
    let a = signup(&app, body).await;
    assert_eq!(a.status, 201, "{}", a.text);
    let account = &a.json["account"];
    assert_eq!(account["user_id"], user.as_str());
    assert_eq!(account["email"], "Alice@Example.com");
    assert_eq!(account["plan"], "pro");
    assert_eq!(account["cycle_start"], "2026-01-31T10:00:00Z");
    assert_eq!(account["cycle_end"], "2026-02-28T10:00:00Z");
    assert_eq!(
        account["balance"],
        json!({"plan": 5000, "bonus": 0, "flexible": 0, "held": 0, "debt": 0, "total": 5000})
    );
    let code = account["referral_code"].as_str().expect("code");
    assert_eq!(code.len(), 8);
    assert!(code.bytes().all(|b| credits::referral::CODE_ALPHABET.contains(&b)), "{code}");
    assert!(a.json["referral"].is_null());
    assert!(!a.replayed);
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn signup_defaults_to_the_free_plan_and_now() {
    let app = app().await;
    let user = unique("defaults");
    let before = chrono::Utc::now() - chrono::Duration::seconds(2);
    let a = signup(&app, json!({"user_id": user, "email": "d@example.com"})).await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.json["account"]["plan"], "free");
    assert_eq!(a.json["account"]["balance"]["plan"], 1000);
    let start = credits::cycle::parse_time(a.json["account"]["cycle_start"].as_str().expect("start")).expect("time");
    assert!(start >= before && start <= chrono::Utc::now(), "{start}");
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn a_leap_year_signup_on_the_31st_ends_its_cycle_on_february_29() {
    let app = app().await;
    let user = unique("leap");
    let a =
        signup(&app, json!({"user_id": user, "email": "l@example.com", "signed_up_at": "2028-01-31T23:30:00+00:00"}))
            .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.json["account"]["cycle_end"], "2028-02-29T23:30:00Z");
}

#[tokio::test]
async fn replayed_signup_returns_the_original_body_and_a_changed_one_conflicts() {
    let app = app().await;
    let user = unique("replay");
    let body = json!({"user_id": user, "email": "r@example.com", "plan": "basic"});
    let first = signup(&app, body.clone()).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let again = signup(&app, body).await;
    assert_eq!((again.status, again.replayed), (200, true));
    assert_eq!(again.text, first.text);
    let other = signup(&app, json!({"user_id": user, "email": "r@example.com", "plan": "pro"})).await;
    assert_eq!((other.status, other.code()), (409, "idempotency_conflict"), "{}", other.text);
    assert_eq!(balance(&app, &user).await["plan"], 2000);
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn a_base64_encoded_body_is_accepted() {
    let app = app().await;
    let user = unique("b64");
    let body = json!({"user_id": user, "email": "b@example.com"}).to_string();
    let mut event = service_event("signup.json", "");
    event["body"] = json!(base64_encode(body.as_bytes()));
    event["isBase64Encoded"] = json!(true);
    let a = signup_event(&app, &event).await;
    assert_eq!(a.status, 201, "{}", a.text);
}

fn base64_encode(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn a_referred_signup_rewards_the_referrer_and_emails_it() {
    let app = app().await;
    let (referrer, code) = new_user(&app, "free").await;
    let friend = unique("friend");
    let a =
        signup(&app, json!({"user_id": friend, "email": "friend@example.org", "referral_code": code.to_lowercase()}))
            .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.json["referral"], json!({"status": "rewarded", "referrer_bonus": 250}));
    assert_eq!(
        balance(&app, &referrer).await,
        json!({"plan": 1000, "bonus": 250, "flexible": 0, "held": 0, "debt": 0, "total": 1250})
    );

    let r = account_event(&app, &user_event("referral.json", Some(&referrer), "")).await;
    assert_eq!(r.json["signups"], 1);
    assert_eq!(r.json["rewarded_credits"], 250);

    let email = outbox_item(&app, &email_id(EmailKind::ReferralSignupBonus, &[&friend])).await.expect("outbox email");
    assert_eq!(attr(&email, "status"), "sent");
    assert_eq!(attr(&email, "to"), format!("{referrer}@example.com"));
    assert!(!email.contains_key("sched_pk"), "a sent email leaves the schedule index");
    let sent = sent_emails().await;
    assert!(
        sent.iter().any(|m| m.to_string().contains(&format!("{referrer}@example.com"))),
        "SES got no email for the referrer"
    );
    assert_ledger_explains_balance(&app, &referrer).await;
    assert_ledger_explains_balance(&app, &friend).await;
}

#[tokio::test]
async fn a_bonus_for_a_referrer_in_debt_repays_it_first_and_the_email_says_so() {
    let app = app().await;
    let (referrer, code) = new_user(&app, "free").await;
    set_account_attributes(&app, &referrer, &[("bal_debt", aws_sdk_dynamodb::types::AttributeValue::N("100".into()))])
        .await;
    let friend = unique("friend");
    let a = signup(&app, json!({"user_id": friend, "email": "friend@example.org", "referral_code": code})).await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(
        balance(&app, &referrer).await,
        json!({"plan": 1000, "bonus": 150, "flexible": 0, "held": 0, "debt": 0, "total": 1150})
    );
    let email = outbox_item(&app, &email_id(EmailKind::ReferralSignupBonus, &[&friend])).await.expect("outbox email");
    assert_eq!(attr(&email, "subject"), "You earned 250 bonus credits");
    assert!(
        attr(&email, "text").contains(
            "We added 150 credits to your bonus balance; the other 100 repaid what you owed after an earlier refund or correction. Your balance is now 1,150 credits."
        ),
        "{}",
        attr(&email, "text")
    );
}

#[tokio::test]
async fn an_unknown_or_malformed_code_still_signs_up_without_a_referrer() {
    let app = app().await;
    let long = "x".repeat(64);
    for code in ["ZZZZZZZZ", "hello", "ab cd", "K7M2-QX9P", "K7M2QX9P!", "ÄÖÜ", long.as_str()] {
        let user = unique("nocode");
        let a = signup(&app, json!({"user_id": user, "email": "n@example.com", "referral_code": code})).await;
        assert_eq!(a.status, 201, "{code:?}: {}", a.text);
        assert_eq!(a.json["referral"], json!({"status": "invalid_code", "referrer_bonus": 0}), "{code:?}");
    }
    for code in [json!(null), json!(""), json!(" \t ")] {
        let user = unique("nullcode");
        let a = signup(&app, json!({"user_id": user, "email": "n@example.com", "referral_code": code})).await;
        assert_eq!(a.status, 201, "{code}: {}", a.text);
        assert!(a.json["referral"].is_null(), "{code}: {}", a.text);
    }
}

#[tokio::test]
async fn a_code_pasted_with_spaces_around_it_still_rewards_the_referrer() {
    let app = app().await;
    let (referrer, code) = new_user(&app, "free").await;
    let friend = unique("friend");
    let pasted = format!("  {code}\n");
    let a = signup(&app, json!({"user_id": friend, "email": "friend@example.org", "referral_code": pasted})).await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.json["referral"], json!({"status": "rewarded", "referrer_bonus": 250}));
    assert_eq!(balance(&app, &referrer).await["bonus"], 250);
}

#[tokio::test]
async fn self_referral_is_detected_by_normalised_email() {
    let app = app().await;
    let me = unique("me");
    let first = signup(&app, json!({"user_id": me, "email": "Jane.Doe@gmail.com"})).await;
    let code = first.json["account"]["referral_code"].as_str().expect("code").to_owned();
    let again = unique("me-again");
    let a =
        signup(&app, json!({"user_id": again, "email": "janedoe+second@googlemail.com", "referral_code": code})).await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.json["referral"], json!({"status": "self_referral", "referrer_bonus": 0}));
    assert_eq!(balance(&app, &me).await["bonus"], 0);
    let r = account_event(&app, &user_event("referral.json", Some(&me), "")).await;
    assert_eq!(r.json["signups"], 0, "no referrer is recorded for a self-referral");
}

#[tokio::test]
async fn the_cap_stops_rewards_but_still_records_the_referrer() {
    let app = app_with(&[("CREDITS_CONFIG", r#"{"referral_cap_per_cycle": 2}"#)], None).await;
    let (referrer, code) = new_user(&app, "free").await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let friend = unique("capped");
        let a =
            signup(&app, json!({"user_id": friend, "email": format!("{friend}@example.net"), "referral_code": code}))
                .await;
        assert_eq!(a.status, 201, "{}", a.text);
        statuses.push(a.json["referral"]["status"].as_str().expect("status").to_owned());
    }
    assert_eq!(statuses, ["rewarded", "rewarded", "cap_reached"]);
    assert_eq!(balance(&app, &referrer).await["bonus"], 500);
    let r = account_event(&app, &user_event("referral.json", Some(&referrer), "")).await;
    assert_eq!((r.json["signups"].as_i64(), r.json["rewarded_credits"].as_i64()), (Some(3), Some(500)));
    assert_ledger_explains_balance(&app, &referrer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_referred_signups_never_exceed_the_cap() {
    let app = app_with(&[("CREDITS_CONFIG", r#"{"referral_cap_per_cycle": 3}"#)], None).await;
    let (referrer, code) = new_user(&app, "free").await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (app, code) = (app.clone(), code.clone());
            tokio::spawn(async move {
                let friend = unique("rush");
                signup(
                    &app,
                    json!({"user_id": friend, "email": format!("{friend}@example.net"), "referral_code": code}),
                )
                .await
            })
        })
        .collect();
    let mut rewarded = 0;
    for task in tasks {
        let a = task.await.expect("task");
        assert_eq!(a.status, 201, "{}", a.text);
        rewarded += usize::from(a.json["referral"]["status"] == "rewarded");
    }
    assert_eq!(rewarded, 3);
    assert_eq!(balance(&app, &referrer).await["bonus"], 750);
    let r = account_event(&app, &user_event("referral.json", Some(&referrer), "")).await;
    assert_eq!(r.json["signups"], 8);
    assert_ledger_explains_balance(&app, &referrer).await;
}

#[tokio::test]
async fn referral_codes_are_unique_across_accounts() {
    let app = app().await;
    let mut codes = std::collections::HashSet::new();
    for _ in 0..20 {
        let (_, code) = new_user(&app, "free").await;
        assert!(codes.insert(code));
    }
}
