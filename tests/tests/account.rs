//! `GET /v1/me/...` through `account`, against the emulator.

use integration_tests::*;
use serde_json::json;

async fn user_with_purchases(app: &credits::App, n: usize) -> String {
    let (user, _) = new_user(app, "pro").await;
    for i in 0..n {
        let body = json!({"user_id": user, "payment_id": format!("p{i}"), "amount_cents": 100 * (i as i64 + 1), "currency": "USD"});
        assert_eq!(buy(app, body).await.status, 201);
    }
    user
}

#[tokio::test]
async fn balance_shows_the_account_of_the_token_subject() {
    let app = app().await;
    let (user, code) = new_user(&app, "basic").await;
    let a = account_event(&app, &user_event("balance.json", Some(&user), "")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["user_id"], user.as_str());
    assert_eq!(a.json["plan"], "basic");
    assert_eq!(a.json["referral_code"], code.as_str());
    assert_eq!(
        a.json["balance"],
        json!({"plan": 2000, "bonus": 0, "flexible": 0, "held": 0, "debt": 0, "total": 2000})
    );
    let keys: Vec<&String> = a.json.as_object().expect("object").keys().collect();
    assert_eq!(keys.len(), 7, "{keys:?}");
}

#[tokio::test]
async fn an_account_whose_cycle_ended_reads_as_a_spend_would_find_it() {
    let app = app().await;
    // Signed up on pro long ago, moved down to free in its last cycle (planted:
    // a plan change now would roll the ended cycles over first), and not yet
    // reached by the hourly run: stored, it still holds pro's 5,000 credits
    // in a cycle that ended on 2026-02-15.
    let (user, _) = new_user_since(&app, "pro", "2026-01-15T10:00:00Z").await;
    set_account_attributes(&app, &user, &[("plan", aws_sdk_dynamodb::types::AttributeValue::S("free".into()))]).await;
    let stored = account_item(&app, &user).await;
    assert_eq!((attr_n(&stored, "bal_plan"), attr(&stored, "cycle_end")), (5000, "2026-02-15T10:00:00Z"));

    let read = account_event(&app, &user_event("balance.json", Some(&user), "")).await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(
        read.json["balance"],
        json!({"plan": 1000, "bonus": 0, "flexible": 0, "held": 0, "debt": 0, "total": 1000})
    );
    let now = credits::cycle::now();
    let end = read.json["cycle_end"].as_str().and_then(credits::cycle::parse_time).expect("cycle_end");
    let start = read.json["cycle_start"].as_str().and_then(credits::cycle::parse_time).expect("cycle_start");
    assert!(start <= now && now < end, "the current cycle: {}", read.text);
    let options = account_event(&app, &user_event("credit-options.json", Some(&user), "")).await;
    assert_eq!(options.status, 200, "{}", options.text);
    assert_eq!(
        (&options.json["balance"], &options.json["plan"]["cycle_end"]),
        (&read.json["balance"], &read.json["cycle_end"])
    );
    assert_eq!(attr_n(&account_item(&app, &user).await, "bal_plan"), 5000, "a read writes nothing");

    // The spend rolls the account over, and finds what the read showed.
    let spent = spend(&app, json!({"user_id": user, "spend_id": "s1", "credits": 1})).await;
    assert_eq!(spent.status, 201, "{}", spent.text);
    let after = account_event(&app, &user_event("balance.json", Some(&user), "")).await;
    assert_eq!(after.json["balance"]["plan"], 999);
    assert_eq!(
        (&after.json["cycle_start"], &after.json["cycle_end"]),
        (&read.json["cycle_start"], &read.json["cycle_end"])
    );
    assert_ledger_explains_balance(&app, &user).await;
}

#[tokio::test]
async fn the_user_id_comes_only_from_the_token() {
    let app = app().await;
    let (alice, _) = new_user(&app, "free").await;
    let (bob, _) = new_user(&app, "pro").await;
    let mut event = user_event("balance.json", Some(&alice), &format!("user_id={bob}"));
    event["pathParameters"] = json!({"user_id": bob});
    let a = account_event(&app, &event).await;
    assert_eq!(a.json["user_id"], alice.as_str());
}

