//! openapi.yaml is kept true: every documented request example goes through
//! its function against the emulator, and the answer must have the status
//! the spec pairs with that example and match the response schema (and the
//! request, unless answered 400, its request schema). Every documented
//! response example must match its own schema too; the request limits are
//! compared with the code's in api_reference.rs.

use integration_tests::*;
use serde_json::{json, Map, Value};

fn spec() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.yaml");
    let text = std::fs::read_to_string(path).expect("openapi.yaml");
    serde_yaml::from_str(&text).expect("openapi.yaml is YAML")
}

/// Follows a local `$ref`.
fn resolve<'a>(spec: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let target = r.trim_start_matches("#/").split('/').fold(spec, |n, part| &n[part]);
            resolve(spec, target)
        }
        None => node,
    }
}

/// A small validator for the schema keywords openapi.yaml uses (`pattern`,
/// `format` and `not` are not checked here; the handlers' own tests cover
/// them).
fn check(spec: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(spec, schema);
    if value.is_null() {
        if schema["nullable"] != true {
            errors.push(format!("{at}: null where not nullable"));
        }
        return;
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        check(spec, part, value, at, errors);
    }
    if let Some(options) = schema["enum"].as_array() {
        if !options.contains(value) {
            errors.push(format!("{at}: {value} not in {options:?}"));
        }
    }
    match schema["type"].as_str() {
        Some("object") => {
            let Some(obj) = value.as_object() else { return errors.push(format!("{at}: not an object")) };
            for name in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                if !obj.contains_key(name) {
                    errors.push(format!("{at}: missing {name}"));
                }
            }
            let props = schema["properties"].as_object().cloned().unwrap_or_default();
            for (name, v) in obj {
                match props.get(name) {
                    Some(s) => check(spec, s, v, &format!("{at}.{name}"), errors),
                    None if schema["additionalProperties"] == false => errors.push(format!("{at}: unexpected {name}")),
                    None => {}
                }
            }
        }
        Some("array") => match value.as_array() {
            Some(items) => {
                for (i, v) in items.iter().enumerate() {
                    check(spec, &schema["items"], v, &format!("{at}[{i}]"), errors);
                }
            }
            None => errors.push(format!("{at}: not an array")),
        },
        Some("string") => match value.as_str() {
            Some(s) => {
                let len = s.chars().count() as u64;
                if schema["minLength"].as_u64().is_some_and(|m| len < m)
                    || schema["maxLength"].as_u64().is_some_and(|m| len > m)
                {
                    errors.push(format!("{at}: length {len} out of bounds"));
                }
            }
            None => errors.push(format!("{at}: not a string")),
        },
        Some("integer") => match value.as_i64() {
            Some(n) => {
                if schema["minimum"].as_i64().is_some_and(|m| n < m)
                    || schema["maximum"].as_i64().is_some_and(|m| n > m)
                {
                    errors.push(format!("{at}: {n} out of range"));
                }
            }
            None => errors.push(format!("{at}: not an integer")),
        },
        _ => {}
    }
}

/// The status and schema the spec pairs with an example name.
fn expected<'a>(spec: &'a Value, op: &'a Value, example: &str) -> (u16, Option<&'a Value>) {
    for (status, response) in op["responses"].as_object().expect("responses") {
        let response = resolve(spec, response);
        let content = &response["content"]["application/json"];
        if content["examples"].get(example).is_some() {
            return (status.parse().expect("status"), content.get("schema"));
        }
    }
    panic!("no response documents the example {example}");
}

/// Creates the accounts an example names in `x-setup`, the purchases it
/// names as `"USER bought PAYMENT_ID"` ($10 each) and the holds it names as
/// `"USER held HOLD_ID"` (3,000 credits each).
async fn set_up(app: &credits::App, users: &[Value]) -> Map<String, Value> {
    let mut made = Map::new();
    for user in users.iter().filter_map(Value::as_str) {
        if let Some((holder, hold_id)) = user.split_once(" held ") {
            let a = hold(app, json!({"user_id": holder, "hold_id": hold_id, "credits": 3000})).await;
            assert_eq!(a.status, 201, "setting up {user}: {}", a.text);
            continue;
        }
        if let Some((buyer, payment)) = user.split_once(" bought ") {
            let body = json!({"user_id": buyer, "payment_id": payment, "amount_cents": 1000, "currency": "USD"});
            let a = buy(app, body).await;
            assert_eq!(a.status, 201, "setting up {user}: {}", a.text);
            continue;
        }
        let body = match user {
            "alice" => {
                json!({"user_id": "alice", "email": "alice@example.com", "plan": "pro", "signed_up_at": "2026-01-31T10:00:00Z"})
            }
            "bob" => {
                json!({"user_id": "bob", "email": "bob@example.org", "referral_code": made["alice"]["referral_code"]})
            }
            other => json!({"user_id": other, "email": format!("{other}@example.net")}),
        };
        let a = signup(app, body).await;
        assert_eq!(a.status, 201, "setting up {user}: {}", a.text);
        made.insert(user.to_owned(), a.json["account"].clone());
    }
    made
}

/// `"{alice.referral_code}"` → alice's code.
fn fill(value: &Value, made: &Map<String, Value>) -> Value {
    match value {
        Value::String(s) if s.starts_with('{') && s.ends_with('}') => {
            let (user, field) = s[1..s.len() - 1].split_once('.').expect("{user.field}");
            made[user][field].clone()
        }
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), fill(v, made))).collect()),
        other => other.clone(),
    }
}

#[test]
fn documented_response_examples_match_their_schemas() {
    let spec = spec();
    let mut errors = Vec::new();
    let mut seen = 0;
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("operation") {
            for (status, response) in op["responses"].as_object().expect("responses") {
                let content = &resolve(&spec, response)["content"]["application/json"];
                for (name, example) in content["examples"].as_object().into_iter().flatten() {
                    seen += 1;
                    check(
                        &spec,
                        &content["schema"],
                        &example["value"],
                        &format!("{method} {path} {status} {name}"),
                        &mut errors,
                    );
                }
            }
        }
    }
    assert!(seen >= 10, "{seen} examples");
    assert!(errors.is_empty(), "{errors:#?}");
}

#[tokio::test]
async fn every_documented_example_goes_through_its_function_as_documented() {
    let spec = spec();
    let mut ran = 0;
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("operations") {
            let mut cases = Vec::new();
            for (name, ex) in
                op["requestBody"]["content"]["application/json"]["examples"].as_object().into_iter().flatten()
            {
                cases.push((name.clone(), ex.clone()));
            }
            for (name, ex) in op["x-examples"].as_object().into_iter().flatten() {
                cases.push((name.clone(), ex.clone()));
            }
            if op.get("x-examples-elsewhere").is_some() {
                continue; // (the Stripe webhook: its requests must be signed by Stripe)
            }
            assert!(!cases.is_empty(), "{method} {path} documents no example");
            for (name, example) in cases {
                // Each example on its own table, so examples cannot disturb each other.
                let app = app_on_fresh_table(&[]).await;
                let made = set_up(&app, example["x-setup"].as_array().map_or(&[][..], Vec::as_slice)).await;
                let (status, schema) = expected(&spec, op, &name);
                let answer = if method == "post" {
                    let body = fill(&example["value"], &made);
                    // A request the spec answers with more than a 400 is one
                    // its request schema admits.
                    if status != 400 {
                        let mut errors = Vec::new();
                        let request = &op["requestBody"]["content"]["application/json"]["schema"];
                        check(&spec, request, &body, &format!("{method} {path} request {name}"), &mut errors);
                        assert!(errors.is_empty(), "{errors:#?}");
                    }
                    let body = body.to_string();
                    let route = example["x-path"].as_str().unwrap_or(path);
                    let (fixture, function) = match path.as_str() {
                        "/v1/signups" => ("signup.json", "referral-signup"),
                        "/v1/purchases" => ("purchase.json", "purchase"),
                        "/v1/plan-changes" => ("plan-change.json", "upgrade-bonus"),
                        "/v1/spends" => ("spend.json", "spend"),
                        "/v1/reversals" => ("reversal.json", "corrections"),
                        "/v1/adjustments" => ("adjustment.json", "corrections"),
                        "/v1/referral-clawbacks" => ("clawback.json", "corrections"),
                        "/v1/holds" | "/v1/holds/{hold_id}/capture" | "/v1/holds/{hold_id}/release" => {
                            ("hold.json", "spend")
                        }
                        other => panic!("openapi.yaml documents {other}, which no test fixture serves"),
                    };
                    send_to(&app, function, &with_route(service_event(fixture, &body), "POST", route)).await
                } else {
                    let event = with_route(
                        user_event("balance.json", example["user"].as_str(), example["query"].as_str().unwrap_or("")),
                        "GET",
                        path,
                    );
                    account_event(&app, &event).await
                };
                assert_eq!(answer.status, status, "{method} {path} example {name}: {}", answer.text);
                let mut errors = Vec::new();
                if let Some(schema) = schema {
                    check(&spec, schema, &answer.json, &format!("{method} {path} {name}"), &mut errors);
                }
                assert!(errors.is_empty(), "{errors:#?}\n{}", answer.text);
                ran += 1;
            }
        }
    }
    assert!(ran >= 29, "ran {ran} examples");
}