#[tokio::test]
async fn user_routes_without_a_subject_are_401() {
    let app = app().await;
    for fixture in ["balance.json", "ledger.json", "referral.json"] {
        let a = account_event(&app, &user_event(fixture, None, "")).await;
        assert_eq!((a.status, a.code()), (401, "unauthenticated"), "{fixture}: {}", a.text);
        let mut empty_sub = user_event(fixture, Some(""), "");
        empty_sub["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = json!("");
        assert_eq!(account_event(&app, &empty_sub).await.status, 401);
        // A subject that is no user id (an identity provider's own shape) is not signed in as anyone.
        let foreign = account_event(&app, &user_event(fixture, Some("auth0|5f7c8ec7c33c6c004bbafe82"), "")).await;
        assert_eq!((foreign.status, foreign.code()), (401, "unauthenticated"), "{fixture}: {}", foreign.text);
    }
}

#[tokio::test]
async fn an_unknown_subject_is_account_not_found() {
    let app = app().await;
    for fixture in ["balance.json", "ledger.json", "referral.json"] {
        let a = account_event(&app, &user_event(fixture, Some(&unique("nobody")), "")).await;
        assert_eq!((a.status, a.code()), (404, "account_not_found"), "{fixture}: {}", a.text);
    }
    let paged = account_event(&app, &user_event("ledger.json", Some(&unique("nobody")), "cursor=5")).await;
    assert_eq!((paged.status, paged.code()), (404, "account_not_found"), "with a cursor: {}", paged.text);
}

#[tokio::test]
async fn the_ledger_pages_newest_first_with_a_cursor() {
    let app = app().await;
    let user = user_with_purchases(&app, 3).await;
    let first = account_event(&app, &user_event("ledger.json", Some(&user), "limit=2")).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let entries = first.json["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["entry_id"], "4");
    assert_eq!(entries[0]["kind"], "purchase");
    assert_eq!(entries[0]["ref"], "p2");
    assert_eq!(entries[0]["delta"], json!({"plan": 0, "bonus": 0, "flexible": 900, "held": 0, "debt": 0}));
    assert_eq!(
        entries[0]["balance_after"],
        json!({"plan": 5000, "bonus": 0, "flexible": 1800, "held": 0, "debt": 0, "total": 6800})
    );
    assert_eq!(entries[1]["entry_id"], "3");
    assert!(entries[0]["at"].as_str().is_some_and(|t| credits::cycle::parse_time(t).is_some()));
    let cursor = first.json["next_cursor"].as_str().expect("cursor").to_owned();

    let second =
        account_event(&app, &user_event("ledger.json", Some(&user), &format!("limit=2&cursor={cursor}"))).await;
    let entries = second.json["entries"].as_array().expect("entries");
    let ids: Vec<&str> = entries.iter().filter_map(|e| e["entry_id"].as_str()).collect();
    assert_eq!(ids, ["2", "1"]);
    assert_eq!(entries[1]["kind"], "signup_grant");
    assert_eq!(entries[1]["ref"], user.as_str());
    assert!(second.json["next_cursor"].is_null());

    let all = account_event(&app, &user_event("ledger.json", Some(&user), "")).await;
    assert_eq!(all.json["entries"].as_array().map(Vec::len), Some(4));
    assert!(all.json["next_cursor"].is_null());
}

#[tokio::test]
async fn bad_ledger_queries_are_400() {
    let app = app().await;
    let (user, _) = new_user(&app, "free").await;
    // Entries are numbered from 1, so no page this API returns ends above a cursor of 1; a page
    // ends on an entry, so no cursor is above the newest (the signup's, 1, here).
    let queries = ["limit=0", "limit=101", "limit=ten", "cursor=abc", "cursor=0", "cursor=-3", "cursor=1", "cursor=2"];
    // Characters a URI may not hold, as a caller can send them: 400 like any other bad value.
    let raw = ["limit=\"5\"", "cursor=<script>", "limit=5 6", "cursor=\u{e9}", "limit=5&x=\"\""];
    for query in
        queries.into_iter().chain(["cursor=999999", "limit=2&cursor=18446744073709551615", "page=2"]).chain(raw)
    {
        let a = account_event(&app, &user_event("ledger.json", Some(&user), query)).await;
        assert_eq!((a.status, a.code()), (400, "invalid_request"), "{query}: {}", a.text);
    }
}

#[tokio::test]
async fn the_referral_route_gives_code_link_and_counts() {
    let app = app().await;
    let (user, code) = new_user(&app, "free").await;
    let a = account_event(&app, &user_event("referral.json", Some(&user), "")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let base = std::env::var("REFERRAL_BASE_URL").unwrap_or_else(|_| credits::config::DEFAULT_REFERRAL_BASE_URL.into());
    assert_eq!(
        a.json,
        json!({"code": code, "link": format!("{base}?ref={code}"), "signups": 0, "rewarded_credits": 0})
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_are_404() {
    let app = app().await;
    let (user, _) = new_user(&app, "free").await;
    for (method, path) in [("GET", "/v1/me/settings"), ("POST", "/v1/me/balance"), ("GET", "/v1/signups"), ("GET", "/")]
    {
        let event = with_route(user_event("balance.json", Some(&user), ""), method, path);
        let a = account_event(&app, &event).await;
        assert_eq!((a.status, a.code()), (404, "not_found"), "{method} {path}: {}", a.text);
    }
}

#[tokio::test]
async fn a_named_stage_prefix_is_ignored() {
    let app = app().await;
    let (user, _) = new_user(&app, "free").await;
    let mut event = user_event("balance.json", Some(&user), "");
    event["rawPath"] = json!("/prod/v1/me/balance");
    event["requestContext"]["stage"] = json!("prod");
    assert_eq!(account_event(&app, &event).await.status, 200);
}
